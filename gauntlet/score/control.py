"""The control of the own-page advantage: what other updates of the window do for a miner's
own pages, scaled to the miner's update's strength (pure functions; the validator measures
the losses in ``gauntlet.node.evaluation``).

A miner that trained on its pages helps them more than an update that did not. Another
update of the window, applied alone to the same batches, shows what an update that did not
train on those pages does for them: how easy they are and what the window's data shares
with them. Two things make a raw comparison unfair, both measured on the localnet
(issue 14): updates differ in strength (an out-of-sync or tiny update helps every page
less, so anyone compared with it looks trained: a wrong-data miner reached advantages of
+0.05 to +0.08 in the windows where a desynced miner was among its controls), and a
miner's sybils could upload weak updates on purpose. So only updates of comparable
strength serve as controls, and each one's effect is scaled by how much the miner's update
helped the random pages relative to it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

# A control must help the random pages at least this fraction of the window's median
# helpful update: weaker ones (stale, tiny, diluted) would flatter whoever they are
# compared with, and the scaling below would have to multiply their noise.
MIN_CONTROL_STRENGTH = 0.5
# Bounds of the strength scaling. Above: a miner whose update helped the random pages 4
# times as much as a control's is compared with 4 times that control's effect, no more (a
# control's gain near the floor is itself noisy). Below: an update is predicted at least
# half a control's effect on its own pages, however little it helped the random pages. Late
# in training gains are about 0.02 with a standard error near 0.005, and a wrong-data
# update whose random gain came out at -0.008 was predicted to do nothing for its pages, so
# its whole generic effect on them (+0.019) counted as learned; noise and sign-flips, which
# do hurt the random pages, only lose more against a floor.
MIN_STRENGTH_RATIO = 0.5
MAX_STRENGTH_RATIO = 4.0
# The scaling is by the square root of the gain ratio: a broad update's extra gain on the
# random pages does not carry over one to one to its own pages. With the full ratio the
# adversarial scenario's 5-page honest miner (the strongest update: random gain 0.101
# against a median of 0.065) was predicted 0.144 on its own pages and measured 0.138, an
# advantage of -0.006 in windows 4-8 (uniqueness below 0 there; it ended below the 2-page
# miner in one CI run); the square root keeps the correction symmetric (a wrong-data
# update is still compared with controls of its own strength on average).
STRENGTH_EXPONENT = 0.5


def strong_controls(random_gains: Mapping[int, float]) -> list[int]:
    """uids whose update may serve as a control: it lowered the loss on the random pages
    (``random_gains[uid] = loss before - loss after``, > 0) by at least
    ``MIN_CONTROL_STRENGTH`` of the median among those that lowered it."""
    helpful = {uid: gain for uid, gain in random_gains.items() if gain > 0}
    if not helpful:
        return []
    floor = MIN_CONTROL_STRENGTH * statistics.median(helpful.values())
    return sorted(uid for uid, gain in helpful.items() if gain >= floor)


def batch_shares(n_batches: int, controls: Sequence[int]) -> dict[int, list[int]]:
    """Which of a miner's ``n_batches`` own batches each control is measured on: batch ``j``
    goes to ``controls[j % len(controls)]`` (at most ``n_batches`` controls take part).

    The batches are shared out rather than each control measuring all of them: the control
    then costs one pass over the own pages however many controls there are, and more
    controls average out more of one update's quirks for the same cost (which other update
    serves as the control moved a miner's advantage more than the batches did: issue 18)."""
    if n_batches <= 0:
        return {}
    used = list(controls)[:n_batches]
    shares: dict[int, list[int]] = {c: [] for c in used}
    for j in range(n_batches if used else 0):
        shares[used[j % len(used)]].append(j)
    return shares


def scaled_control(
    before: Sequence[float],
    per_batch: Sequence[Sequence[tuple[float, float]]],
    own_gain: float,
) -> list[float]:
    """Per batch, the loss the controls predict for the miner's update on its own pages.

    ``before``: the own batches' losses at θ_w; ``per_batch[j]``: for each control measured
    on batch ``j`` (at least one), its loss on that batch and its gain on the random pages
    (> 0); ``own_gain``: the miner's update's gain on the random pages. Each control's
    improvement on a batch is scaled by ``(own_gain / its gain) ** STRENGTH_EXPONENT``,
    clamped to [``MIN_STRENGTH_RATIO``, ``MAX_STRENGTH_RATIO``], and a batch's controls are
    averaged."""
    if len(per_batch) != len(before) or not all(per_batch):
        raise ValueError("every batch needs a control")
    out = []
    for b, controls in zip(before, per_batch, strict=True):
        gains = [(b - a) * strength_ratio(own_gain, gain) for a, gain in controls]
        out.append(b - sum(gains) / len(gains))
    return out


def strength_ratio(own_gain: float, gain: float) -> float:
    """How many times a control's effect the measured update is predicted: the ratio of
    their random-page gains to the ``STRENGTH_EXPONENT``, clamped to
    [``MIN_STRENGTH_RATIO``, ``MAX_STRENGTH_RATIO``] (the floor when the update did not
    help the random pages)."""
    raw = (own_gain / gain) ** STRENGTH_EXPONENT if own_gain > 0 else 0.0
    return min(MAX_STRENGTH_RATIO, max(MIN_STRENGTH_RATIO, raw))
