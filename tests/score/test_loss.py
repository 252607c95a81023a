"""Loss improvements, NaN-safe."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.loss import Evaluation, improvement


def test_improvement_is_before_minus_after() -> None:
    assert improvement(3.0, 2.5) == pytest.approx(0.5)
    assert improvement(2.5, 3.0) == pytest.approx(-0.5)


def test_relative_improvement_divides_by_before() -> None:
    assert improvement(4.0, 3.0, relative=True) == pytest.approx(0.25)


def test_nonfinite_loss_after_is_penalised() -> None:
    assert improvement(3.0, math.nan, nonfinite_penalty=2.0) == -2.0
    assert improvement(3.0, math.inf) == -1.0
    assert improvement(3.0, -math.inf, relative=True) == -1.0


def test_nonfinite_baseline_is_neutral() -> None:
    assert improvement(math.nan, 2.0) == 0.0
    assert improvement(math.inf, math.nan) == 0.0
    assert improvement(0.0, 1.0, relative=True) == 0.0


def test_evaluation_reports_own_and_random_improvements() -> None:
    e = Evaluation(own_before=3.0, own_after=2.0, random_before=3.0, random_after=2.5)
    assert e.own_improvement() == pytest.approx(1.0)
    assert e.random_improvement(relative=True) == pytest.approx(0.5 / 3.0)


@pytest.mark.parametrize(
    ("evaluation", "passes"),
    [
        (Evaluation(4.0, 3.8, 4.0, 3.9), True),  # honest: own pages and random pages improve
        (Evaluation(4.0, 3.8, 4.0, 4.05), True),  # own gain outweighs a small general cost
        (Evaluation(4.0, 4.2, 4.0, 4.1), False),  # sign-flipped: its own pages get worse
        (Evaluation(4.0, 4.0, 4.0, 4.0), False),  # no effect at all (noise, empty)
        (Evaluation(4.0, 3.9, 4.0, 4.3), False),  # fits its pages by breaking everything else
        (Evaluation(4.0, math.nan, 4.0, 3.9), False),  # non-finite after
    ],
)
def test_the_member_loss_check(evaluation: Evaluation, passes: bool) -> None:
    from gauntlet.score.loss import passes_member_check

    assert passes_member_check(evaluation) is passes
