"""The inner learning-rate schedule, checked by hand."""

from __future__ import annotations

import pytest

from gauntlet.train.schedule import inner_lr


def test_constant_without_warmup_or_decay() -> None:
    assert inner_lr(0, base_lr=1.0, warmup_steps=0, decay_steps=0, min_ratio=0.1) == 1.0
    assert inner_lr(10_000, base_lr=1.0, warmup_steps=0, decay_steps=0, min_ratio=0.1) == 1.0


def test_linear_warmup_reaches_the_peak_at_its_last_step() -> None:
    lrs = [inner_lr(s, base_lr=2.0, warmup_steps=4, decay_steps=0, min_ratio=0.1) for s in range(5)]
    assert lrs == [0.5, 1.0, 1.5, 2.0, 2.0]


def test_cosine_decays_to_the_minimum_and_stays() -> None:
    kwargs = {"base_lr": 1.0, "warmup_steps": 0, "decay_steps": 100, "min_ratio": 0.1}
    assert inner_lr(0, **kwargs) == pytest.approx(1.0)
    assert inner_lr(50, **kwargs) == pytest.approx(0.55)
    assert inner_lr(100, **kwargs) == pytest.approx(0.1)
    assert inner_lr(500, **kwargs) == pytest.approx(0.1)


def test_negative_step_is_an_error() -> None:
    with pytest.raises(ValueError):
        inner_lr(-1, base_lr=1.0, warmup_steps=0, decay_steps=0, min_ratio=0.1)
