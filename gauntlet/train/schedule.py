"""The inner learning-rate schedule: linear warm-up, then constant or cosine decay.

Counted in global inner steps since the run's start window, so a miner that
restarts picks the schedule up where the network is, not from zero.
"""

from __future__ import annotations

import math


def inner_lr(
    step: int, *, base_lr: float, warmup_steps: int, decay_steps: int, min_ratio: float
) -> float:
    """Learning rate at global inner ``step`` (0-based).

    ``decay_steps == 0`` keeps ``base_lr`` after warm-up; otherwise a cosine goes
    from ``base_lr`` to ``min_ratio * base_lr`` over ``decay_steps`` steps after warm-up.
    """
    if step < 0:
        raise ValueError("step must be non-negative")
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if decay_steps <= 0:
        return base_lr
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return base_lr * (min_ratio + (1 - min_ratio) * cosine)
