"""Uniqueness indicator: a contribution must help its own pages more than random pages.

A miner that trained on its assigned pages lowers the loss on those pages more
than on pages it never saw. A contribution that does not (trained on other
data, or copied from someone with other pages) scores -1.
"""

from __future__ import annotations

import math

from gauntlet.score.average import moving_average


def own_vs_random_indicator(
    own_improvement: float,
    random_improvement: float,
    *,
    margin: float = 0.0,
    graded: bool = False,
    scale: float = 0.01,
) -> float:
    """Indicator in [-1, 1] from two improvements in the same units.

    Binary (``graded=False``): +1 if ``own > random + margin`` else -1 (ties and
    non-finite inputs give -1). Graded: ``tanh((own - random - margin) / scale)``,
    so a contribution exactly at the margin scores 0 and one far above it ~+1.
    """
    if not (math.isfinite(own_improvement) and math.isfinite(random_improvement)):
        return -1.0
    gap = own_improvement - random_improvement - margin
    if graded:
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return math.tanh(gap / scale)
    return 1.0 if gap > 0 else -1.0


def update_uniqueness(previous: float | None, indicator: float, alpha: float) -> float:
    """Moving average of the indicator, in [-1, 1]; the first value seeds it."""
    return moving_average(previous, max(-1.0, min(1.0, indicator)), alpha)
