"""The update a validator measures for a contribution: decoded, at the aggregate's scale,
with no more alignment with the last aggregate than the window's measured updates carry
(:mod:`gauntlet.train.novelty`; docs/scoring.md, "What is new").

Shared by the validator loop and bench/validator.py, so the benchmark times what the
node does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping

from gauntlet.compress.aggregate import Delta
from gauntlet.node.gather import Contribution, Decoder, decode_update
from gauntlet.train.novelty import alignment, inner, limit_alignment


def window_limits(
    decoders: Mapping[int, Callable[[], Delta]], last: Delta
) -> tuple[float, dict[int, float]]:
    """The window's limit, the median cosine (at least 0) of the updates with the last
    aggregate ``last``, and the cosine of each update above it (uid -> cosine: the ones to
    lower; the others are measured as sent). ``decoders``: uid -> a function that decodes
    the update; each is decoded, measured and dropped in turn (one held at a time)."""
    last_sq = inner(last, last)
    cosines = {uid: alignment(decode(), last, last_sq) for uid, decode in sorted(decoders.items())}
    limit = max(0.0, statistics.median(cosines.values()))
    return limit, {uid: cosine for uid, cosine in cosines.items() if cosine > limit}


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
