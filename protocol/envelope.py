"""Signed JSON envelopes for the lead validator's artifacts (peer sets, aggregation
records, checkpoint manifests) and anything else a hotkey publishes as JSON.

The envelope carries the artifact's canonical JSON as a *string* (``body``) and an
sr25519 signature over ``ENVELOPE_DOMAIN + body``. A verifier checks the bytes it
received, so no implementation has to reproduce another's float formatting; the
domain prefix keeps an envelope signature from being replayed as any other
signed message (payload manifests, chain requests).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from protocol.errors import (
    MalformedPayload,
    PayloadTooLarge,
    WrongAuthor,
    WrongVersion,
    WrongWindow,
)
from protocol.schemas import Hotkey
from protocol.signing import SIGNATURE_BYTES, Signer, sign, verify
from protocol.strict_json import parse_hex, parse_model
from protocol.version import PROTOCOL_VERSION

ENVELOPE_DOMAIN = b"gauntlet/envelope/v1\x00"
MAX_ENVELOPE_BYTES = 8 << 20  # checkpoint manifests list every tensor; still small


A = TypeVar("A", bound=BaseModel)


class SignedEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol_version: int = PROTOCOL_VERSION
    kind: Literal["envelope"] = "envelope"
    signer: Hotkey
    body: str = Field(description="canonical JSON of the artifact, exactly as signed")
    signature: Annotated[str, Field(pattern=rf"^[0-9a-f]{{{2 * SIGNATURE_BYTES}}}$")]


def canonical_json(model: BaseModel) -> bytes:
    """Sorted keys, no whitespace, ASCII only: the form every signed JSON takes here."""
    return json.dumps(
        model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("ascii")


def seal(artifact: BaseModel, signer: Signer) -> bytes:
    """Sign ``artifact`` (which must name ``signer`` as its ``hotkey``); envelope JSON bytes."""
    if getattr(artifact, "hotkey", None) != signer.ss58_address:
        raise ValueError("artifact hotkey differs from the signing key")
    body = canonical_json(artifact)
    envelope = SignedEnvelope(
        signer=signer.ss58_address,
        body=body.decode("ascii"),
        signature=sign(signer, ENVELOPE_DOMAIN + body).hex(),
    )
    return canonical_json(envelope)


def open_envelope(
    raw: bytes,
    model: type[A],
    *,
    expected_signer: str | None = None,
    expected_window: int | None = None,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> A:
    """Verify and parse an envelope; raise a :class:`ProtocolError` subclass on any fault.

    ``expected_signer`` is the hotkey the reader trusts for this artifact (the
    lead validator); leave it None only where any valid signer is acceptable.
    """
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"envelope is {len(raw)} bytes, max {max_bytes}")
    envelope = parse_model(raw, SignedEnvelope, "envelope")
    if envelope.protocol_version != PROTOCOL_VERSION:
        raise WrongVersion(f"envelope version {envelope.protocol_version}")
    if expected_signer is not None and envelope.signer != expected_signer:
        raise WrongAuthor(f"signed by {envelope.signer}, expected {expected_signer}")
    if not envelope.body.isascii():
        raise MalformedPayload("envelope body is not ASCII canonical JSON")
    body = envelope.body.encode("ascii")
    verify(envelope.signer, ENVELOPE_DOMAIN + body, parse_hex(envelope.signature, "signature"))
    artifact = parse_model(body, model, "envelope body")
    _check_authored(artifact, envelope.signer, expected_window)
    return artifact


def _check_authored(artifact: BaseModel, signer: str, expected_window: int | None) -> None:
    version = getattr(artifact, "protocol_version", None)
    if version != PROTOCOL_VERSION:
        raise WrongVersion(f"artifact version {version}, expected {PROTOCOL_VERSION}")
    # The author inside the body must be the signer, or a valid signature by one
    # hotkey could vouch for an artifact that claims another author.
    if getattr(artifact, "hotkey", None) != signer:
        raise WrongAuthor(f"artifact names {getattr(artifact, 'hotkey', None)}, signed by {signer}")
    if expected_window is not None and getattr(artifact, "window", None) != expected_window:
        raise WrongWindow(f"artifact is for window {getattr(artifact, 'window', None)}")
