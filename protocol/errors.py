"""Typed errors for everything a peer can send wrong.

Each error names the reason in ``reason`` (a short stable slug, usable as a metric
label) so a validator can turn it into a protocol outcome (rejected, penalised).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class: input from the network violates the protocol."""

    reason = "protocol"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.reason}: {message}")


class PayloadTooLarge(ProtocolError):
    reason = "too_large"


class MalformedPayload(ProtocolError):
    reason = "malformed"


class SchemaMismatch(ProtocolError):
    """Tensor names, dtypes, shapes or index ranges differ from what the model allows."""

    reason = "schema"


class NonFiniteValues(ProtocolError):
    reason = "non_finite"


class HashMismatch(ProtocolError):
    reason = "hash_mismatch"


class BadSignature(ProtocolError):
    reason = "bad_signature"


class WrongAuthor(ProtocolError):
    """Signed by, or declared for, a different hotkey than the one expected."""

    reason = "wrong_author"


class WrongWindow(ProtocolError):
    reason = "wrong_window"


class WrongVersion(ProtocolError):
    reason = "wrong_version"


class BadCommitment(ProtocolError):
    reason = "bad_commitment"
