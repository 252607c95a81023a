"""Sealed contributions: a payload encrypted until its author reveals the key.

A miner uploads its signed payload (:mod:`protocol.container`) *sealed*: encrypted
under a fresh 256-bit key with ChaCha20-Poly1305 (the ``cryptography`` package's
AEAD; nothing home-made here). Validators watch the sealed object arrive before
the deadline; only after the observation has closed does the miner publish the
key (a signed :class:`Reveal`). Nobody, miners included, can read a current-window
update before their own upload for that window is fixed.

Layout of a sealed object::

    8 bytes  MAGIC  b"GNTSEAL\\x01"
    u32 LE   header length N   (1 <= N <= MAX_HEADER_BYTES)
    N bytes  signed envelope (:mod:`protocol.envelope`) of a :class:`SealHeader`
    rest     ciphertext = ChaCha20Poly1305(key).encrypt(nonce, payload, aad)

with ``aad = SEAL_DOMAIN + "{netuid}/{window}/{hotkey}"`` (ASCII). The header binds
the window, netuid, uid and hotkey, ``sha256(key)`` (so one ciphertext cannot be
opened by two keys to two plaintexts: AEADs are not key-committing), and the
sizes and SHA-256 of both ciphertext and payload. A reveal whose key does not
hash to ``key_sha256``, or a ciphertext that fails authentication or hashes to
another payload, is the author's fault (:class:`BadReveal`, :class:`SealBroken`).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Annotated, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pydantic import Field

from protocol.envelope import open_envelope, seal
from protocol.errors import HashMismatch, MalformedPayload, PayloadTooLarge, ProtocolError
from protocol.schemas import Hotkey, Sha256Hex, _Strict
from protocol.signing import Signer
from protocol.version import PROTOCOL_VERSION

MAGIC = b"GNTSEAL\x01"
SEAL_DOMAIN = b"gauntlet/sealed/v1\x00"
AEAD = "chacha20-poly1305"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_HEADER_BYTES = 16 << 10  # a header is ~700 bytes; anything larger is not one
MAX_REVEAL_BYTES = 4096  # a signed reveal is ~400 bytes
_PREFIX = struct.Struct("<8sI")

Hex32 = Annotated[str, Field(pattern=rf"^[0-9a-f]{{{2 * KEY_BYTES}}}$")]
Hex12 = Annotated[str, Field(pattern=rf"^[0-9a-f]{{{2 * NONCE_BYTES}}}$")]


class SealBroken(ProtocolError):
    """The sealed object does not open to the payload its header promises."""

    reason = "seal_broken"


class BadReveal(ProtocolError):
    """The revealed key is not the one the sealed header committed to."""

    reason = "bad_reveal"


class SealHeader(_Strict):
    """What a sealed object promises, signed by its author before anyone can read it."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["sealed_contribution"] = "sealed_contribution"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0)
    uid: int = Field(ge=0)
    hotkey: Hotkey
    aead: Literal["chacha20-poly1305"] = "chacha20-poly1305"
    nonce: Hex12
    key_sha256: Sha256Hex = Field(description="sha256 of the 32-byte key revealed later")
    payload_sha256: Sha256Hex = Field(description="sha256 of the payload once opened")
    payload_size: int = Field(ge=0)
    ciphertext_sha256: Sha256Hex
    ciphertext_size: int = Field(ge=TAG_BYTES)


class Reveal(_Strict):
    """The key of one sealed contribution, published after the window's observation closed."""

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["reveal"] = "reveal"
    netuid: int = Field(ge=0)
    window: int = Field(ge=0)
    hotkey: Hotkey
    key: Hex32


@dataclass(frozen=True)
class SealedObject:
    """A parsed, signature-checked sealed object (still encrypted)."""

    header: SealHeader
    ciphertext: bytes
    sha256: str  # of the whole object as stored: what an observer pins


def associated_data(netuid: int, window: int, hotkey: str) -> bytes:
    return SEAL_DOMAIN + f"{netuid}/{window}/{hotkey}".encode("ascii")


