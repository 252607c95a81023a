"""The skeleton's scoring: loss improvement, a moving average, weights from scores."""

from __future__ import annotations

from collections.abc import Mapping


def loss_improvement(loss_before: float, loss_after: float) -> float:
    """How much applying a contribution alone lowered the loss (nats/token); negative if it hurt."""
    return loss_before - loss_after


def moving_average(previous: float | None, value: float, alpha: float) -> float:
    """Exponential moving average; the first value seeds it."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return value if previous is None else (1 - alpha) * previous + alpha * value


def weights_from_scores(scores: Mapping[int, float]) -> dict[int, float]:
    """Positive scores normalised to sum to 1; all-zero when no score is positive."""
    positive = {uid: max(0.0, score) for uid, score in scores.items()}
    total = sum(positive.values())
    if total <= 0:
        return {uid: 0.0 for uid in scores}
    return {uid: value / total for uid, value in positive.items()}
