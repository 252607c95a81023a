"""Scoring state survives a JSON round trip exactly."""

from __future__ import annotations

import json

from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.replay import SketchEntry
from gauntlet.score.state import PeerState, ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window


def _played() -> ValidatorScores:
    cfg = ScoringConfig()
    e1 = Evaluation(3.0, 2.1, 3.0, 2.7)
    e2 = Evaluation(3.1, 3.05, 3.1, 2.9)
    state = advance_window(
        ValidatorScores(),
        0,
        {1: PeerWindow("a", evaluation=e1, sync=0.9), 2: PeerWindow("b", evaluation=e2)},
        cfg,
        new_sketches=[SketchEntry(0, 1, (0.1, 1 / 3, -2.5e-8))],
    )
    return advance_window(state, 1, {1: PeerWindow("a"), 3: PeerWindow("c", outcome="late")}, cfg)


def test_state_round_trips_through_json_exactly() -> None:
    state = _played()
    restored = ValidatorScores.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_state_json_is_strict_json() -> None:
    json.dumps(_played().to_dict(), allow_nan=False)


def test_restored_state_continues_identically() -> None:
    cfg = ScoringConfig()
    state = _played()
    restored = ValidatorScores.from_dict(json.loads(json.dumps(state.to_dict())))
    seen = {1: PeerWindow("a", evaluation=Evaluation(3.0, 2.0, 3.0, 2.5)), 2: PeerWindow("b")}
    assert advance_window(restored, 2, seen, cfg) == advance_window(state, 2, seen, cfg)


def test_empty_state_round_trips() -> None:
    assert ValidatorScores.from_dict(json.loads(json.dumps(ValidatorScores().to_dict()))) == (
        ValidatorScores()
    )


def test_state_exposes_selection_inputs() -> None:
    state = ValidatorScores(peers={4: PeerState("k", starvation=3)})
    assert state.ordinals() == {4: 0.0}
    assert state.starvation() == {4: 3}
