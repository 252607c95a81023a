"""Miner state files: exact round trip; anything unusable means a fresh start, never a crash."""

from __future__ import annotations

from pathlib import Path

import torch

from gauntlet.node.miner_state import MinerState, load_state, save_state

SHAPES = {"w": (2, 3), "b": (3,)}


def _state() -> MinerState:
    return MinerState(
        window=7, step=140, error_feedback={"w": torch.randn(2, 3), "b": torch.randn(3)}
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    path, state = tmp_path / "s.safetensors", _state()
    save_state(path, state, model_name="tiny")
    loaded = load_state(path, model_name="tiny", shapes=SHAPES)
    assert (loaded.window, loaded.step) == (7, 140)
    assert all(torch.equal(loaded.error_feedback[k], v) for k, v in state.error_feedback.items())


def test_missing_file_is_a_fresh_state(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent", model_name="tiny", shapes=SHAPES) == MinerState.fresh()


def test_state_of_another_model_or_shape_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    save_state(path, _state(), model_name="tiny")
    assert load_state(path, model_name="small", shapes=SHAPES).window == -1
    assert load_state(path, model_name="tiny", shapes={"w": (3, 2), "b": (3,)}).window == -1


def test_corrupt_file_is_a_fresh_state(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    path.write_bytes(b"\xff" * 64)
    assert load_state(path, model_name="tiny", shapes=SHAPES).window == -1


def test_the_key_of_an_unrevealed_upload_survives_a_restart(tmp_path) -> None:
    from gauntlet.node.miner_state import MinerState, load_state, save_state

    state = MinerState(window=7, step=40, error_feedback={}, reveal_key=bytes(range(32)))
    save_state(tmp_path / "m.safetensors", state, model_name="tiny")
    loaded = load_state(tmp_path / "m.safetensors", model_name="tiny", shapes={})
    assert loaded.reveal_key == bytes(range(32)) and loaded.window == 7
