"""Translate bittensor SDK errors into the project's typed chain errors.

The SDK classifies every chain failure with an :class:`bittensor.ErrorCode` and, when the
chain named it, the exact error name (``SettingWeightsTooFast``, ``NeuronNoValidatorPermit``).
Names win over codes where the code is too coarse: the SDK files a missing validator permit
under ``not_authorized``, but the node must tell it apart from a wrong signing key.
"""

from __future__ import annotations

import bittensor as bt

from gauntlet.chain.base import (
    ChainError,
    ChainUnavailable,
    InvalidWeights,
    NotRegistered,
    NoValidatorPermit,
    RateLimited,
    Unauthorized,
)

# Chain errors that mean "this hotkey may not set weights (yet)": no permit, or below the
# stake floor that gates weight setting. Either way the fix is stake, not a retry.
_PERMIT_ERRORS = frozenset({"NeuronNoValidatorPermit", "NotEnoughStakeToSetWeights"})

# Chain errors about the weight vector itself (as opposed to who sent it or when).
_WEIGHT_ERRORS = frozenset(
    {
        "WeightVecNotEqualSize",
        "DuplicateUids",
        "UidVecContainInvalidOne",
        "UidsLengthExceedUidsInSubNet",
        "WeightVecLengthIsLow",
        "MaxWeightExceeded",
        "InvalidUid",
        "IncorrectWeightVersionKey",
    }
)

# Failures of the RPC transport rather than refusals by the chain.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    bt.RpcConnectionError,
    bt.ConnectionNotReady,
    ConnectionError,
    TimeoutError,
    OSError,
)


def describe(error: BaseException) -> str:
    """The chain's reason, with its error name or code so logs can be grepped for it."""
    if isinstance(error, bt.ChainError):
        label = error.name or error.code.value
        return f"{error.message} [{label}]"
    return str(error) or type(error).__name__


def from_sdk(error: BaseException, action: str) -> ChainError:
    """The project error for an SDK error raised (or returned in a result) during ``action``."""
    message = f"{action}: {describe(error)}"
    if isinstance(error, TRANSPORT_ERRORS):
        return ChainUnavailable(message)
    if not isinstance(error, bt.ChainError):
        # Client-side validation (bad uids, all-zero weights, ...) from the SDK.
        return InvalidWeights(message) if action == "set_weights" else ChainError(message)
    if error.name in _PERMIT_ERRORS:
        return NoValidatorPermit(message)
    if error.code is bt.ErrorCode.RATE_LIMITED:
        return RateLimited(message)
    if error.code is bt.ErrorCode.NOT_REGISTERED:
        return NotRegistered(message)
    if error.name in _WEIGHT_ERRORS or (
        action == "set_weights" and error.code is bt.ErrorCode.INVALID_ARGUMENT
    ):
        return InvalidWeights(message)
    if error.code is bt.ErrorCode.NOT_AUTHORIZED:
        return Unauthorized(message)
    return ChainError(message)
