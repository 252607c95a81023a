"""Loss before and after applying one contribution alone, on its own and on secret pages.

The model holds θ_w. One snapshot of it serves every peer: apply Δ_i, measure,
restore exactly (no deep copy per peer). The loss on the window's random pages
before any update is the same for every peer, so it is measured once.

An update may be given as a function that decodes it (:data:`Update`): it is then made
dense only while it is applied and dropped after, so evaluation holds one model-sized
update at a time whatever the number of peers (a decode costs far less than the passes
it serves: docs/validator.md).

The functions read only a node's config, dataset, model and device
(:class:`EvalNode`): a :class:`~gauntlet.node.runtime.Runtime` has them, and so
can a benchmark (bench/validator.py) that has no chain or store.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch
from torch import nn

from gauntlet.compress.aggregate import Delta, Normalise, peer_scales
from gauntlet.config.schema import GauntletConfig
from gauntlet.data import PageDataset
from gauntlet.score.control import batch_shares, scaled_control, strong_controls
from gauntlet.score.loss import Evaluation
from gauntlet.train.evaluate import batch_losses
from gauntlet.train.inner import snapshot
from gauntlet.train.objective import PLAIN_OBJECTIVE, Objective, objective_at
from gauntlet.train.outer import applied
from protocol.assignment import random_pages

# Δ as the aggregate would apply it, or a function that decodes it when it is applied
Update = Delta | Callable[[], Delta]


def _dense(update: Update) -> Delta:
    return update() if callable(update) else update


class EvalNode(Protocol):
    """What loss evaluation reads of a node (a Runtime fits)."""

    @property
    def config(self) -> GauntletConfig: ...

    @property
    def dataset(self) -> PageDataset: ...

    @property
    def model(self) -> nn.Module: ...

    @property
    def device(self) -> torch.device: ...


def window_seed(secret: bytes, window: int) -> bytes:
    """This validator's unpredictable per-window seed (peer selection, random pages)."""
    return hashlib.sha256(
        b"gauntlet/validator-window/v1" + secret + window.to_bytes(8, "big")
    ).digest()


def _peer_draw(secret: bytes, window: int, uid: int, tag: bytes) -> bytes:
    return hashlib.sha256(
        b"gauntlet/validator-peer/v1" + tag + secret + window.to_bytes(8, "big")
        + uid.to_bytes(8, "big")
    ).digest()  # fmt: skip


def own_sample(secret: bytes, window: int, uid: int, declared: list[int], count: int) -> list[int]:
    """A secret sample of ``count`` of the pages a miner declared (all if it declared fewer),
    in declaration order: a miner that declares pages it did not train on cannot know which
    ones will be measured."""
    if count >= len(declared):
        return list(declared)
    keyed = sorted(
        range(len(declared)),
        key=lambda i: _peer_draw(
            secret, window, uid, b"page" + bytes([i % 256]) + i.to_bytes(4, "big")
        ),
    )
    return [declared[i] for i in sorted(keyed[:count])]


def own_batch_seed(secret: bytes, window: int, uid: int) -> int:
    """Seed of the batches cut from a peer's own pages: secret, so a miner cannot fit the
    exact sequences it will be measured on (with seed = window it could: they are its
    first training batches)."""
    return int.from_bytes(_peer_draw(secret, window, uid, b"batches")[:4], "big")


def losses_on(
    rt: EvalNode,
    pages: list[int],
    seed: int,
    objective: Objective = PLAIN_OBJECTIVE,
    only: Sequence[int] | None = None,
    count: int | None = None,
) -> list[float]:
    """Per-batch losses (nats/token) of the model on ``pages`` under ``objective`` (the
    window's: a superposition phase measures what it trains), batches cut with ``seed``;
    ``only``: just these indices of those batches (in order), the others are not run;
    ``count``: the first this many batches instead of ``validator.eval_batches``."""
    cfg = rt.config
    batches = rt.dataset.batches(
        pages,
        seq_len=objective.data_seq_len(cfg.train.seq_len),
        batch_size=cfg.validator.eval_batch_size,
        seed=seed,
    )
    count = count or cfg.validator.eval_batches
    if only is not None:
        wanted = set(only)
        batches = (b for j, b in enumerate(itertools.islice(batches, count)) if j in wanted)
        count = len(wanted)
    return batch_losses(rt.model, batches, objective.loss, max_batches=count, device=rt.device)


