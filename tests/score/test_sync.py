"""Sync: steps behind from fingerprints, the sync score, liveness."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.sync import estimate_steps_behind, sync_score, update_liveness


def test_steps_behind_is_mean_distance_over_typical_step() -> None:
    # mean |diff| = (0.1 + 0.3) / 2 = 0.2; typical step = 0.1 -> 2 steps
    assert estimate_steps_behind([1.0, 2.0], [1.1, 2.3], [0.1, 0.1]) == pytest.approx(2.0)


def test_identical_fingerprint_is_zero_steps_behind() -> None:
    assert estimate_steps_behind([0.5, -0.5], [0.5, -0.5], [0.01, 0.03]) == 0.0


def test_malformed_peer_fingerprint_is_infinitely_behind() -> None:
    assert estimate_steps_behind([1.0], [1.0, 2.0], [0.1, 0.1]) == math.inf
    assert estimate_steps_behind([math.nan, 2.0], [1.0, 2.0], [0.1, 0.1]) == math.inf


def test_unmoved_model_tolerates_only_an_exact_match() -> None:
    assert estimate_steps_behind([1.0], [1.0], [0.0]) == 0.0
    assert estimate_steps_behind([1.1], [1.0], [0.0]) == math.inf


def test_empty_fingerprint_is_in_sync_and_own_length_mismatch_raises() -> None:
    assert estimate_steps_behind([], [], []) == 0.0
    with pytest.raises(ValueError):
        estimate_steps_behind([1.0], [1.0], [])


def test_linear_sync_score_falls_from_one_to_zero_at_threshold() -> None:
    assert sync_score(0.0, 5.0) == 1.0
    assert sync_score(2.0, 5.0) == pytest.approx(0.6)
    assert sync_score(5.0, 5.0) == 0.0
    assert sync_score(9.0, 5.0) == 0.0


def test_exponential_sync_score_is_exp_minus_three_s_over_max() -> None:
    assert sync_score(2.0, 5.0, "exponential") == pytest.approx(math.exp(-1.2))
    assert sync_score(5.0, 5.0, "exponential") == 0.0


def test_sync_score_treats_negative_as_zero_and_nan_or_inf_as_desynced() -> None:
    assert sync_score(-1.0, 5.0) == 1.0
    assert sync_score(math.nan, 5.0) == 0.0
    assert sync_score(math.inf, 5.0) == 0.0


def test_sync_score_rejects_bad_threshold_and_shape() -> None:
    with pytest.raises(ValueError):
        sync_score(1.0, 0.0)
    with pytest.raises(ValueError):
        sync_score(1.0, 5.0, "cubic")


def test_liveness_is_a_moving_average_of_presence() -> None:
    assert update_liveness(None, True, 0.2) == 1.0
    assert update_liveness(1.0, False, 0.2) == pytest.approx(0.8)
