"""Final score and power-normalised weights."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.weights import final_score, power_weights


def test_final_score_is_the_product_of_its_parts() -> None:
    assert final_score(10.0, 0.5, 0.8) == pytest.approx(4.0)


def test_final_score_clips_negative_parts_to_zero() -> None:
    assert final_score(-3.0, 0.5, 1.0) == 0.0
    assert final_score(3.0, -0.5, 1.0) == 0.0
    assert final_score(3.0, 0.5, 2.0) == pytest.approx(1.5)


def test_final_score_of_nan_is_zero() -> None:
    assert final_score(math.nan, 1.0, 1.0) == 0.0


def test_power_weights_square_then_normalise() -> None:
    assert power_weights({1: 1.0, 2: 2.0}, 2.0) == pytest.approx({1: 0.2, 2: 0.8})


def test_power_weights_sum_to_one() -> None:
    weights = power_weights({u: u * 0.37 for u in range(1, 30)}, 3.0)
    assert math.fsum(weights.values()) == pytest.approx(1.0)


def test_power_weights_zero_negative_and_nonfinite_scores() -> None:
    assert power_weights({1: 2.0, 2: -1.0, 3: math.nan, 4: math.inf}, 2.0) == {
        1: 1.0,
        2: 0.0,
        3: 0.0,
        4: 0.0,
    }


def test_all_penalised_gives_all_zero_weights() -> None:
    assert power_weights({1: 0.0, 2: -1.0}) == {1: 0.0, 2: 0.0}
    assert power_weights({}) == {}


def test_power_weights_do_not_overflow() -> None:
    assert power_weights({1: 1e200, 2: 1e200}, 4.0) == {1: 0.5, 2: 0.5}


def test_power_one_is_plain_normalisation() -> None:
    assert power_weights({1: 3.0, 2: 1.0}, 1.0) == {1: 0.75, 2: 0.25}


def test_uniqueness_counts_nothing_up_to_the_floor_and_fully_from_the_saturation() -> None:
    def gate(u: float) -> float:
        return final_score(10.0, u, 1.0, saturation=0.5, floor=0.25) / 10.0

    assert gate(-0.4) == 0.0
    assert gate(0.0) == 0.0
    assert gate(0.25) == 0.0  # an average that noise lifted a little above 0 earns nothing
    assert gate(0.3) == pytest.approx(0.2)
    assert gate(0.375) == pytest.approx(0.5)
    assert gate(0.5) == 1.0
    assert gate(0.9) == 1.0
    # Without a floor the same 0.2 average already earns 40% of the score.
    assert final_score(10.0, 0.2, 1.0, saturation=0.5) == pytest.approx(4.0)


def test_a_floor_at_or_above_the_saturation_is_refused() -> None:
    with pytest.raises(ValueError, match="below saturation"):
        final_score(10.0, 0.5, 1.0, saturation=0.5, floor=0.5)
