"""Errors the simulated chain adds to the project's chain errors, and the slug <-> type map.

The server sends ``{"error": slug}``; the client raises the class registered for the slug, so
callers catch the same typed errors whichever side of the socket raised them.
"""

from __future__ import annotations

from gauntlet.chain.base import (
    ChainError,
    ChainUnavailable,
    InvalidWeights,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)


class SubnetFull(ChainError):
    """Every uid is taken and every neuron is still inside its immunity period."""

    reason = "subnet_full"


class CommitmentTooLarge(ChainError):
    reason = "commitment_too_large"


class BadRequest(ChainError):
    """A malformed request (bad JSON, missing field, body too large)."""

    reason = "bad_request"


ERRORS_BY_REASON: dict[str, type[ChainError]] = {
    cls.reason: cls
    for cls in (
        ChainUnavailable,
        NotRegistered,
        NoValidatorPermit,
        RateLimited,
        InvalidWeights,
        Unauthorized,
        SubnetFull,
        CommitmentTooLarge,
        BadRequest,
    )
}

# HTTP status per reason; anything unlisted is a 400.
HTTP_STATUS: dict[str, int] = {
    Unauthorized.reason: 401,
    NotRegistered.reason: 403,
    NoValidatorPermit.reason: 403,
    RateLimited.reason: 429,
    SubnetFull.reason: 409,
    CommitmentTooLarge.reason: 413,
    ChainUnavailable.reason: 503,
}


def error_from_reason(reason: str, message: str) -> ChainError:
    cls = ERRORS_BY_REASON.get(reason, ChainError)
    return cls(message)
