"""The exponential moving average every per-peer average in scoring uses."""

from __future__ import annotations


def moving_average(previous: float | None, value: float, alpha: float) -> float:
    """Exponential moving average; the first value seeds it (``previous`` None)."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return value if previous is None else (1 - alpha) * previous + alpha * value
