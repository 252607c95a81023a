"""Sealed contributions: nothing readable before the reveal, nothing else openable after it,
and a worked vector a third-party client can check."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol import errors
from protocol.sealed import (
    MAGIC,
    BadReveal,
    SealBroken,
    associated_data,
    make_reveal,
    open_reveal,
    open_sealed,
    seal_payload,
    unseal,
)
from protocol.signing import keypair_from_uri

VECTOR = json.loads(
    (Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sealed.json").read_text()
)
PAYLOAD = b"a signed payload would be here " * 40
MINER, OTHER = keypair_from_uri("//miner/1"), keypair_from_uri("//miner/2")


def _open(raw: bytes, hotkey: str = MINER.ss58_address, window: int = 5):
    return open_sealed(
        raw, expected_hotkey=hotkey, expected_window=window, expected_netuid=1, max_bytes=1 << 20
    )


def _sealed(payload: bytes = PAYLOAD) -> tuple[bytes, bytes]:
    return seal_payload(payload, netuid=1, window=5, uid=3, signer=MINER)


def test_the_sealed_object_opens_to_the_payload_with_the_revealed_key() -> None:
    raw, key = _sealed()
    sealed = _open(raw)
    assert PAYLOAD not in raw and PAYLOAD[:31] not in raw
    assert sealed.header.uid == 3 and sealed.sha256 == hashlib.sha256(raw).hexdigest()
    assert unseal(sealed, key) == PAYLOAD


def test_each_seal_uses_a_fresh_key() -> None:
    (first, key1), (second, key2) = _sealed(), _sealed()
    assert key1 != key2 and first[-64:] != second[-64:]


def test_another_key_does_not_open_it() -> None:
    raw, _ = _sealed()
    with pytest.raises(BadReveal):
        unseal(_open(raw), bytes(32))


def test_a_key_that_matches_the_commitment_but_not_the_ciphertext_is_a_broken_seal() -> None:
    """A header committing to key B over a ciphertext made with key A: the author's fault."""
    raw, key = _sealed()
    _, other_key = _sealed()
    sealed = _open(raw)
    forged = sealed.header.model_copy(update={"key_sha256": hashlib.sha256(other_key).hexdigest()})
    with pytest.raises(SealBroken):
        unseal(type(sealed)(forged, sealed.ciphertext, sealed.sha256), other_key)


def test_a_flipped_ciphertext_byte_fails_the_signed_hash() -> None:
    raw, _ = _sealed()
    tampered = raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:]
    with pytest.raises(errors.HashMismatch):
        _open(tampered)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda raw: b"NOTSEAL!" + raw[8:], errors.MalformedPayload),
        (lambda raw: raw[:8] + struct.pack("<I", 10**6) + raw[12:], errors.MalformedPayload),
        (lambda raw: raw[:8] + struct.pack("<I", 0) + raw[12:], errors.MalformedPayload),
        (lambda raw: raw[:-1], errors.MalformedPayload),
        (lambda raw: raw[:5], errors.MalformedPayload),
    ],
    ids=["magic", "huge-header", "empty-header", "short-ciphertext", "truncated"],
)
def test_a_malformed_object_is_a_typed_error(mutate, error) -> None:
    raw, _ = _sealed()
    with pytest.raises(error):
        _open(mutate(raw))


def test_a_seal_by_someone_else_is_refused() -> None:
    raw, _ = seal_payload(PAYLOAD, netuid=1, window=5, uid=3, signer=OTHER)
    with pytest.raises(errors.WrongAuthor):
        _open(raw)


def test_a_seal_of_another_window_is_refused() -> None:
    raw, _ = _sealed()
    with pytest.raises(errors.WrongWindow):
        _open(raw, window=6)


def test_an_oversized_object_is_refused_before_parsing() -> None:
    raw, _ = _sealed()
    with pytest.raises(errors.PayloadTooLarge):
        open_sealed(raw, expected_hotkey=MINER.ss58_address, expected_window=5, expected_netuid=1,
                    max_bytes=len(raw) - 1)  # fmt: skip


def test_a_reveal_round_trips_and_is_bound_to_its_author_and_window() -> None:
    key = bytes(range(32))
    raw = make_reveal(netuid=1, window=5, key=key, signer=MINER)
    assert open_reveal(raw, expected_hotkey=MINER.ss58_address, expected_window=5, netuid=1) == key
    with pytest.raises(errors.WrongAuthor):
        open_reveal(raw, expected_hotkey=OTHER.ss58_address, expected_window=5, netuid=1)
    with pytest.raises(errors.WrongWindow):
        open_reveal(raw, expected_hotkey=MINER.ss58_address, expected_window=6, netuid=1)
    with pytest.raises(BadReveal):
        open_reveal(raw, expected_hotkey=MINER.ss58_address, expected_window=5, netuid=2)


def test_the_worked_vector_opens_as_documented() -> None:
    v = VECTOR
    raw = bytes.fromhex(v["sealed_hex"])
    assert raw[:8] == MAGIC and hashlib.sha256(raw).hexdigest() == v["sealed_sha256"]
    assert keypair_from_uri(v["signer_uri"]).ss58_address == v["hotkey"]
    sealed = open_sealed(raw, expected_hotkey=v["hotkey"], expected_window=v["window"],
                         expected_netuid=v["netuid"], max_bytes=1 << 16)  # fmt: skip
    key, nonce = bytes.fromhex(v["key_hex"]), bytes.fromhex(v["nonce_hex"])
    assert sealed.header.nonce == v["nonce_hex"] and sealed.header.key_sha256 == v["key_sha256"]
    assert sealed.header.payload_sha256 == v["payload_sha256"]
    assert unseal(sealed, key) == bytes.fromhex(v["payload_hex"])
    aad = associated_data(v["netuid"], v["window"], v["hotkey"])
    assert aad.hex() == v["associated_data_hex"]
    # The ciphertext is plain ChaCha20-Poly1305 (RFC 8439) of the payload: any library agrees.
    expected = ChaCha20Poly1305(key).encrypt(nonce, bytes.fromhex(v["payload_hex"]), aad)
    assert (
        raw.endswith(expected)
        and len(raw) - len(expected) == 12 + struct.unpack_from("<I", raw, 8)[0]
    )