def seal_payload(
    payload: bytes,
    *,
    netuid: int,
    window: int,
    uid: int,
    signer: Signer,
    key: bytes | None = None,
    nonce: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Encrypt and sign ``payload``; returns (sealed object bytes, key). ``key`` and
    ``nonce`` default to fresh random values (tests pass fixed ones for vectors)."""
    key = os.urandom(KEY_BYTES) if key is None else key
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("key must be 32 bytes and nonce 12 bytes")
    hotkey = signer.ss58_address
    ciphertext = ChaCha20Poly1305(key).encrypt(
        nonce, payload, associated_data(netuid, window, hotkey)
    )
    header = SealHeader(
        netuid=netuid,
        window=window,
        uid=uid,
        hotkey=hotkey,
        nonce=nonce.hex(),
        key_sha256=hashlib.sha256(key).hexdigest(),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_size=len(payload),
        ciphertext_sha256=hashlib.sha256(ciphertext).hexdigest(),
        ciphertext_size=len(ciphertext),
    )
    signed = seal(header, signer)
    return _PREFIX.pack(MAGIC, len(signed)) + signed + ciphertext, key


def open_sealed(
    raw: bytes,
    *,
    expected_hotkey: str,
    expected_window: int,
    expected_netuid: int,
    max_bytes: int,
) -> SealedObject:
    """Parse and verify a sealed object's header and ciphertext hash (no key needed)."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"sealed object is {len(raw)} bytes, max {max_bytes}")
    if len(raw) < _PREFIX.size:
        raise MalformedPayload("sealed object shorter than its prefix")
    magic, header_len = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise MalformedPayload("not a sealed contribution (bad magic)")
    if not 0 < header_len <= MAX_HEADER_BYTES or _PREFIX.size + header_len > len(raw):
        raise MalformedPayload(f"sealed header length {header_len} out of range")
    body_end = _PREFIX.size + header_len
    header = open_envelope(
        raw[_PREFIX.size : body_end],
        SealHeader,
        expected_signer=expected_hotkey,
        expected_window=expected_window,
        max_bytes=MAX_HEADER_BYTES,
    )
    if header.netuid != expected_netuid:
        raise MalformedPayload(f"sealed for netuid {header.netuid}")
    ciphertext = raw[body_end:]
    if len(ciphertext) != header.ciphertext_size:
        raise MalformedPayload(
            f"ciphertext is {len(ciphertext)} bytes, header says {header.ciphertext_size}"
        )
    if header.payload_size != header.ciphertext_size - TAG_BYTES:
        raise MalformedPayload("payload size does not match the ciphertext size")
    if hashlib.sha256(ciphertext).hexdigest() != header.ciphertext_sha256:
        raise HashMismatch("ciphertext does not match the signed ciphertext_sha256")
    return SealedObject(header, ciphertext, hashlib.sha256(raw).hexdigest())


def unseal(sealed: SealedObject, key: bytes) -> bytes:
    """The payload inside ``sealed``, opened with the revealed ``key``."""
    header = sealed.header
    if hashlib.sha256(key).hexdigest() != header.key_sha256:
        raise BadReveal("revealed key does not match the sealed header's key_sha256")
    try:
        payload = ChaCha20Poly1305(key).decrypt(
            bytes.fromhex(header.nonce),
            sealed.ciphertext,
            associated_data(header.netuid, header.window, header.hotkey),
        )
    except InvalidTag:
        raise SealBroken("ciphertext fails authentication under the committed key") from None
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise SealBroken("opened payload does not match the signed payload_sha256")
    return payload


def make_reveal(*, netuid: int, window: int, key: bytes, signer: Signer) -> bytes:
    """The signed reveal of ``key`` for ``window``: envelope JSON bytes."""
    reveal = Reveal(netuid=netuid, window=window, hotkey=signer.ss58_address, key=key.hex())
    return seal(reveal, signer)


def open_reveal(raw: bytes, *, expected_hotkey: str, expected_window: int, netuid: int) -> bytes:
    """The key a signed reveal publishes; a :class:`ProtocolError` on any fault."""
    reveal = open_envelope(
        raw,
        Reveal,
        expected_signer=expected_hotkey,
        expected_window=expected_window,
        max_bytes=MAX_REVEAL_BYTES,
    )
    if reveal.netuid != netuid:
        raise BadReveal(f"reveal for netuid {reveal.netuid}")
    return bytes.fromhex(reveal.key)
