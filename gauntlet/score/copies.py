"""Copy detection: near-duplicate contributions in the same window.

Two honest miners train on different pages from different error-feedback
states, so their pseudo-gradients are far from parallel. A pair above the
cosine threshold is a copy; the peer that uploaded LATER (store's server
timestamp, ties broken towards the higher uid) copied and is penalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def as_vector(values: Any) -> np.ndarray:
    """A flat float64 numpy copy of a numpy array, torch tensor (any device) or sequence."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch here
        values = values.detach().to("cpu").double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


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


def index_overlap(a: Iterable[int], b: Iterable[int]) -> float:
    """Jaccard overlap |A∩B| / |A∪B| in [0, 1] of two sets of sparse indices (0 if both empty)."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


@dataclass(frozen=True)
class DuplicatePair:
    """Two uids whose contributions are near-duplicates; ``similarity`` in [-1, 1]."""

    first: int
    second: int
    similarity: float


def near_duplicate_pairs(vectors: Mapping[int, Any], threshold: float) -> list[DuplicatePair]:
    """Every pair (first < second by uid) with cosine >= ``threshold``, sorted by uid pair.

    ``vectors``: uid -> decoded update (flattened tensor/array) or its sketch;
    all the same length. O(n^2 * length).
    """
    uids = sorted(vectors)
    normed = {uid: unit(vectors[uid]) for uid in uids}
    pairs = []
    for i, a in enumerate(uids):
        for b in uids[i + 1 :]:
            va, vb = normed[a], normed[b]
            if va is None or vb is None:
                continue
            if va.shape != vb.shape:
                raise ValueError(f"length mismatch between uid {a} and uid {b}")
            sim = max(-1.0, min(1.0, float(np.dot(va, vb))))
            if sim >= threshold:
                pairs.append(DuplicatePair(a, b, sim))
    return pairs


def copiers(pairs: Iterable[DuplicatePair], upload_times: Mapping[int, float]) -> set[int]:
    """The uids to penalise: in each pair, the later uploader.

    ``upload_times``: uid -> when the validator itself first observed the upload (the
    chain head block; never a time the miner's server reports). Equal times: the higher
    uid counts as later. In a chain A<B<C of
    duplicates both B and C are penalised; the earliest original never is.
    """
    penalised = set()
    for pair in pairs:
        a, b = pair.first, pair.second
        key_a, key_b = (upload_times[a], a), (upload_times[b], b)
        penalised.add(b if key_b > key_a else a)
    return penalised
