"""Window arithmetic, object keys and peer-set selection: pure functions of their inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import keys
from protocol.peers import peer_set_in_force
from protocol.schemas import PeerSet
from protocol.version import PROTOCOL_VERSION
from protocol.windows import (
    blocks_until_window_end,
    evaluation_window,
    gather_window,
    is_on_time,
    is_window_start,
    upload_deadline_block,
    upload_deadline_time,
    window_end,
    window_of,
    window_start,
)

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


@given(st.integers(0, 10**12), st.integers(1, 10**4))
def test_a_block_lies_inside_its_window(block: int, length: int) -> None:
    w = window_of(block, length)
    assert window_start(w, length) <= block < window_end(w, length)
    assert 1 <= blocks_until_window_end(block, length) <= length


def test_window_boundaries() -> None:
    assert [window_of(b, 10) for b in (0, 9, 10, 19, 20)] == [0, 0, 1, 1, 2]
    assert upload_deadline_block(3, 10) == 40 == window_start(4, 10)
    assert is_window_start(40, 10) and not is_window_start(41, 10)


def test_the_boundary_gathers_the_window_that_just_ended() -> None:
    assert gather_window(9, 10) is None
    assert gather_window(10, 10) == 0
    assert gather_window(19, 10) == 0
    assert gather_window(20, 10) == 1
    assert evaluation_window(25, 10) == 1


def test_deadline_includes_grace_inclusively() -> None:
    deadline = upload_deadline_time(1000.0, 6.0)
    assert deadline == 1006.0
    assert is_on_time(1006.0, 1000.0, 6.0)
    assert not is_on_time(1006.001, 1000.0, 6.0)
    with pytest.raises(ValueError):
        upload_deadline_time(1000.0, -1.0)


@pytest.mark.parametrize("args", [(-1, 10), (5, 0), (5, -3)])
def test_invalid_inputs_raise(args) -> None:
    with pytest.raises(ValueError):
        window_of(*args)


def test_every_key_names_version_window_and_author() -> None:
    builders = [
        keys.contribution_key,
        keys.window_report_key,
        keys.peer_set_key,
        keys.aggregation_record_key,
        keys.checkpoint_manifest_key,
        keys.validator_state_key,
        lambda w, h: keys.checkpoint_file_key(w, h, "model.safetensors"),
    ]
    for build in builders:
        key = build(1234, HOTKEY)
        assert key.startswith(f"gauntlet/v{PROTOCOL_VERSION}/") and key.startswith(
            keys.protocol_prefix()
        )
        assert HOTKEY in key
        assert keys.window_of_key(key) == 1234


def test_keys_sort_in_window_order() -> None:
    assert sorted([keys.peer_set_key(w, "a") for w in (100, 9, 10)]) == [
        keys.peer_set_key(w, "a") for w in (9, 10, 100)
    ]
    assert keys.contribution_key(7, "a").startswith(keys.contributions_prefix(7))
    assert keys.checkpoint_manifest_key(7, "a").startswith(keys.checkpoints_prefix())


@pytest.mark.parametrize("hotkey", ["", "a/b", "a\n", "../x", "x" * 65])
def test_unsafe_hotkeys_are_refused(hotkey) -> None:
    with pytest.raises(ValueError):
        keys.contribution_key(1, hotkey)


@pytest.mark.parametrize("name", ["manifest.json", "../x", "a/b", "", "a\n"])
def test_unsafe_checkpoint_file_names_are_refused(name) -> None:
    with pytest.raises(ValueError):
        keys.checkpoint_file_key(1, "a", name)


@pytest.mark.parametrize("window", [-1, 10**10])
def test_windows_outside_the_key_range_are_refused(window) -> None:
    with pytest.raises(ValueError):
        keys.peer_set_key(window, "a")


def test_peer_set_in_force_is_the_latest_not_in_the_future() -> None:
    sets = [PeerSet(netuid=1, window=w, hotkey="lead", peers=[]) for w in (20, 0, 10)]
    assert peer_set_in_force(sets, 5).window == 0
    assert peer_set_in_force(sets, 10).window == 10
    assert peer_set_in_force(sets, 19).window == 10
    assert peer_set_in_force(sets, 1000).window == 20
    assert peer_set_in_force(sets[:1], 5) is None
