"""The update a validator measures for a contribution: decoded, at the aggregate's scale,
with no more alignment with the last aggregate than the window's measured updates carry
(:mod:`gauntlet.train.novelty`; docs/scoring.md, "What is new").

Shared by the validator loop and bench/validator.py, so the benchmark times what the
node does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gauntlet.compress.aggregate import Delta
from gauntlet.node.gather import Contribution, Decoder, decode_update
from gauntlet.score.state import ValidatorScores
from gauntlet.train.novelty import alignment, inner, limit_alignment, window_limit


def window_limits(
    decoders: Mapping[int, Callable[[], Delta]],
    last: Delta,
    pay: Mapping[int, float] | None = None,
    quantile: float = 0.5,
) -> tuple[float, dict[int, float]]:
    """The window's limit (:func:`window_limit`: the ``quantile`` of the updates' cosines
    with the last aggregate ``last``, or their ``pay``-weighted one where lower) and the
    cosine of each update above it (uid -> cosine: the ones to lower; the others are
    measured as sent). ``decoders``: uid -> a function that decodes the update; each is
    decoded, measured and dropped in turn (one held at a time). ``pay``: uid -> the
    validator's current pay (:func:`current_pay`; None: none yet, the plain quantile)."""
    last_sq = inner(last, last)
    cosines = {uid: alignment(decode(), last, last_sq) for uid, decode in sorted(decoders.items())}
    limit = window_limit(cosines, pay or {}, quantile)
    return limit, {uid: cosine for uid, cosine in cosines.items() if cosine > limit}


def current_pay(
    state: ValidatorScores, contributions: Sequence[Contribution], power: float
) -> dict[int, float]:
    """uid -> what the validator currently pays each of ``contributions``' senders: its
    weight, the score to ``power`` normalised (``scoring.weight_power``; a uid whose hotkey
    changed is a new miner: it has none).

    The alignment limit's weighted quantile counts this rather than the plain score because
    a score split across hotkeys keeps its sum while its pay shrinks: nine one-page hotkeys
    held 0.49-0.57 of a validator's summed scores in windows 20-39 of the localnet runs
    where they held 0.34-0.48 of its weights (docs/scoring.md, "Weighted by pay")."""
    weights = state.weights(power)
    return {
        c.uid: weights[c.uid]
        for c in contributions
        if (peer := state.peers.get(c.uid)) is not None and peer.hotkey == c.hotkey
    }


def measured_update(
    contribution: Contribution,
    decoder: Decoder,
    scale: float,
    last: Delta | None,
    limit: float | None,
) -> Delta:
    """``contribution``'s update, freshly decoded, its cosine with ``last`` lowered to
    ``limit`` (None: as sent, as for an update :func:`window_limits` found at or under
    it), times its aggregate ``scale``."""
    delta = decode_update(contribution, decoder)
    if limit is not None:
        delta = limit_alignment(delta, last, limit)
    for t in delta.values():
        t.mul_(scale)
    return delta
