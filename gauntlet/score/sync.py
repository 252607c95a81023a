"""Model sync: how many outer steps a peer's model is behind the validator's, and its score.

Every contribution carries a fingerprint of θ_w: the model's values at a few
window-seeded coordinates. The validator holds the same coordinates of its own
θ_w, and knows how far those coordinates moved per outer step recently, so the
mean distance in units of "typical step" estimates how many steps behind the
peer is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gauntlet.score.average import moving_average


def estimate_steps_behind(
    peer_fp: Sequence[float],
    own_fp: Sequence[float],
    recent_step_magnitudes: Sequence[float],
) -> float:
    """Estimated outer steps between the peer's model and ours; >= 0, may be ``inf``.

    ``peer_fp`` and ``own_fp`` are parameter values at the same coordinates;
    ``recent_step_magnitudes`` the typical ``|θ_{w+1} - θ_w|`` of each of those
    coordinates (e.g. the mean over the last few windows). Returns
    ``mean|peer - own| / mean(recent_step_magnitudes)``.

    A fingerprint of the wrong length or with a non-finite value is a peer fault
    and returns ``inf`` (maximally behind). When the model has not moved yet
    (typical step 0) the answer is 0 for an identical fingerprint, else ``inf``.
    Raises ``ValueError`` only for our own inputs being inconsistent.
    """
    if len(own_fp) != len(recent_step_magnitudes):
        raise ValueError("own fingerprint and step magnitudes differ in length")
    if not own_fp:
        return 0.0
    if len(peer_fp) != len(own_fp) or not all(math.isfinite(v) for v in peer_fp):
        return math.inf
    distance = sum(abs(p - o) for p, o in zip(peer_fp, own_fp, strict=True)) / len(own_fp)
    step = sum(abs(m) for m in recent_step_magnitudes) / len(recent_step_magnitudes)
    if step <= 0 or not math.isfinite(step):
        return 0.0 if distance == 0 else math.inf
    return distance / step


def sync_score(steps_behind: float, max_steps: float, shape: str = "linear") -> float:
    """Sync score in [0, 1]: 1 at 0 steps behind, 0 at or beyond ``max_steps``.

    ``linear``: ``1 - s/max``. ``exponential``: ``exp(-3 s/max)`` (0.05 just
    before the threshold), cut to 0 at ``s >= max``. Negative ``s`` counts as 0;
    NaN counts as desynced (0).
    """
    if max_steps <= 0:
        raise ValueError(f"max_steps must be > 0, got {max_steps}")
    if math.isnan(steps_behind) or steps_behind >= max_steps:
        return 0.0
    s = max(0.0, steps_behind)
    if shape == "linear":
        return 1.0 - s / max_steps
    if shape == "exponential":
        return math.exp(-3.0 * s / max_steps)
    raise ValueError(f"unknown sync shape {shape!r}")


def update_liveness(previous: float | None, alive: bool, alpha: float) -> float:
    """Liveness moving average in [0, 1]: EMA of 1 (contribution present and on time) or 0."""
    return moving_average(previous, 1.0 if alive else 0.0, alpha)