def loss_on(
    rt: EvalNode, pages: list[int], seed: int, objective: Objective = PLAIN_OBJECTIVE
) -> float:
    losses = losses_on(rt, pages, seed, objective)
    return sum(losses) / len(losses)


def paired_standard_error(before: list[float], after: list[float]) -> float:
    """Standard error of the mean improvement ``before - after`` over paired batches (the
    same batches measured before and after): how far the measured improvement could be
    from the true one on these pages. 0 with fewer than two batches."""
    diffs = [b - a for b, a in zip(before, after, strict=True)]
    if len(diffs) < 2:
        return 0.0
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return (variance / len(diffs)) ** 0.5


def secret_pages(rt: EvalNode, secret: bytes, window: int) -> list[int]:
    return random_pages(
        secret=secret,
        window=window,
        dataset_id=rt.dataset.dataset_id,
        num_pages=rt.dataset.num_train_pages,
        count=rt.config.validator.random_pages,
    )


def evaluate_peers(
    rt: EvalNode,
    window: int,
    secret: bytes,
    updates: dict[int, tuple[list[int], Update]],
    *,
    batches: int | None = None,
    controls: bool = True,
    random_step: float = 1.0,
) -> dict[int, Evaluation]:
    """``updates``: uid -> (the own pages to measure, Δ as the aggregate would apply it:
    normalised like every peer, or a function that decodes it). Returns each peer's
    losses: on its own pages before and after, on the window's random pages before and
    after, and the control its own-page
    advantage is measured against: other updates of the window (:func:`control_peers`),
    each measured on its share of the peer's own batches and scaled to this update's
    strength (:mod:`gauntlet.score.control`). ``batches`` overrides
    ``validator.eval_batches`` per measurement; ``controls=False`` leaves the control out
    (the lead's member check, which needs none and is what miners wait for);
    ``random_step`` other than 1 measures the random pages with the update at that multiple
    of the step its own pages see (``validator.random_step`` over ``validator.own_step``: one
    more apply, no more passes).

    Cost, in passes over one measurement's batches: the random pages before once, then per
    peer its own pages before, its own pages and the random pages after, and one pass of
    control batches (shared out among its controls): four. Each update is applied (and, when
    given as a function, decoded) once for its own measurements and once more if it serves
    as a control."""
    if not updates:
        return {}
    base = snapshot(rt.model)
    lr = rt.config.train.outer_lr
    objective = objective_at(rt.config.train, window)  # every score of a window: its phase's loss
    random = secret_pages(rt, secret, window)
    random_before = losses_on(rt, random, window, objective, count=batches)
    seeds = {uid: own_batch_seed(secret, window, uid) for uid in updates}
    before = {
        uid: losses_on(rt, pages, seeds[uid], objective, count=batches)
        for uid, (pages, _) in sorted(updates.items())
    }
    own_after: dict[int, list[float]] = {}
    random_after: dict[int, list[float]] = {}
    for uid, (pages, update) in sorted(updates.items()):
        delta = _dense(update)
        with applied(rt.model, delta, lr, base):
            own_after[uid] = losses_on(rt, pages, seeds[uid], objective, count=batches)
            if random_step == 1.0:
                random_after[uid] = losses_on(rt, random, window, objective, count=batches)
        if random_step != 1.0:
            with applied(rt.model, delta, lr * random_step, base):
                random_after[uid] = losses_on(rt, random, window, objective, count=batches)
        del delta  # one update held at a time
    gains = {uid: _mean(random_before) - _mean(random_after[uid]) for uid in updates}
    strong = strong_controls(gains)
    count = rt.config.validator.control_updates if controls else 0
    shares = {
        uid: batch_shares(len(before[uid]), control_peers(secret, window, uid, strong, count))
        for uid in updates
    }
    per_batch = _control_losses(rt, updates, shares, seeds, gains, objective, base)
    out = {}
    for uid in sorted(updates):
        after = own_after[uid]
        control = scaled_control(before[uid], per_batch[uid], gains[uid]) if shares[uid] else None
        out[uid] = Evaluation(
            _mean(before[uid]),
            _mean(after),
            _mean(random_before),
            _mean(random_after[uid]),
            own_se=paired_standard_error(before[uid], after),
            random_se=paired_standard_error(random_before, random_after[uid]),
            control_after=None if control is None else _mean(control),
            control_se=0.0 if control is None else paired_standard_error(control, after),
        )
    return out


