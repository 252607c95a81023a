"""The simulated chain's wire contract: request bodies, the signed envelope, canonical JSON.

A write is ``{"hotkey", "nonce", "body", "signature"}``. The signature is the hotkey's
sr25519 signature over the canonical JSON (sorted keys, no spaces) of
``{"path", "hotkey", "nonce", "body"}``: binding the path stops a signed commit from being
replayed as another action, and the strictly increasing per-hotkey nonce stops it from
being replayed at all.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from gauntlet.chain.base import Unauthorized
from protocol.errors import BadSignature
from protocol.signing import Signer, sign, verify

MAX_BODY_BYTES = 64 * 1024


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(_Wire):
    hotkey: StrictStr = Field(min_length=1, max_length=128)
    nonce: StrictInt = Field(ge=0, lt=2**63)
    body: dict[str, Any]
    signature: StrictStr = Field(pattern=r"^(0x)?[0-9a-fA-F]{128}$")


class RegisterBody(_Wire):
    netuid: StrictInt = Field(ge=0, le=65535)
    coldkey: StrictStr | None = None
    # Sim-only faucet: sets the hotkey's stake (TAO). The real chain stakes separately.
    stake: StrictFloat | StrictInt | None = None


class CommitBody(_Wire):
    netuid: StrictInt = Field(ge=0, le=65535)
    data: StrictStr


class SetWeightsBody(_Wire):
    netuid: StrictInt = Field(ge=0, le=65535)
    uids: list[StrictInt]
    weights: list[StrictFloat | StrictInt]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def signing_message(path: str, hotkey: str, nonce: int, body: dict[str, Any]) -> bytes:
    return canonical_json({"path": path, "hotkey": hotkey, "nonce": nonce, "body": body})


def seal(signer: Signer, path: str, nonce: int, body: dict[str, Any]) -> dict[str, Any]:
    """Wrap ``body`` in a signed envelope for ``path``."""
    hotkey = signer.ss58_address
    signature = sign(signer, signing_message(path, hotkey, nonce, body))
    return {"hotkey": hotkey, "nonce": nonce, "body": body, "signature": signature.hex()}


def open_envelope(path: str, envelope: Envelope) -> None:
    """Raise :class:`Unauthorized` unless the envelope is signed by its hotkey for ``path``."""
    message = signing_message(path, envelope.hotkey, envelope.nonce, envelope.body)
    signature = bytes.fromhex(envelope.signature.removeprefix("0x"))
    try:
        verify(envelope.hotkey, message, signature)
    except BadSignature as exc:
        raise Unauthorized(str(exc)) from None
