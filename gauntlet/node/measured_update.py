"""The update a validator measures for a contribution: decoded, at the aggregate's scale,
with no more alignment with the last aggregate than the window's measured updates carry
(:mod:`gauntlet.train.novelty`; docs/scoring.md, "What is new").

Shared by the validator loop and bench/validator.py, so the benchmark times what the
node does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.thin import thinned
from gauntlet.node.gather import Contribution, Decoder, decode_update
from gauntlet.score.state import ValidatorScores
from gauntlet.train.novelty import inner, limit_alignment, window_limit


def update_cosines(
    contributions: Sequence[Contribution], decoder: Decoder, last: Delta
) -> dict[int, float]:
    """uid -> the cosine of each of ``contributions``' updates (``ok``, with a payload) with
    the last aggregate ``last``, read from the payloads: ``⟨u, last⟩`` from the kept
    coefficients against ``last``'s (:meth:`~gauntlet.compress.codec.Codec.inners`:
    ``last`` transformed once per parameter for all of them) and ``‖u‖`` from the kept
    values (:meth:`~gauntlet.compress.codec.Codec.norms`, as the checks take it), so no
    update is decoded for it. Equal to :func:`gauntlet.train.novelty.alignment` of the
    decoded update within float rounding (0 when either is zero)."""
    codec, shapes, device = decoder.codec, decoder.shapes, decoder.device
    payloads = {c.uid: c.tensors for c in contributions if c.tensors is not None}
    listed = list(payloads.values())
    dots = codec.inners(listed, shapes, last, device)
    last_norm = inner(last, last) ** 0.5
    out = {}
    for uid, dot, norm in zip(payloads, dots, codec.norms(listed, shapes, device), strict=True):
        out[uid] = dot / (norm * last_norm) if norm * last_norm > 0 else 0.0
    return out


def window_limits(
    cosines: Mapping[int, float], pay: Mapping[int, float] | None = None, quantile: float = 0.5
) -> tuple[float, dict[int, float]]:
    """The window's limit (:func:`window_limit`: the ``quantile`` of the updates' ``cosines``
    with the last aggregate, uid -> cosine (:func:`update_cosines`), or their
    ``pay``-weighted one where lower) and the cosine of each update above it (uid ->
    cosine: the ones to lower; the others are measured as sent). ``pay``: uid -> the
    validator's current pay (:func:`current_pay`; None: none yet, the plain quantile)."""
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
    thin: int = 1,
) -> Delta:
    """``contribution``'s update, freshly decoded; with ``thin`` > 1 kept to the largest
    ``1 / thin`` of the coefficients the codec keeps a chunk, at its own norm
    (``validator.measure_thin``: :mod:`gauntlet.compress.thin`); its cosine with ``last``
    lowered to ``limit`` (None: as sent, as for an update :func:`window_limits` found at or
    under it); times its aggregate ``scale``."""
    delta = decode_update(contribution, decoder)
    if thin > 1:
        fewer = thinned(decoder.codec, delta, decoder.shapes, thin)
        if fewer is not None and (kept := inner(fewer, fewer) ** 0.5) > 0:
            size = inner(delta, delta) ** 0.5  # kept: the aggregate's scale is for it
            delta = {name: t.mul_(size / kept) for name, t in fewer.items()}
    if limit is not None:
        delta = limit_alignment(delta, last, limit)
    for t in delta.values():
        t.mul_(scale)
    return delta
