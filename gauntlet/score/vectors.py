"""Flat float64 vectors from updates, sketches or tensors: unit scaling and cosine."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_vector(values: Any) -> np.ndarray:
    """A flat float64 numpy copy of a numpy array, torch tensor (any device) or sequence."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch here
        values = values.detach().to("cpu").double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def unit(values: Any) -> np.ndarray | None:
    """The flattened vector scaled to norm 1; None if it is all-zero or holds a non-finite value."""
    v = as_vector(values)
    if not np.isfinite(v).all():
        return None
    peak = float(np.abs(v).max(initial=0.0))
    if peak == 0.0:
        return None
    v = v / peak  # scale first so huge values cannot overflow the norm
    return v / float(np.linalg.norm(v))


def cosine(a: Any, b: Any) -> float:
    """Cosine similarity in [-1, 1] of two equal-length vectors (flattened).

    0.0 when either is all-zero; -1.0 (maximally dissimilar, never a duplicate)
    when either holds a non-finite value. Raises ``ValueError`` on length mismatch.
    """
    x, y = as_vector(a), as_vector(b)
    if x.shape != y.shape:
        raise ValueError(f"length mismatch: {x.size} vs {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return -1.0
    ux, uy = unit(x), unit(y)
    if ux is None or uy is None:
        return 0.0
    return max(-1.0, min(1.0, float(np.dot(ux, uy))))
