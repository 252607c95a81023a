"""Copies and replays: a contribution mostly explained by other miners' known updates.

Known updates are the count-sketches (:mod:`gauntlet.score.replay`) of this window's
other contributions and of the recent windows' contributions and aggregates. An honest
update is made from the miner's own pages and error feedback: apart from the direction
all miners share, it is new. A copy, a replay or a mix of revealed updates is (up to the
codec's rounding) a linear combination of known ones. Greedy least squares (orthogonal
matching pursuit) finds the few sources that explain most of it; the explained fraction
``R² = 1 - |residual|² / |x|²`` above a threshold is the verdict. With one source
``R² = cosine²``: the old pairwise duplicate and replay checks are the one-source case.

Uploads are sealed, so this window's contributions were made independently: a
same-window combination comes from one operator (sybils). As for duplicates, the upload
the validator observed first is the original: each contribution is explained only by
the ones observed before it (and the history). Explained with a source of this window
it is a ``copy``; only by earlier windows, a ``replay``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gauntlet.score.config import COPY, REPLAY
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry
from gauntlet.score.vectors import unit


@dataclass(frozen=True)
class Explanation:
    """``sources``: rows of the known matrix, in the order picked; ``explained``: R² in [0, 1]."""

    sources: tuple[int, ...]
    explained: float


def explain(candidate: Any, known: Any, *, max_sources: int, threshold: float = 1.0) -> Explanation:
    """How much of ``candidate`` (a vector of length ``d``) the rows of ``known`` (shape
    ``(n, d)``) explain together, by greedy least squares with at most ``max_sources`` rows.

    Each step adds the row most correlated (either sign) with what is still unexplained and
    refits all coefficients; it stops once ``R² >= threshold``, so the sources named are
    few. Ties go to the earlier row. Zero or non-finite rows are never picked; a zero or
    non-finite candidate is explained by nothing (R² 0). Scale-free: only directions count.
    """
    x = unit(candidate)
    if x is None:
        return Explanation((), 0.0)
    return _pursue(x, _unit_rows(known, x.size), max_sources, threshold)


def _pursue(x: np.ndarray, rows: np.ndarray, max_sources: int, threshold: float) -> Explanation:
    """:func:`explain` of a unit ``x`` by unit (or zero) ``rows``."""
    picked: list[int] = []
    explained = 0.0
    residual = x
    for _ in range(min(max_sources, len(rows))):
        scores = np.abs(rows @ residual)
        scores[picked] = -1.0
        best = int(np.argmax(scores))
        if scores[best] <= 1e-12:
            break  # nothing left that correlates
        picked.append(best)
        basis = rows[picked].T
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        residual = x - basis @ coef
        explained = min(1.0, max(0.0, 1.0 - float(residual @ residual)))
        if explained >= threshold:
            break
    return Explanation(tuple(picked), explained)


def _unit_rows(known: Any, dim: int) -> np.ndarray:
    """Rows scaled to norm 1 (peak first, so huge values cannot overflow); zero or
    non-finite rows become zero rows, never picked."""
    matrix = np.asarray(known, dtype=np.float64).reshape(-1, dim)
    finite = np.asarray(np.isfinite(matrix).all(axis=1)).reshape(-1, 1)
    matrix = np.where(finite, matrix, 0.0)
    peak = np.abs(matrix).max(axis=1, initial=0.0).reshape(-1, 1)
    usable = finite & (peak > 0)
    scaled = matrix / np.where(usable, peak, 1.0)
    norm = np.linalg.norm(scaled, axis=1).reshape(-1, 1)
    return np.where(usable, scaled / np.where(usable, norm, 1.0), 0.0)


@dataclass(frozen=True)
class Finding:
    """A contribution explained by known updates: ``outcome`` (``copy`` or ``replay``),
    ``sources`` as sorted (window, uid) pairs (uid ``AGGREGATE_UID``: that window's
    aggregate), ``explained``: R² in [0, 1]."""

    outcome: str
    sources: tuple[tuple[int, int], ...]
    explained: float

    def reason(self, window: int) -> str:
        """The verdict's reason, naming every source."""
        names = " + ".join(_name(w, uid, window) for w, uid in self.sources)
        if self.outcome == COPY:
            return f"copy of {names}, observed later (explains {self.explained:.1%})"
        return f"replays {names} (explains {self.explained:.1%})"


def _name(window: int, uid: int, current: int) -> str:
    if uid == AGGREGATE_UID:
        return f"the aggregate of window {window}"
    return f"uid {uid}" if window == current else f"uid {uid} of window {window}"


def find_copies(
    sketches: Mapping[int, Any],
    observed: Mapping[int, float],
    history: Sequence[SketchEntry],
    window: int,
    *,
    threshold: float,
    max_sources: int,
) -> dict[int, Finding]:
    """The contributions of ``window`` that known updates explain (R² >= ``threshold``).

    ``sketches``: uid -> sketch of its contribution (all of length ``d``);
    ``observed``: uid -> the chain head at which this validator first observed it (equal:
    the higher uid counts as later); ``history``: remembered sketches, of which only
    entries of earlier windows and of length ``d`` are used. Each contribution is
    explained by the history and the contributions observed before it, with at most
    ``max_sources`` of them.
    """
    order = sorted(sketches, key=lambda uid: (observed[uid], uid))
    if not order:
        return {}
    dim = np.asarray(sketches[order[0]], dtype=np.float64).size
    past = [e for e in history if e.window < window and len(e.values) == dim]
    labels = [(e.window, e.uid) for e in past] + [(window, uid) for uid in order]
    known = _unit_rows(
        [e.values for e in past] + [np.asarray(sketches[uid], dtype=np.float64) for uid in order],
        dim,
    )
    found: dict[int, Finding] = {}
    for i, uid in enumerate(order):
        x = unit(sketches[uid])
        if x is None:
            continue
        result = _pursue(x, known[: len(past) + i], max_sources, threshold)
        if result.explained < threshold:
            continue
        sources = tuple(sorted(labels[row] for row in result.sources))
        outcome = COPY if any(w == window for w, _ in sources) else REPLAY
        found[uid] = Finding(outcome, sources, result.explained)
    return found
