"""Shared by the codec tests: a codec's arrays signed into a payload and parsed back."""

from __future__ import annotations

from typing import Any

from protocol.container import Limits, Payload, decode_payload, encode_payload
from protocol.schemas import CodecParams, ContributionManifest
from protocol.signing import keypair_from_uri


def manifest(codec: CodecParams) -> ContributionManifest:
    """Alice's manifest for window 3 on netuid 1, naming ``codec``."""
    alice = keypair_from_uri("//Alice")
    return ContributionManifest(
        netuid=1, window=3, uid=0, hotkey=alice.ss58_address, model="tiny",
        fingerprint=[0.5], page_ids=[1], codec=codec, tensors_sha256="0" * 64,
    )  # fmt: skip


def parsed(tensors: dict, codec: Any, shapes: dict, max_bytes: int = 1 << 22) -> Payload:
    """``tensors`` signed by Alice under ``codec``'s params, through the real payload parser
    with the codec's specs for ``shapes`` (raises what the parser raises)."""
    alice = keypair_from_uri("//Alice")
    data = encode_payload(tensors, manifest(CodecParams(codec.params)), alice)
    return decode_payload(
        data, limits=Limits(max_bytes=max_bytes), expected_hotkey=alice.ss58_address,
        expected_window=3, expected_netuid=1, specs=codec.specs(shapes),
    )  # fmt: skip