def _control_losses(
    rt: EvalNode,
    updates: dict[int, tuple[list[int], Update]],
    shares: dict[int, dict[int, list[int]]],
    seeds: dict[int, int],
    gains: dict[int, float],
    objective: Objective,
    base: dict[str, torch.Tensor],
) -> dict[int, list[list[tuple[float, float]]]]:
    """uid -> per own batch, (loss, random gain) of each control measured on it. Each
    control update is applied once, for every peer whose batches it owes."""
    per_batch: dict[int, list[list[tuple[float, float]]]] = {
        uid: [[] for _ in range(sum(len(idx) for idx in share.values()))]
        for uid, share in shares.items()
    }
    lr = rt.config.train.outer_lr
    for control in sorted({c for share in shares.values() for c in share}):
        with applied(rt.model, _dense(updates[control][1]), lr, base):
            for uid in sorted(shares):
                indices = shares[uid].get(control)
                if not indices:
                    continue
                pages = updates[uid][0]
                losses = losses_on(rt, pages, seeds[uid], objective, only=indices)
                for j, loss in zip(indices, losses, strict=True):
                    per_batch[uid][j].append((loss, gains[control]))
    return per_batch


def control_peers(
    secret: bytes, window: int, uid: int, helpful: list[int], count: int
) -> list[int]:
    """Up to ``count`` of the window's other ``helpful`` updates (strong enough on the random
    pages: :func:`gauntlet.score.control.strong_controls`), drawn with the validator's
    secret, whose effect on ``uid``'s own pages is the control of its own-page advantage.

    Each is applied alone, at the same aggregate scale as ``uid``'s update, on the same
    batches: it shows what an update of this window that did not train on those pages
    does for them (how easy they are, what the window's data shares with them), so the
    pages' own variation cancels (random pages differ from them: issue 14). A mean of
    several updates would not do: it is a shorter step, and early in training a longer one
    gains more everywhere. Only strong updates qualify, and their effect is scaled to the
    strength of ``uid``'s (:func:`gauntlet.score.control.scaled_control`), so noise, a
    sign-flip or a stale update cannot weaken the control; the draw is secret, so no miner
    knows whose update it is compared with."""
    others = [other for other in helpful if other != uid]
    others.sort(
        key=lambda other: _peer_draw(secret, window, uid, b"control" + other.to_bytes(8, "big"))
    )
    return sorted(others[:count])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def aggregate_scales(
    norms: Mapping[int, float], normalise: Normalise, clip_norm: float | None
) -> dict[int, float]:
    """uid -> the factor the aggregate would give its update among ``norms`` (the L2 norms
    of the window's contributions that passed every check, as the checks measured them).
    Scoring applies each update at that scale, so sending a scaled-down (or scaled-up)
    update, or doing less work, gains nothing over what the aggregate makes of it."""
    uids = sorted(norms)
    scales = peer_scales([norms[uid] for uid in uids], normalise, clip_norm)
    return dict(zip(uids, scales, strict=True))
