"""The chain's rules for a weight vector: validity and u16 storage (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gauntlet.chain.base import InvalidWeights

U16_MAX = 65535


def quantise_u16(weights: Sequence[float]) -> list[int]:
    """Scale so the largest weight is 65535 and round, as the chain stores weights."""
    top = max(weights)
    return [round(w / top * U16_MAX) for w in weights]


def check_weights(uids: Sequence[int], weights: Sequence[float], valid: set[int]) -> None:
    """Raise :class:`InvalidWeights` unless ``uids`` (unique, all in ``valid``) pair with
    finite, non-negative ``weights`` that are not all zero."""
    if len(uids) != len(weights):
        raise InvalidWeights(f"{len(uids)} uids but {len(weights)} weights")
    if not uids:
        raise InvalidWeights("no weights given")
    if len(set(uids)) != len(uids):
        raise InvalidWeights("uids must be unique")
    unknown = sorted(set(uids) - valid)
    if unknown:
        raise InvalidWeights(f"uids not registered on this subnet: {unknown[:10]}")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise InvalidWeights("weights must be finite and non-negative")
    if max(weights) <= 0:
        raise InvalidWeights("weights are all zero")
