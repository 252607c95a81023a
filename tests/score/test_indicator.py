"""Own-vs-random uniqueness indicator."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.indicator import own_vs_random_indicator, update_uniqueness


def test_helping_own_pages_more_scores_plus_one() -> None:
    assert own_vs_random_indicator(0.3, 0.1) == 1.0


def test_a_tie_or_worse_scores_minus_one() -> None:
    assert own_vs_random_indicator(0.1, 0.1) == -1.0
    assert own_vs_random_indicator(0.05, 0.1) == -1.0


def test_margin_must_be_exceeded() -> None:
    assert own_vs_random_indicator(0.3, 0.1, margin=0.25) == -1.0
    assert own_vs_random_indicator(0.3, 0.1, margin=0.15) == 1.0


def test_graded_indicator_is_tanh_of_gap_over_scale() -> None:
    assert own_vs_random_indicator(0.3, 0.1, graded=True, scale=0.1) == pytest.approx(
        math.tanh(2.0)
    )


def test_nonfinite_improvement_scores_minus_one() -> None:
    assert own_vs_random_indicator(math.nan, 0.1) == -1.0
    assert own_vs_random_indicator(0.3, math.inf, graded=True) == -1.0


def test_uniqueness_average_seeds_then_blends_and_clamps() -> None:
    assert update_uniqueness(None, 1.0, 0.2) == 1.0
    assert update_uniqueness(1.0, -1.0, 0.2) == pytest.approx(0.6)
    assert update_uniqueness(None, 5.0, 0.2) == 1.0
