"""Signatures by hotkeys: sr25519 through the bittensor SDK's keypair.

The same keys sign payload manifests, commitments and simulated-chain requests,
so a hotkey is one identity everywhere.
"""

from __future__ import annotations

from typing import Protocol

from bittensor.sp_core import Keypair

from protocol.errors import BadSignature

SIGNATURE_BYTES = 64


class Signer(Protocol):
    """What signing needs of a key: an address and a sign method (bittensor keypairs fit)."""

    @property
    def ss58_address(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


def sign(signer: Signer, message: bytes) -> bytes:
    return bytes(signer.sign(message))


def verify(hotkey: str, message: bytes, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``hotkey``'s over ``message``."""
    if len(signature) != SIGNATURE_BYTES:
        raise BadSignature(f"signature must be {SIGNATURE_BYTES} bytes, got {len(signature)}")
    try:
        public = Keypair(ss58_address=hotkey)
    except Exception as exc:  # the binding raises plain ValueError/RuntimeError on bad ss58
        raise BadSignature(f"not a valid hotkey address: {hotkey!r} ({exc})") from None
    if not public.verify(message, signature):
        raise BadSignature(f"signature does not verify for {hotkey}")


def keypair_from_uri(uri: str) -> Keypair:
    """Development keys (``//Alice``, ``//miner/3``); never for real funds."""
    return Keypair.create_from_uri(uri)
