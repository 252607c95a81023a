"""ScoringConfig validates its knobs."""

from __future__ import annotations

import pytest

from gauntlet.score.config import ScoringConfig


def test_defaults_follow_the_gauntlet_run() -> None:
    cfg = ScoringConfig()
    assert (cfg.rating_beta, cfg.rating_tau, cfg.weight_power) == (7.0, 0.1, 2.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"sync_max_steps": 0.0},
        {"sync_shape": "cubic"},
        {"uniqueness_ema": 0.0},
        {"rating_tau": 0.0},
        {"rating_memory": 0.5},  # under one evaluation: would overshoot past the fresh rating
        {"rating_memory": -1.0},
        {"penalties": {"late": 1.5}},
        {"penalties": {"bogus": 0.5}},
        {"explained_threshold": 1.5},
        {"explain_max_sources": 0},
        {"uniqueness_floor": -0.1},
        {"uniqueness_floor": 0.5},  # the default saturation: the gate would never open
        {"uniqueness_floor": 0.3, "uniqueness_saturation": 0.2},
    ],
)
def test_out_of_range_knobs_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        ScoringConfig(**bad)


def test_penalty_is_one_for_ok_and_listed_for_faults() -> None:
    cfg = ScoringConfig()
    assert cfg.penalty("ok") == 1.0
    assert cfg.penalty("late") == 0.5
    assert cfg.penalty("copy") == 0.0
