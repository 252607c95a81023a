"""How a parameter tensor is cut into fixed-size chunks, and put back together.

* Tensors of 2 or more dims are viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``
  and tiled into ``chunk x chunk`` blocks (2-D chunks, ``chunk**2`` elements): a
  weight matrix's rows and columns are both meaningful axes, so a square block
  keeps 2-D locality for the DCT.
* Vectors (and scalars) are cut into 1-D chunks of ``chunk`` elements.

Edges that are not a multiple of ``chunk`` are zero-padded (bottom/right, or the
tail of a vector) and the padding is cropped on the way back. Padding is sent
like real data, so it costs bytes: a ``[176, 64]`` matrix with ``chunk=64`` is
padded to ``[192, 64]``, i.e. 3 chunks for 2.75 chunks' worth of values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gauntlet.compress.dct import dct_1d, dct_2d, idct_1d, idct_2d


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


@dataclass(frozen=True)
class ChunkLayout:
    """The chunking of one tensor of ``shape`` with side length ``chunk``."""

    shape: tuple[int, ...]
    chunk: int

    @property
    def two_d(self) -> bool:
        return len(self.shape) >= 2

    @property
    def rows(self) -> int:
        return math.prod(self.shape[:-1]) if self.two_d else 1

    @property
    def cols(self) -> int:
        return self.shape[-1] if self.two_d else math.prod(self.shape)

    @property
    def chunk_elems(self) -> int:
        """Elements per chunk: ``chunk**2`` (2-D) or ``chunk`` (1-D); the index bound."""
        return self.chunk * self.chunk if self.two_d else self.chunk

    @property
    def n_chunks(self) -> int:
        if self.two_d:
            return (_ceil_to(self.rows, self.chunk) // self.chunk) * (
                _ceil_to(self.cols, self.chunk) // self.chunk
            )
        return _ceil_to(self.cols, self.chunk) // self.chunk

    def to_chunks(self, x: torch.Tensor, dct: bool) -> torch.Tensor:
        """``x`` of ``shape`` -> ``[n_chunks, chunk_elems]``, DCT-transformed if ``dct``."""
        s = self.chunk
        if not self.two_d:
            flat = x.reshape(-1)
            v = F.pad(flat, (0, _ceil_to(flat.numel(), s) - flat.numel())).view(-1, s)
            return dct_1d(v) if dct else v
        rows, cols = self.rows, self.cols
        pr, pc = _ceil_to(rows, s), _ceil_to(cols, s)
        m = F.pad(x.reshape(rows, cols), (0, pc - cols, 0, pr - rows))
        # [pr, pc] -> [pr/s, s, pc/s, s] -> [pr/s, pc/s, s, s]: block (i, j) is rows
        # i*s.. and columns j*s.., enumerated row-major over the block grid.
        blocks = m.view(pr // s, s, pc // s, s).permute(0, 2, 1, 3).reshape(-1, s, s)
        if dct:
            blocks = dct_2d(blocks)
        return blocks.reshape(-1, s * s)

    def from_chunks(self, c: torch.Tensor, dct: bool) -> torch.Tensor:
        """Inverse of :meth:`to_chunks`: ``[n_chunks, chunk_elems]`` -> ``shape`` (cropped)."""
        s = self.chunk
        if not self.two_d:
            v = idct_1d(c) if dct else c
            return v.reshape(-1)[: self.cols].reshape(self.shape)
        rows, cols = self.rows, self.cols
        pr, pc = _ceil_to(rows, s), _ceil_to(cols, s)
        blocks = c.reshape(-1, s, s)
        if dct:
            blocks = idct_2d(blocks)
        m = blocks.view(pr // s, pc // s, s, s).permute(0, 2, 1, 3).reshape(pr, pc)
        return m[:rows, :cols].reshape(self.shape)
