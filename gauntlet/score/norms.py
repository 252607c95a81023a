"""Norm outliers: a contribution scaled up to outweigh the others in the aggregate.

Aggregation normalises each peer's update, so scaling buys nothing there; but a
contribution many times larger than the window's typical one is either broken
or an attempt to dominate, and is penalised rather than evaluated.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping


def norm_outliers(norms: Mapping[int, float], ratio: float, min_peers: int = 3) -> dict[int, float]:
    """uid -> (its norm / the median norm) for every uid above ``ratio`` times the median.

    The median of fewer than ``min_peers`` norms says little, so then nothing is an
    outlier; a non-finite norm always is (reported as ``inf``).
    """
    finite = [n for n in norms.values() if math.isfinite(n)]
    out = {uid: math.inf for uid, n in norms.items() if not math.isfinite(n)}
    if len(finite) < min_peers:
        return out
    median = statistics.median(finite)
    if median <= 0:
        return out
    for uid, n in norms.items():
        if math.isfinite(n) and n > ratio * median:
            out[uid] = n / median
    return out
