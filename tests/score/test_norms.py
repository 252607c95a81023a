"""Norm outliers: updates many times the window's median norm."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.norms import norm_outliers


def test_fewer_than_min_peers_finite_norms_flag_nothing() -> None:
    # 100 is 50x the other norm, but a median of two norms says little.
    assert norm_outliers({1: 2.0, 2: 100.0}, ratio=8.0) == {}


def test_min_peers_is_a_parameter() -> None:
    # Median of [1, 1, 100] is 1; 100 > 8 * 1.
    norms = {1: 1.0, 2: 1.0, 3: 100.0}
    assert norm_outliers(norms, ratio=8.0) == {3: 100.0}
    assert norm_outliers(norms, ratio=8.0, min_peers=4) == {}


def test_non_finite_norms_are_always_outliers_reported_as_inf() -> None:
    # Only one finite norm: too few for a median, yet NaN and ±inf are still caught.
    out = norm_outliers({1: 1.0, 2: math.nan, 3: math.inf, 4: -math.inf}, ratio=8.0)
    assert out == {2: math.inf, 3: math.inf, 4: math.inf}


def test_non_finite_norms_do_not_enter_the_median() -> None:
    # Finite [1, 2, 3, 40]: median (2 + 3) / 2 = 2.5, and 40 / 2.5 = 16. Counting the NaN
    # as a fifth value would move the median to 3 (or make it undefined).
    out = norm_outliers({1: 1.0, 2: 2.0, 3: 3.0, 4: math.nan, 5: 40.0}, ratio=8.0)
    assert out == {4: math.inf, 5: 16.0}


def test_zero_median_flags_only_non_finite_norms() -> None:
    # Three zero updates and one real one: the median is 0, so no ratio exists.
    assert norm_outliers({1: 0.0, 2: 0.0, 3: 0.0, 4: 5.0}, ratio=8.0) == {}
    assert norm_outliers({1: 0.0, 2: 0.0, 3: 0.0, 4: 5.0, 5: math.nan}, ratio=8.0) == {5: math.inf}


def test_a_norm_exactly_at_the_ratio_is_not_an_outlier() -> None:
    # Median 2, ratio 8: the limit is 16. At 16 it is allowed, just above it is not.
    assert norm_outliers({1: 2.0, 2: 2.0, 3: 2.0, 4: 16.0}, ratio=8.0) == {}
    assert norm_outliers({1: 2.0, 2: 2.0, 3: 2.0, 4: 16.5}, ratio=8.0) == {4: 8.25}


def test_even_count_median_is_the_mean_of_the_middle_two() -> None:
    # [1, 3, 5, 100]: median 4, limit 32; 100 / 4 = 25.
    assert norm_outliers({1: 1.0, 2: 3.0, 3: 5.0, 4: 100.0}, ratio=8.0) == {4: 25.0}


def test_an_update_scaled_twenty_times_among_honest_ones_is_caught() -> None:
    honest = {0: 1.0, 1: 1.2, 2: 0.9, 3: 1.1}
    scaled = 20 * 1.05
    out = norm_outliers({**honest, 4: scaled}, ratio=8.0)
    # Sorted [0.9, 1.0, 1.1, 1.2, 21.0]: median 1.1.
    assert set(out) == {4}
    assert out[4] == pytest.approx(21.0 / 1.1)


def test_honest_spread_is_not_an_outlier() -> None:
    # A 5x spread between honest updates stays under the default limit of 8.
    assert norm_outliers({0: 0.5, 1: 1.0, 2: 1.5, 3: 2.5}, ratio=8.0) == {}
