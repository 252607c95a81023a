"""The orthonormal DCT-II as a matrix, built with torch and cached per size.

Smooth signals (and pseudo-gradients of neighbouring weights are correlated)
put most of their energy into a few low-frequency DCT coefficients, so top-k
in the DCT basis keeps more of the update than top-k on raw values. The
orthonormal scaling makes the transform a rotation: it preserves L2 norms
(Parseval), and its inverse is its transpose.
"""

from __future__ import annotations

import functools
import math

import torch


@functools.lru_cache(maxsize=32)
def _dct_matrix_f64(n: int) -> torch.Tensor:
    # D[k, i] = a_k cos(pi (2i + 1) k / (2n)), a_0 = sqrt(1/n), a_k = sqrt(2/n): the rows
    # are the cosine basis vectors, scaled to unit length so that D @ D.T = I.
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


@functools.lru_cache(maxsize=64)
def dct_matrix(
    n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D``, shape ``[n, n]``: ``coeffs = D @ x``, ``x = D.T @ coeffs``.

    Built in float64 and rounded once, so every node derives the identical matrix.
    """
    return _dct_matrix_f64(n).to(device=device, dtype=dtype)


def dct_1d(x: torch.Tensor) -> torch.Tensor:
    """Forward DCT along the last dim: ``[..., n] -> [..., n]``."""
    d = dct_matrix(x.shape[-1], x.device, x.dtype)
    return x @ d.T  # row vectors: (D x)^T = x^T D^T


def idct_1d(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct_1d`: ``[..., n] -> [..., n]``."""
    d = dct_matrix(c.shape[-1], c.device, c.dtype)
    return c @ d


def dct_2d(x: torch.Tensor) -> torch.Tensor:
    """Separable 2-D DCT of square blocks: ``[..., n, n] -> [..., n, n]`` (``D X D^T``)."""
    d = dct_matrix(x.shape[-1], x.device, x.dtype)
    return d @ x @ d.T


def idct_2d(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct_2d`: ``D^T C D``."""
    d = dct_matrix(c.shape[-1], c.device, c.dtype)
    return d.T @ c @ d
