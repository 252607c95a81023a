"""An attack on the lead's member check that knows its rule (``scenarios/gate-rider.toml``).

The lead applies each peer-set member's update alone before it enters the aggregate and
keeps it when it lowers the loss on a sample of the member's own pages and does not raise
the loss on secret random pages by more than that (:func:`gauntlet.score.loss.
passes_member_check`). So an update may harm everything but its own pages, as long as it
helps them more than it harms the rest: a member can push the network's model uphill and
still pass.

:class:`GateRider` tries that once it holds a place. It trains its pages honestly, adds
an ascent step on general data (the gradient on pages far from its assignment, less its
component along the gradient on its own pages, so that to first order its own pages do not
notice), and sizes the step with its own copy of the check: the strongest that still
passes with ``margin`` to spare on pages it drew itself (it cannot know the validator's
random pages). The upload keeps the honest update's norm, so the norm check and the
aggregate's normalisation see an honest one.

What it finds (docs/runs.md, "Gate-rider run"): an ascent on general data raises the
loss on its own pages as well, so the strongest step its check passes is 1/16 to 1/4 of
its update's norm (none at all in 1 to 5 of its 9 riding windows), and over three seeds
the model ended at most 0.037 nats above an all-honest run of the same seed (about one
window's progress late in the run).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING

import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.localnet.adaptive import gradient_on, rescaled
from gauntlet.localnet.clock import WindowsSeen
from gauntlet.localnet.far import far_pages
from gauntlet.node.behaviour import Honest
from gauntlet.node.checks import delta_norm
from gauntlet.score.loss import Evaluation, passes_member_check
from gauntlet.train.evaluate import batch_losses
from gauntlet.train.inner import snapshot
from gauntlet.train.novelty import inner
from gauntlet.train.objective import objective_at
from gauntlet.train.outer import applied
from protocol.assignment import random_pages

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

# Ascent strengths tried, strongest first, in units of the honest update's norm.
STRENGTHS = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625)
# Batches of its own copy of the check (the lead's default is validator.member_check_batches).
CHECK_BATCHES = 2


class GateRider(Honest):
    """Honest for ``honest_windows`` windows (to earn a place in the peer set), then adds
    the strongest ascent on general data its own copy of the member check passes with
    ``margin`` to spare: harm that the check lets through (module doc)."""

    name = "gate-rider"

    def __init__(self, honest_windows: int = 4, margin: float = 0.5) -> None:
        if honest_windows < 0 or not 0 <= margin < 1:
            raise ValueError(
                f"need honest_windows >= 0 and 0 <= margin < 1, got {honest_windows}, {margin}"
            )
        self.honest_windows = honest_windows
        self.margin = margin
        self.seen = WindowsSeen()
        self.pages: list[int] = []

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        self.pages = assigned
        return assigned

    def riding(self, window: int) -> bool:
        """Whether ``window`` is past the honest start (counted from the first window seen)."""
        return self.seen(window) >= self.honest_windows

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if not self.riding(window) or not self.pages or delta_norm(delta) == 0:
            return delta
        return await asyncio.to_thread(self._ride, rt, window, delta)

    def _ride(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        harm = _across(
            gradient_on(rt, far_pages(self.pages, rt.dataset.num_train_pages), window),
            gradient_on(rt, self.pages, window),
        )
        norm, harm_norm = delta_norm(delta), max(delta_norm(harm), 1e-12)
        probe = random_pages(
            secret=rt.hotkey.encode(),
            window=window,
            dataset_id=rt.dataset.dataset_id,
            num_pages=rt.dataset.num_train_pages,
            count=4,
        )
        model = copy.deepcopy(rt.model)
        before = (_losses(rt, model, self.pages, window), _losses(rt, model, probe, window))
        tried: dict[float, tuple[float, float]] = {}
        for strength in STRENGTHS:
            step = strength * norm / harm_norm
            # Applied as θ − lr·Δ, the −step·g part moves θ up the general loss.
            ridden = rescaled(
                {name: t - step * harm[name].to(t.device, t.dtype) for name, t in delta.items()},
                norm,
            )
            gain, loss = self._check(rt, model, window, ridden, probe, before)
            tried[strength] = (round(gain, 4), round(loss, 4))
            if self._passes(gain, loss):
                log.info(
                    "gate-rider: window %d, ascent %s passes its check (own gain, random loss: %s)",
                    window, strength, tried,
                )  # fmt: skip
                return ridden
        log.info(
            "gate-rider: window %d, no ascent passes its check (own gain, random loss: %s)",
            window, tried,
        )  # fmt: skip
        return delta

    def _passes(self, gain: float, loss: float) -> bool:
        """Its copy of the member check, with ``margin``: the random pages may lose at most
        ``1 - margin`` of what the own pages gain (:func:`passes_member_check` without it)."""
        seen = Evaluation(1.0, 1.0 - gain, 1.0, 1.0 + loss)
        return passes_member_check(seen) and loss <= (1 - self.margin) * gain

    def _check(
        self,
        rt: Runtime,
        model: torch.nn.Module,
        window: int,
        update: Delta,
        probe: list[int],
        before: tuple[float, float],
    ) -> tuple[float, float]:
        """``update`` applied alone to ``model`` (θ_w): the relative loss gain on its own
        pages and the relative loss rise on ``probe`` (its stand-in for the validator's
        secret random pages); ``before``: the losses on both at θ_w."""
        own_before, rand_before = before
        with applied(model, update, rt.config.train.outer_lr, snapshot(model)):
            own_after = _losses(rt, model, self.pages, window)
            rand_after = _losses(rt, model, probe, window)
        return (own_before - own_after) / own_before, (rand_after - rand_before) / rand_before


def _losses(rt: Runtime, model: torch.nn.Module, pages: list[int], window: int) -> float:
    objective = objective_at(rt.config.train, window)
    batches = rt.dataset.batches(
        pages,
        seq_len=objective.data_seq_len(rt.config.train.seq_len),
        batch_size=rt.config.validator.eval_batch_size,
        seed=window + 1,
    )
    losses = batch_losses(
        model, batches, objective.loss, max_batches=CHECK_BATCHES, device=rt.device
    )
    return sum(losses) / len(losses)


def _across(harm: Delta, own: Delta) -> Delta:
    """``harm`` without its component along ``own`` (the gradient on its own pages): to first
    order the ascent then leaves its own pages' loss alone, which is all the check's first
    condition looks at."""
    along = inner(harm, own) / max(inner(own, own), 1e-24)
    return {name: t - along * own[name] for name, t in harm.items()}
