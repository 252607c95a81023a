"""Final scores and chain weights."""

from __future__ import annotations

import math
from collections.abc import Mapping


def final_score(
    ordinal: float,
    uniqueness: float,
    sync: float,
    saturation: float = 1.0,
    floor: float = 0.0,
) -> float:
    """``max(0, ordinal) * gate(uniqueness) * clamp(sync, 0, 1)``; >= 0, NaN-safe (NaN -> 0),
    with ``gate(u) = clamp((u - floor) / (saturation - floor), 0, 1)``.

    ``ordinal``: rating ``mu - ordinal_z * sigma`` (OpenSkill units): the value of the
    miner's updates (random-page improvement); ``uniqueness``: the indicator moving average
    in [-1, 1], a *test* that the miner trained on its own pages: it counts nothing up to
    ``floor`` (an average that only noise lifted above 0 earns nothing) and fully from
    ``saturation`` up (so it gates, and does not rank: a broad update is no worse than a
    narrow one); ``sync``: sync score in [0, 1].
    """
    if not floor < saturation:
        raise ValueError(f"floor {floor} must be below saturation {saturation}")
    gate = (uniqueness - floor) / (saturation - floor)
    parts = [max(0.0, ordinal), min(1.0, max(0.0, gate)), min(1.0, max(0.0, sync))]
    if not all(math.isfinite(p) for p in parts):
        return 0.0
    return parts[0] * parts[1] * parts[2]


def power_weights(scores: Mapping[int, float], power: float = 2.0) -> dict[int, float]:
    """Power normalisation ``w_i = s_i^p / sum_j s_j^p`` over ``max(0, s)``.

    Weights are in [0, 1] and sum to 1, or are all 0 when no score is positive
    (non-finite scores count as 0). Scores are divided by the largest first, so
    large scores or powers cannot overflow.
    """
    if power <= 0:
        raise ValueError(f"power must be > 0, got {power}")
    clean = {uid: s if math.isfinite(s) and s > 0 else 0.0 for uid, s in scores.items()}
    peak = max(clean.values(), default=0.0)
    if peak <= 0:
        return {uid: 0.0 for uid in scores}
    raised = {uid: (s / peak) ** power for uid, s in clean.items()}
    total = math.fsum(raised.values())
    return {uid: value / total for uid, value in raised.items()}
