"""Skeleton scoring functions, with hand-computed expectations."""

from __future__ import annotations

import pytest

from gauntlet.score.basic import loss_improvement, moving_average, weights_from_scores


def test_loss_improvement_is_positive_when_loss_drops() -> None:
    assert loss_improvement(3.0, 2.5) == pytest.approx(0.5)
    assert loss_improvement(2.5, 3.0) == pytest.approx(-0.5)


def test_moving_average_seeds_with_first_value_then_blends() -> None:
    assert moving_average(None, 2.0, 0.5) == 2.0
    assert moving_average(2.0, 4.0, 0.25) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        moving_average(1.0, 1.0, 0.0)


def test_weights_normalise_positive_scores_and_zero_the_rest() -> None:
    assert weights_from_scores({1: 3.0, 2: 1.0, 3: -2.0}) == {1: 0.75, 2: 0.25, 3: 0.0}


def test_weights_are_all_zero_without_a_positive_score() -> None:
    assert weights_from_scores({1: 0.0, 2: -1.0}) == {1: 0.0, 2: 0.0}
    assert weights_from_scores({}) == {}
