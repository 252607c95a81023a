"""What is new in an update: no more of the last aggregate than the window's updates carry.

The last aggregate (the outer step every node has just applied) is free to any miner.
Added to a small trained update it makes a longer step along a direction that was just
good (momentum), which lowers the loss on any page early in training and keeps a short,
overfitted update from hurting the others late; a miner can make it most of its upload
and stay under the R² a replay needs (``scoring.explained_threshold``). Measured as sent,
such an upload (the ``boost`` behaviour: one page trained, 0.85 of the upload the
aggregate) rated like an honest miner with twice its compute in the adaptive scenario
(docs/scoring.md, "What is new").

Honest updates point partly along the last aggregate too (it is the mean of such
updates), and the more data an update saw, the more: removing that part from every
update took the most from the miners who processed the most. So the validator lowers an
update's alignment (its cosine with the last aggregate) only down to the median of the
window's evaluated updates, keeping its length and its part across the aggregate: an
honest update at or under the median is measured as sent, and a booster as an update of
ordinary alignment made of what it computed.

A median of hotkeys is one operator's to move: eight boosters of a page each, half the
window's measured updates, made it their own alignment (0.69-0.70) and were lowered by
nothing. So the limit is the lower of that median and the median weighted by what the
measuring validator currently pays each miner, its weight (:func:`window_limit`): raising
the latter takes half of what the window's measured miners are paid, which new hotkeys do
not have. Weighting by the plain score instead left the lever with the hotkeys: a score
split across nine hotkeys keeps its sum while the pay it earns shrinks (weights are scores
squared), and a limit-knowing operator's nine one-page boosters held 0.54-0.57 of the
summed scores while paid 0.43-0.48 (docs/scoring.md, "Weighted by pay").
``validator.novel_quantile`` moves both medians to another quantile: a lower one takes more
hotkeys and more pay to lift, and lowers more honest updates.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gauntlet.compress.aggregate import Delta


def inner(a: Delta, b: Delta) -> float:
    """⟨a, b⟩ over all tensors: elementwise products summed by torch's reduction in float64,
    not a BLAS dot, whose float32 result can depend on where a tensor sits in memory: two
    validators with the same secret must measure bit-identical updates (their states are
    compared by hash: tests/integration/test_validator_crash.py). The per-tensor sums are
    added in order on the tensors' device and read once (a GPU waits once, not per
    tensor): the same float64 additions as adding them one by one on the host."""
    total: torch.Tensor | None = None
    for name, t in a.items():
        part = (t * b[name].to(t.device, t.dtype)).sum(dtype=torch.float64)
        total = part if total is None else total + part
    return 0.0 if total is None else float(total)


def alignment(delta: Delta, direction: Delta | None, direction_sq: float | None = None) -> float:
    """The cosine of ``delta`` with ``direction`` over all tensors together (0 when either
    is None or zero). ``direction_sq``: ⟨direction, direction⟩ when already known (a
    window's updates are all measured against one direction)."""
    if direction is None:
        return 0.0
    if direction_sq is None:
        direction_sq = inner(direction, direction)
    norms = (inner(delta, delta) * direction_sq) ** 0.5
    return inner(delta, direction) / norms if norms > 0 else 0.0


def limit_alignment(delta: Delta, direction: Delta | None, limit: float) -> Delta:
    """``delta`` (modified in place and returned) with its cosine with ``direction`` lowered
    to ``limit`` (in [0, 1]) where it was higher: its part across ``direction`` keeps its
    direction, and the result keeps ``delta``'s L2 norm. Unchanged when the cosine is at
    most ``limit`` or ``direction`` is None or zero. An update that lies along
    ``direction`` (nothing across it within 10⁻⁶ of its norm) has nothing of its own and
    becomes zeros."""
    if not 0 <= limit <= 1:
        raise ValueError(f"limit must be in [0, 1], got {limit}")
    if direction is None:
        return delta
    direction_sq, norm_sq = inner(direction, direction), inner(delta, delta)
    if direction_sq <= 0 or norm_sq <= 0:
        return delta
    along = inner(delta, direction) / direction_sq  # delta = along · direction + across
    cosine = along * direction_sq**0.5 / norm_sq**0.5
    if cosine <= limit:
        return delta
    for name, t in delta.items():
        t.sub_(along * direction[name].to(t.device, t.dtype))
    across_sq = inner(delta, delta)
    if across_sq <= 1e-12 * norm_sq:
        for t in delta.values():
            t.zero_()
        return delta
    # norm · (limit · unit direction + sqrt(1 − limit²) · unit across)
    keep = (norm_sq * (1 - limit**2) / across_sq) ** 0.5
    add = limit * (norm_sq / direction_sq) ** 0.5
    for name, t in delta.items():
        t.mul_(keep).add_(direction[name].to(t.device, t.dtype), alpha=add)
    return delta


def window_limit(
    cosines: Mapping[int, float], scores: Mapping[int, float], quantile: float = 0.5
) -> float:
    """The alignment limit of a window (at least 0): the ``quantile`` of its measured
    updates' ``cosines`` (uid -> cosine with the last aggregate; 0.5: their median), or,
    where lower, their ``quantile`` weighted by ``scores`` (uid -> what the validator
    currently pays that miner, >= 0; absent counts 0: the node passes its weights,
    :func:`gauntlet.node.measured_update.current_pay`).

    The plain quantile counts hotkeys, which cost an attacker little; the weighted one
    counts what the network already pays for. Taking the lower of the two means raising
    the limit needs both ``1 − quantile`` of the hotkeys and of the pay (half at the
    median), while it is never above the plain quantile. With nothing paid among the
    measured (a new network) the plain quantile alone is the limit."""
    limit = weighted_quantile(cosines, dict.fromkeys(cosines, 1.0), quantile)
    if limit is None:
        raise ValueError("a window limit needs at least one measured update")
    weighted = weighted_quantile(cosines, scores, quantile)
    if weighted is not None:
        limit = min(limit, weighted)
    return max(0.0, limit)


def weighted_quantile(
    values: Mapping[int, float], weights: Mapping[int, float], quantile: float
) -> float | None:
    """The ``quantile`` (in (0, 1)) of ``values`` with each counted ``weights[key]`` times
    (missing or non-positive weights count 0): the value where the ascending cumulative
    weight reaches ``quantile`` of the total, the mean of two neighbours where it lands
    exactly on it (so at one half with equal weights, the plain median of an even count).
    None when no value has a positive weight."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    weighted = sorted(
        (value, weight)
        for key, value in values.items()
        if (weight := weights.get(key, 0.0)) > 0  # NaN is not > 0: it counts 0
    )
    if not weighted:
        return None
    total = sum(weight for _, weight in weighted)
    target, covered = total * quantile, 0.0
    for i, (value, weight) in enumerate(weighted):
        covered += weight
        if abs(covered - target) <= 1e-12 * total and i + 1 < len(weighted):
            return (value + weighted[i + 1][0]) / 2
        if covered >= target:
            return value
    return weighted[-1][0]
