"""Count-sketches of updates and the history of recent windows' sketches.

Whole pseudo-gradients are too big to keep, so the validator keeps the compact
*sketches* of the last ``replay_history_windows`` windows' contributions and aggregates,
against which :mod:`gauntlet.score.copies` finds replays: a public count-sketch (each coordinate hashed to
one of ``dim`` buckets with a ±1 sign). Inner products, hence cosines, are
preserved in expectation; two unrelated vectors have sketch cosine ~N(0, 1/dim),
while a re-upload has sketch cosine ~1, and a sketch of a sum is the sum of sketches. The hash is a fixed function of the
coordinate index and a public seed (splitmix64), so sketches are stable across
numpy versions and restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gauntlet.score.vectors import as_vector

AGGREGATE_UID = -1
"""The ``uid`` under which the sketch of a window's aggregate is remembered."""

_CHUNK = 1 << 20


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sketch(vector: Any, dim: int, seed: bytes, *, offset: int = 0) -> np.ndarray:
    """Count-sketch of a flattened update: float64 array of shape ``(dim,)``.

    Coordinate ``i`` goes to bucket ``(h >> 1) % dim`` with sign ``+1`` if
    ``h & 1 == 0`` else ``-1``, where ``h = splitmix64(i XOR k)`` and ``k`` is
    the first 8 bytes (little-endian) of BLAKE2b(seed). Linear in the vector:
    ``sketch(a + b) == sketch(a) + sketch(b)``. Memory is bounded by chunking.
    ``offset`` is the position of ``vector[0]`` in the whole update, so the sketch of a
    concatenation is the sum of its parts' sketches (sketch one parameter at a time).
    """
    x = as_vector(vector)
    return sketch_at(x, np.arange(offset, offset + x.size, dtype=np.uint64), dim, seed)


def sketch_at(values: Any, positions: Any, dim: int, seed: bytes) -> np.ndarray:
    """Count-sketch of some coordinates of an update: ``values[j]`` sits at coordinate
    ``positions[j]`` of the whole (flattened) update. Same hash as :func:`sketch`, so the
    sketch of every coordinate at once equals :func:`sketch` of the vector."""
    x = as_vector(values)
    index = np.asarray(positions, dtype=np.uint64).reshape(-1)
    if index.size != x.size:
        raise ValueError(f"{x.size} values but {index.size} positions")
    return sketch_rows(x[None], index, dim, seed)[0]


def sketch_rows(rows: np.ndarray, positions: np.ndarray, dim: int, seed: bytes) -> np.ndarray:
    """:func:`sketch_at` of several updates' values at the same ``positions`` (``rows``
    float64 ``[updates, len(positions)]``): ``[updates, dim]``, each row what
    :func:`sketch_at` gives it alone (the same sums in the same order), the coordinates
    hashed once for all of them."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    index = np.asarray(positions, dtype=np.uint64).reshape(-1)
    if rows.shape[1] != index.size:
        raise ValueError(f"{rows.shape[1]} values but {index.size} positions")
    key = np.uint64(int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "little"))
    out = np.zeros((len(rows), dim), dtype=np.float64)
    for start in range(0, index.size, _CHUNK):
        h = _splitmix64(index[start : start + _CHUNK] ^ key)
        buckets = ((h >> np.uint64(1)) % np.uint64(dim)).astype(np.int64)
        signs = 1.0 - 2.0 * (h & np.uint64(1)).astype(np.float64)
        for i, row in enumerate(rows):
            out[i] += np.bincount(
                buckets, weights=signs * row[start : start + _CHUNK], minlength=dim
            )
    return out


@dataclass(frozen=True)
class SketchEntry:
    """A remembered sketch: whose (``uid``, or ``AGGREGATE_UID``) and from which window."""

    window: int
    uid: int
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "uid": self.uid, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SketchEntry:
        return cls(
            window=int(data["window"]),
            uid=int(data["uid"]),
            values=tuple(float(v) for v in data["values"]),
        )

    @classmethod
    def of(cls, window: int, uid: int, values: Any) -> SketchEntry:
        """An entry from any vector-like sketch (numpy, torch, sequence)."""
        return cls(window=window, uid=uid, values=tuple(float(v) for v in as_vector(values)))


def recent(
    history: Sequence[SketchEntry], new: Iterable[SketchEntry], window: int, windows: int
) -> list[SketchEntry]:
    """``history + new`` without the entries older than the last ``windows`` windows up to
    ``window`` (those of ``window - windows + 1`` .. ``window`` stay); a new list."""
    return [e for e in [*history, *new] if e.window > window - windows]
