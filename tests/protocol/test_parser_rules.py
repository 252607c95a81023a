"""SPEC "Parser rules": one reading of every network document, and only typed errors."""

from __future__ import annotations

import json
import struct

import pytest
from protocol_helpers import LIMITS, NETUID, SPECS, WINDOW, assemble, resigned, split

from protocol import errors
from protocol.commitment import parse_commitment
from protocol.container import decode_payload
from protocol.envelope import open_envelope, seal
from protocol.schemas import PeerEntry, PeerSet
from protocol.strict_json import parse_hex, parse_json
from protocol.version import PROTOCOL_VERSION


def decode(data: bytes, hotkey: str, specs=SPECS):
    return decode_payload(
        data,
        limits=LIMITS,
        expected_hotkey=hotkey,
        expected_window=WINDOW,
        expected_netuid=NETUID,
        specs=specs,
    )


def with_extra_tensor(payload: bytes, signer, shape: list[int]) -> bytes:
    """``payload`` plus a zero-byte tensor of ``shape`` at the end, validly re-signed."""
    header, data = split(payload)
    header["zero"] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data)]}
    return resigned(assemble(header, data), signer)


def raw_header(payload: bytes) -> tuple[str, bytes]:
    (n,) = struct.unpack("<Q", payload[:8])
    return payload[8 : 8 + n].decode(), payload[8 + n :]


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("specs", [SPECS, None])
def test_signed_zero_size_tensor_of_shape_0_by_2_pow_63_is_malformed(payload, miner, specs) -> None:
    # numpy's reshape raised a plain ValueError here, which escaped the parser.
    with pytest.raises(errors.MalformedPayload):
        decode(with_extra_tensor(payload, miner, [0, 2**63]), miner.ss58_address, specs)


def test_zero_size_tensor_whose_other_dimensions_multiply_past_the_bound_is_too_large(
    payload, miner
) -> None:
    with pytest.raises(errors.PayloadTooLarge):
        decode(with_extra_tensor(payload, miner, [0, 2**32, 2**32, 2**32]), miner.ss58_address)


def test_small_zero_size_tensor_is_still_accepted_without_specs(payload, miner) -> None:
    decoded = decode(with_extra_tensor(payload, miner, [0, 4]), miner.ss58_address, specs=None)
    assert decoded.tensors["zero"].shape == (0, 4)


# --- text encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_header_not_in_plain_utf8_is_malformed(payload, miner, encoding) -> None:
    # json.loads(bytes) detects and accepts all of these; safetensors and others do not.
    text, data = raw_header(payload)
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(text.encode(encoding), data), miner.ss58_address)


def test_manifest_with_a_byte_order_mark_is_malformed(payload, miner) -> None:
    header, data = split(payload)
    text = "\ufeff" + header["__metadata__"]["manifest"]
    header["__metadata__"] = {
        "manifest": text,
        "signature": miner.sign(text.encode()).hex(),
    }
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(header, data), miner.ss58_address)


# --- hex -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "respell",
    [
        str.upper,
        lambda s: " ".join(s[i : i + 2] for i in range(0, len(s), 2)),
        lambda s: s + " ",
        lambda s: "0x" + s,
    ],
    ids=["upper", "spaces", "trailing-space", "0x"],
)
def test_payload_signature_spelled_other_than_lower_case_hex_is_malformed(
    payload, miner, respell
) -> None:
    # bytes.fromhex reads all of these as the same signature: one payload, many hashes.
    header, data = split(payload)
    header["__metadata__"]["signature"] = respell(header["__metadata__"]["signature"])
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(header, data), miner.ss58_address)


@pytest.mark.parametrize("text", ["AB", "a", "0x00", " 00", "00\n", "０"])
def test_parse_hex_refuses_non_canonical_spellings(text) -> None:
    with pytest.raises(errors.MalformedPayload):
        parse_hex(text, "hash")


def test_parse_hex_reads_canonical_hex() -> None:
    assert parse_hex("00ff10", "hash") == b"\x00\xff\x10"


# --- duplicate keys and numbers ------------------------------------------------------------------


def test_duplicate_keys_are_refused_at_any_depth() -> None:
    for text in ['{"a":1,"a":1}', '{"a":{"b":1,"b":2}}', '[{"x":[{"y":1,"y":1}]}]']:
        with pytest.raises(errors.MalformedPayload, match="duplicate"):
            parse_json(text, "doc")


def test_number_overflowing_to_infinity_is_refused() -> None:
    with pytest.raises(errors.MalformedPayload):
        parse_json('{"x":1e999}', "doc")


def peer_set(lead) -> PeerSet:
    return PeerSet(
        netuid=NETUID, window=WINDOW, hotkey=lead.ss58_address, peers=[PeerEntry(uid=1, hotkey="a")]
    )


def test_envelope_with_a_duplicate_key_is_malformed(miner) -> None:
    # pydantic reads the last of two keys; another implementation may read the first.
    raw = seal(peer_set(miner), miner).decode()
    duplicated = raw[:-1] + ',"signer":"' + miner.ss58_address + '"}'
    with pytest.raises(errors.MalformedPayload, match="duplicate"):
        open_envelope(duplicated.encode(), PeerSet, expected_signer=miner.ss58_address)


def test_envelope_body_with_a_duplicate_key_is_malformed_even_when_signed(miner) -> None:
    body = json.loads(seal(peer_set(miner), miner))["body"]
    body = body[:-1] + ',"window":' + str(WINDOW) + "}"
    envelope = {
        "body": body,
        "kind": "envelope",
        "protocol_version": PROTOCOL_VERSION,
        "signature": miner.sign(b"gauntlet/envelope/v1\x00" + body.encode()).hex(),
        "signer": miner.ss58_address,
    }
    with pytest.raises(errors.MalformedPayload, match="duplicate"):
        open_envelope(json.dumps(envelope).encode(), PeerSet)


def test_envelope_with_a_byte_order_mark_is_malformed(miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        open_envelope(b"\xef\xbb\xbf" + seal(peer_set(miner), miner), PeerSet)


def test_commitment_with_a_duplicate_key_is_bad() -> None:
    with pytest.raises(errors.BadCommitment, match="duplicate"):
        parse_commitment('{"kind":"fs","root":"/a","bucket":"x","bucket":"y"}')
