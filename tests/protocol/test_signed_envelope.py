"""Signed JSON envelopes around the lead validator's artifacts."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import errors
from protocol.envelope import ENVELOPE_DOMAIN, canonical_json, open_envelope, seal
from protocol.schemas import (
    AggregatedContribution,
    AggregationRecord,
    CheckpointFile,
    CheckpointManifest,
    PeerEntry,
    PeerSet,
    TensorInfo,
)
from protocol.signing import sign
from protocol.version import PROTOCOL_VERSION


def peer_set(hotkey: str, window: int = 10) -> PeerSet:
    return PeerSet(
        netuid=3,
        window=window,
        hotkey=hotkey,
        peers=[PeerEntry(uid=1, hotkey="5Fminer1"), PeerEntry(uid=4, hotkey="5Fminer4")],
    )


def test_peer_set_round_trip(miner) -> None:
    original = peer_set(miner.ss58_address)
    opened = open_envelope(seal(original, miner), PeerSet, expected_signer=miner.ss58_address)
    assert opened == original


def test_aggregation_record_round_trip(miner) -> None:
    record = AggregationRecord(
        netuid=3,
        window=9,
        hotkey=miner.ss58_address,
        peer_set_window=0,
        contributions=[AggregatedContribution(uid=1, hotkey="5Fminer1", sha256="ab" * 32)],
        fingerprint=[0.1, -2.5e-7],
    )
    assert open_envelope(seal(record, miner), AggregationRecord, expected_window=9) == record


def test_checkpoint_manifest_round_trip(miner) -> None:
    manifest = CheckpointManifest(
        netuid=3,
        window=100,
        hotkey=miner.ss58_address,
        model="tiny",
        dataset_id="fineweb-edu/v1",
        tensors=[TensorInfo(name="tok.weight", dtype="BF16", shape=[256, 64])],
        files=[CheckpointFile(name="model.safetensors", size=32768, sha256="cd" * 32)],
    )
    assert open_envelope(seal(manifest, miner), CheckpointManifest) == manifest


def test_seal_refuses_an_artifact_of_another_author(miner, other) -> None:
    with pytest.raises(ValueError):
        seal(peer_set(other.ss58_address), miner)


def test_unexpected_signer_is_wrong_author(miner, other) -> None:
    with pytest.raises(errors.WrongAuthor):
        open_envelope(
            seal(peer_set(other.ss58_address), other), PeerSet, expected_signer=miner.ss58_address
        )


def test_body_naming_another_author_is_wrong_author(miner, other) -> None:
    # ``other`` validly signs a body that claims ``miner`` wrote it.
    body = canonical_json(peer_set(miner.ss58_address))
    envelope = {
        "protocol_version": PROTOCOL_VERSION,
        "kind": "envelope",
        "signer": other.ss58_address,
        "body": body.decode(),
        "signature": sign(other, ENVELOPE_DOMAIN + body).hex(),
    }
    with pytest.raises(errors.WrongAuthor):
        open_envelope(json.dumps(envelope).encode(), PeerSet)


def test_tampered_body_is_a_bad_signature(miner) -> None:
    envelope = json.loads(seal(peer_set(miner.ss58_address), miner))
    envelope["body"] = envelope["body"].replace('"uid":4', '"uid":5')
    with pytest.raises(errors.BadSignature):
        open_envelope(json.dumps(envelope).encode(), PeerSet)


def test_signature_without_the_domain_is_a_bad_signature(miner) -> None:
    envelope = json.loads(seal(peer_set(miner.ss58_address), miner))
    envelope["signature"] = sign(miner, envelope["body"].encode()).hex()
    with pytest.raises(errors.BadSignature):
        open_envelope(json.dumps(envelope).encode(), PeerSet)


def test_other_window_is_wrong_window(miner) -> None:
    with pytest.raises(errors.WrongWindow):
        open_envelope(
            seal(peer_set(miner.ss58_address, window=10), miner), PeerSet, expected_window=11
        )


def test_other_artifact_kind_is_malformed(miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        open_envelope(seal(peer_set(miner.ss58_address), miner), AggregationRecord)


def test_oversized_envelope_is_too_large(miner) -> None:
    with pytest.raises(errors.PayloadTooLarge):
        open_envelope(seal(peer_set(miner.ss58_address), miner), PeerSet, max_bytes=64)


def test_other_envelope_version_is_wrong_version(miner) -> None:
    envelope = json.loads(seal(peer_set(miner.ss58_address), miner))
    envelope["protocol_version"] = PROTOCOL_VERSION + 1
    with pytest.raises(errors.WrongVersion):
        open_envelope(json.dumps(envelope).encode(), PeerSet)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=1024))
def test_random_bytes_are_a_protocol_error(miner, raw) -> None:
    with pytest.raises(errors.ProtocolError):
        open_envelope(raw, PeerSet)


def test_canonical_json_is_sorted_and_compact(miner) -> None:
    text = canonical_json(peer_set(miner.ss58_address)).decode()
    assert " " not in text
    assert list(json.loads(text)) == sorted(json.loads(text))
