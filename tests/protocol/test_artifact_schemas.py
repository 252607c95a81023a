"""Artifact schemas: strict, versioned, bounded, and consistent inside themselves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.schemas import (
    AggregatedContribution,
    AggregationRecord,
    CheckpointFile,
    CheckpointManifest,
    PeerEntry,
    PeerSet,
    PeerState,
    TensorInfo,
    ValidatorState,
)
from protocol.version import PROTOCOL_VERSION


def test_every_artifact_carries_version_kind_window_and_author() -> None:
    for model in (PeerSet, AggregationRecord, CheckpointManifest, ValidatorState):
        fields = model.model_fields
        assert fields["protocol_version"].default == PROTOCOL_VERSION
        assert "kind" in fields and "hotkey" in fields
        assert "window" in fields or "last_window" in fields


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        PeerSet.model_validate({"netuid": 1, "window": 1, "hotkey": "a", "peers": [], "x": 1})


def test_peer_set_refuses_duplicate_uids_and_hotkeys() -> None:
    with pytest.raises(ValidationError):
        PeerSet(
            netuid=1,
            window=1,
            hotkey="a",
            peers=[PeerEntry(uid=1, hotkey="b"), PeerEntry(uid=1, hotkey="c")],
        )
    with pytest.raises(ValidationError):
        PeerSet(
            netuid=1,
            window=1,
            hotkey="a",
            peers=[PeerEntry(uid=1, hotkey="b"), PeerEntry(uid=2, hotkey="b")],
        )


def test_aggregation_record_refuses_duplicates_and_non_finite_fingerprint() -> None:
    entry = AggregatedContribution(uid=1, hotkey="b", sha256="00" * 32)
    fields = dict(netuid=1, window=1, hotkey="a", peer_set_window=0)
    with pytest.raises(ValidationError):
        AggregationRecord(**fields, contributions=[entry, entry], fingerprint=[])
    with pytest.raises(ValidationError):
        AggregationRecord(**fields, contributions=[entry], fingerprint=[float("nan")])


def test_checkpoint_file_names_cannot_escape_their_folder() -> None:
    for name in ("../x", "a/b", "", "x" * 129):
        with pytest.raises(ValidationError):
            CheckpointFile(name=name, size=1, sha256="00" * 32)


def test_checkpoint_manifest_refuses_unknown_dtype_and_duplicate_tensors() -> None:
    with pytest.raises(ValidationError):
        TensorInfo(name="w", dtype="F64", shape=[1])
    tensor = TensorInfo(name="w", dtype="F32", shape=[2])
    file = CheckpointFile(name="m.safetensors", size=8, sha256="00" * 32)
    with pytest.raises(ValidationError):
        CheckpointManifest(
            netuid=1,
            window=1,
            hotkey="a",
            model="m",
            dataset_id="d",
            tensors=[tensor, tensor],
            files=[file],
        )


def test_validator_state_round_trips_through_json() -> None:
    state = ValidatorState(
        netuid=3,
        hotkey="val",
        last_window=41,
        windows_evaluated=40,
        peers=[
            PeerState(
                hotkey="m1",
                uid=1,
                mu=27.1,
                sigma=7.9,
                moving_averages={"loss_delta": 0.02, "sync": 0.99},
                score=0.4,
                evaluations=12,
                last_evaluated_window=41,
            )
        ],
    )
    assert ValidatorState.model_validate_json(state.model_dump_json()) == state


def test_validator_state_refuses_duplicate_hotkeys_and_bad_ratings() -> None:
    peer = PeerState(hotkey="m1", uid=1, mu=25.0, sigma=8.3)
    with pytest.raises(ValidationError):
        ValidatorState(netuid=1, hotkey="v", peers=[peer, peer])
    with pytest.raises(ValidationError):
        PeerState(hotkey="m1", uid=1, mu=25.0, sigma=0.0)
    with pytest.raises(ValidationError):
        PeerState(hotkey="m1", uid=1, mu=float("inf"), sigma=1.0)
