"""Adaptive adversaries: miners that know the scoring code and try to earn more than their
compute is worth (issue 14; ``scenarios/adaptive.toml``).

Each one is the cheapest attack on one rule, run through the real miner loop like the
classic adversaries in :mod:`gauntlet.localnet.behaviours` (which registers them). Their
compute, for the "incentive per unit of compute" comparison, is the pages they actually
train on per window (0 for those that train nothing useful).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.thin import thinner
from gauntlet.localnet.clock import WindowsSeen
from gauntlet.localnet.far import far_pages
from gauntlet.localnet.reading import like, read_update
from gauntlet.node.assignment import assigned_pages
from gauntlet.node.behaviour import Honest, compute_pages
from gauntlet.node.checks import delta_norm
from gauntlet.train.novelty import inner
from gauntlet.train.objective import objective_at

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)


class Sybil(Honest):
    """One of several hotkeys of one operator that upload tiny updates from a perturbed
    model (garbage fingerprints), to drag the window's norm median down so honest updates
    look like outliers. Trains one page; its update is worth nothing."""

    name = "sybil"

    def __init__(self, scale: float = 0.01, seed: int = 0) -> None:
        self.scale = scale
        self.generator = torch.Generator().manual_seed(seed)

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return assigned[: compute_pages(rt, window, 1)]

    def training_model(self, rt: Runtime, window: int) -> nn.Module:
        model = copy.deepcopy(rt.model)
        with torch.no_grad():
            for p in model.parameters():
                noise = torch.randn(p.shape, generator=self.generator).to(p.device, p.dtype)
                p.add_(noise * 0.05)
        return model

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        return like(delta, lambda t: t * self.scale)


class Shrink(Honest):
    """An honest update scaled down (``factor`` < 1): a smaller step hurts the loss less
    when the evaluation applies the raw update, so it used to rank first."""

    name = "shrink"

    def __init__(self, factor: float = 0.5) -> None:
        self.factor = factor

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        return like(delta, lambda t: t * self.factor)


class Lazy(Honest):
    """Declares its whole page budget but trains only the first ``trained`` pages: claims
    more data than it processed."""

    name = "lazy"

    def __init__(self, trained: int = 1) -> None:
        self.trained = trained

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return assigned[: compute_pages(rt, window, self.trained)]


class PartTimer(Honest):
    """Works honestly one window in ``period`` (when it guesses it is evaluated) and
    uploads noise with an honest norm in the others, hoping to keep the score it earned."""

    name = "part-timer"

    def __init__(self, period: int = 4, seed: int = 0) -> None:
        self.period = period
        self.generator = torch.Generator().manual_seed(seed)

    def working(self, window: int) -> bool:
        return window % self.period == 0

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return assigned if self.working(window) else assigned[: compute_pages(rt, window, 1)]

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if self.working(window):
            return delta

        def noise(t: torch.Tensor) -> torch.Tensor:
            n = torch.randn(t.shape, generator=self.generator).to(t.device, t.dtype)
            return n * (t.norm() / n.norm().clamp_min(1e-12))

        return like(delta, noise)


class MixPrevious(Honest):
    """Trains nothing useful: uploads the mean of the other miners' updates of the previous
    window (revealed, so readable), rescaled to an honest norm. Sealing stops mixing the
    current window; this is the best that is left."""

    name = "mix-previous"

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if window == 0:
            return delta
        _, miners = await rt.peers.miners(rt.chain)
        read = [
            d
            for p in miners
            if p.hotkey != rt.hotkey and (d := await read_update(rt, p, window - 1)) is not None
        ]
        if not read:
            return delta
        mixed = {name: torch.stack([d[name] for d in read]).mean(0) for name in delta}
        return rescaled(mixed, delta_norm(delta))


class Boost(Honest):
    """Knows the replay check and the rating: trains its pages honestly (so its own-page
    advantage is real), then adds free work, the previous window's aggregate:
    the outer step every node has just applied, so a longer step in a direction that was
    just good (momentum), which early in training lowers the loss on any page. It hopes to
    rank high on the secret random pages for the compute of a page or two.

    The free part is sized so that it explains exactly ``share`` of the upload (its cosine²
    with the aggregate), under the R² a replay needs (``scoring.explained_threshold``, 0.9),
    and the sum is scaled back to the trained update's norm, so the norm check sees an
    honest one.

    ``carry=False`` is the research control for what the error feedback adds: each window's
    boosted update goes through the codec here with nothing carried and is returned as the
    codec sent it, so the node's own encoding keeps all of it and carries nothing; what the
    codec left out of the trained page (its slots taken by the free part) is dropped instead
    of sent in later windows."""

    name = "boost"

    def __init__(self, share: float = 0.75, carry: bool = True) -> None:
        if not 0 <= share < 1:
            raise ValueError(f"need 0 <= share < 1, got {share}")
        self.share = share
        self.carry = carry

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        out = boosted(delta, rt.last_aggregate, self.share)
        if self.carry or out is delta:
            return out
        return sent_alone(rt, out)


class SleeperBoost(Boost):
    """Knows that the alignment limit is the lower of the window's median and its median
    weighted by the validators' scores: many new boosters move the first, not the second.
    So it first earns a score by mining honestly, all its pages, for ``honest_windows``
    windows, then lowers its budget to ``trained`` pages (declares and trains only those,
    so the own-page sample that catches ``lazy`` finds nothing untrained) and boosts them
    like :class:`Boost`, hoping that its standing (and its rating's inertia) carries the
    limit and its score while it does a third of the work. Run with ``boost`` hotkeys of
    the same operator, it is the split attack with score behind it
    (``scenarios/boost-operator.toml``)."""

    name = "sleeper-boost"

    def __init__(self, honest_windows: int = 8, trained: int = 1, share: float = 0.85) -> None:
        super().__init__(share)
        if honest_windows < 0 or trained < 1:
            raise ValueError(
                f"need honest_windows >= 0 and trained >= 1, got {honest_windows}, {trained}"
            )
        self.honest_windows = honest_windows
        self.trained = trained
        self.seen = WindowsSeen()

    def boosting(self, window: int) -> bool:
        """Whether ``window`` is past the honest start (counted from the first window seen)."""
        return self.seen(window) >= self.honest_windows

    def declared_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        if not self.boosting(window):
            return assigned
        return assigned[: compute_pages(rt, window, self.trained)]

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if not self.boosting(window):
            return delta
        return await super().update(rt, window, delta)


class Coast(Honest):
    """Knows that a rating lags the work it measures (by ``scoring.rating_memory``
    evaluations; without memory, for as long as the rating took to build): mines all its
    pages honestly for ``full_windows`` windows, then declares and trains only ``coast``
    pages for ``coast_windows`` windows, and repeats. Every update is honest and every
    declaration true, so no check can fire; it hopes that the score it built on full work
    keeps paying while it does a fraction of it (``scenarios/coast.toml``), or, cycling as
    long as the memory, that bursts pay more than steady work (``scenarios/burst.toml``).
    Its compute is the mean of the two budgets over a cycle, and so is what it should
    earn."""

    name = "coast"

    def __init__(self, full_windows: int = 8, coast: int = 1, coast_windows: int = 12) -> None:
        if full_windows < 1 or coast < 1 or coast_windows < 1:
            raise ValueError(
                "need full_windows, coast and coast_windows >= 1, got "
                f"{full_windows}, {coast}, {coast_windows}"
            )
        self.full_windows = full_windows
        self.coast = coast
        self.coast_windows = coast_windows
        self.seen = WindowsSeen()

    def coasting(self, window: int) -> bool:
        """Whether ``window`` falls in a coasting stretch of the cycle (counted from the
        first window seen)."""
        return self.seen(window) % (self.full_windows + self.coast_windows) >= self.full_windows

    def declared_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        if not self.coasting(window):
            return assigned
        return assigned[: compute_pages(rt, window, self.coast)]


class WrongDataPart(Honest):
    """Knows the uniqueness floor (``scoring.uniqueness_floor``): trains on its own pages in
    ``own`` windows of every ``period`` and on far pages (like ``wrongdata``) in the others,
    to keep its uniqueness average above the floor while skipping its assigned data a third
    of the time (at the defaults). Its compute is the same every window, only its data
    differs, so it must not earn more than an honest miner of its budget."""

    name = "wrongdata-part"

    def __init__(self, period: int = 3, own: int = 2) -> None:
        if period < 1 or not 0 <= own <= period:
            raise ValueError(f"need period >= 1 and 0 <= own <= period, got {period}, {own}")
        self.period = period
        self.own = own

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        if window % self.period < self.own:
            return assigned
        return far_pages(assigned, rt.dataset.num_train_pages)


class SignFlip(Honest):
    """Honest for its first ``honest_windows`` windows (to earn a place in the peer set),
    then uploads its update with the sign flipped: pushes the model uphill."""

    name = "sign-flip"

    def __init__(self, honest_windows: int = 4) -> None:
        self.honest_windows = honest_windows
        self.seen = WindowsSeen()

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if self.seen(window) < self.honest_windows:
            return delta
        return like(delta, lambda t: -t)


class WeakControl(Honest):
    """A sybil that serves a partner's wrong-data miner: trains one page, then buries its
    update in noise (``noise`` times its norm), so it still lowers the loss on random pages
    a little, stays in sync and passes every check. Among a partner's controls it would
    make any update look specific to its pages; the control takes only updates at least
    half the median's strength and scales each to the measured one's."""

    name = "weak-control"

    def __init__(self, noise: float = 3.0, seed: int = 0) -> None:
        self.noise = noise
        self.generator = torch.Generator().manual_seed(seed)

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return assigned[: compute_pages(rt, window, 1)]

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        if self.noise == 0:
            return delta

        def bury(t: torch.Tensor) -> torch.Tensor:
            n = torch.randn(t.shape, generator=self.generator).to(t.device, t.dtype)
            return t + n * (self.noise * t.norm() / n.norm().clamp_min(1e-12))

        return like(delta, bury)


class PageFit(WeakControl):
    """Knows that ``scoring.match_work`` ranks the rating match by the work an update shows
    on its own pages as well as by the random pages: declares ``trained`` pages and trains
    each ``repeat`` times in a row, so at the window's median norm its update is more
    specific to them (its own-page advantage per page rises) and, buried in ``noise`` times
    its norm (0: none), steps less far along it on the random pages. Its compute is
    ``trained * repeat`` pages."""

    name = "page-fit"

    def __init__(self, repeat: int = 3, trained: int = 1, noise: float = 0.0, seed: int = 0):
        super().__init__(noise=noise, seed=seed)
        if repeat < 1 or trained < 1:
            raise ValueError(f"repeat and trained must be >= 1, got {repeat} and {trained}")
        self.repeat, self.trained = repeat, trained

    def declared_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return assigned[: compute_pages(rt, window, self.trained)]

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return [page for page in assigned for _ in range(self.repeat)]


class SpoilControl(Honest):
    """A sybil that serves a partner (``target``, a wrong-data miner) against the control
    of the own-page advantage, knowing its rules: controls are drawn among strong updates
    and measured on the partner's declared pages, which are public (the assignment).

    It trains its own pages honestly, so its update is strong and qualifies as a control,
    then adds a step that raises the loss on the first ``pages`` pages of the partner's
    assignment (``strength`` times its update's norm): drawn as the partner's control, it
    predicts a loss rise there, so the partner's own update looks specific to its pages.
    Its cost: one extra gradient on those pages per window. Several hotkeys split the
    attack (``scenarios/spoil-control.toml``): the more of the window's strong updates
    are spoilers, the more of the partner's batches one of them predicts."""

    name = "spoil-control"

    def __init__(self, target: str, pages: int = 3, strength: float = 0.5) -> None:
        self.target = target
        self.pages = pages
        self.strength = strength

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        _, miners = await rt.peers.miners(rt.chain)
        partner = next((p for p in miners if p.hotkey == self.target), None)
        if partner is None:
            return delta
        pages = assigned_pages(rt, partner.uid, partner.hotkey, window)[: self.pages]
        grad = await asyncio.to_thread(gradient_on, rt, pages, window)
        step = self.strength * delta_norm(delta) / max(delta_norm(grad), 1e-12)
        # Applied as θ − lr·Δ, the −step·g part moves θ up the partner's pages' loss.
        return {name: t - step * grad[name].to(t.device, t.dtype) for name, t in delta.items()}


class Thin(Honest):
    """Knows that every update is measured at the window's median norm (the aggregate's
    scale), where a small update overshoots: sends only the largest ``1 / factor`` of the
    coefficients the codec keeps a chunk, so its norm sits on fewer, larger ones, and
    carries the rest into its next uploads as the error feedback would (nothing is lost,
    nothing free is added: its compute is its pages). A boost does this by accident, its
    free part taking the slots (docs/scoring.md, *What the limit leaves of a boost*).
    ``scenarios/thin.toml``."""

    name = "thin"

    def __init__(self, factor: int = 4) -> None:
        if factor < 1:
            raise ValueError(f"need factor >= 1, got {factor}")
        self.factor = factor
        self.carry: Delta | None = None

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        fewer = thinner(rt.codec, self.factor)
        if fewer is None:  # a dense codec keeps everything: nothing to thin
            return delta
        tensors, self.carry = fewer.encode(delta, self.carry)
        device = next(iter(delta.values())).device
        return fewer.decode(tensors, rt.shapes, device)


def sent_alone(rt: Runtime, delta: Delta) -> Delta:
    """``delta`` as the codec would send it with nothing carried: what a first upload keeps
    of it (``delta`` itself for a codec that keeps everything)."""
    tensors, _ = rt.codec.encode(delta, None)
    device = next(iter(delta.values())).device
    return rt.codec.decode(tensors, rt.shapes, device)


def boosted(delta: Delta, free: Delta | None, share: float) -> Delta:
    """``delta`` plus as much of ``free`` (the last aggregate) as makes the sum's cosine²
    with it ``share``, at ``delta``'s norm: :class:`Boost`'s upload (``delta`` itself when
    there is no free direction). Also used by bench/alignment_pages.py."""
    if free is None or delta_norm(free) == 0:
        return delta
    free = {name: free[name].to(t.device, t.dtype) for name, t in delta.items()}
    # Along the free direction the trained update has a component `along`, across it
    # `across`; the upload's cosine² with the free part (the R² it explains) is `share`
    # when its component along that direction is across · sqrt(share / (1 - share)).
    free_norm = delta_norm(free)
    along = inner(delta, free) / free_norm
    across = max(0.0, delta_norm(delta) ** 2 - along**2) ** 0.5
    weight = (across * (share / (1 - share)) ** 0.5 - along) / free_norm
    summed = {name: t + weight * free[name] for name, t in delta.items()}
    return rescaled(summed, delta_norm(delta))


def rescaled(delta: Delta, norm: float) -> Delta:
    """``delta`` scaled to the L2 norm ``norm`` (unchanged if it is zero)."""
    current = delta_norm(delta)
    return delta if current == 0 else like(delta, lambda t: t * (norm / current))


def gradient_on(rt: Runtime, pages: list[int], window: int) -> Delta:
    """The gradient of the window's loss on one batch of ``pages``, at the miner's model
    (a copy: the miner's own model is not touched)."""
    objective = objective_at(rt.config.train, window)
    model = copy.deepcopy(rt.model)
    batch = next(
        iter(
            rt.dataset.batches(
                pages,
                seq_len=objective.data_seq_len(rt.config.train.seq_len),
                batch_size=rt.config.train.batch_size,
                seed=window,
            )
        )
    )
    objective.loss(model, batch.to(rt.device)).backward()
    return {
        name: p.grad.detach().float()
        if p.grad is not None
        else torch.zeros_like(p, dtype=torch.float32)
        for name, p in model.named_parameters()
    }


ADAPTIVE: tuple[type[Honest], ...] = (
    Sybil, Shrink, Lazy, PartTimer, MixPrevious, SignFlip, WeakControl, WrongDataPart, Boost,
)  # fmt: skip
# Attacks that serve a partner named in the scenario (``target``): scenarios of their own.
PARTNERED: tuple[type[Honest], ...] = (SpoilControl,)
# Attacks on one rule that need an operator's many hotkeys: scenarios of their own.
OPERATED: tuple[type[Honest], ...] = (SleeperBoost,)
# Attacks on the rating's memory, timed over a run: a scenario of their own.
TIMED: tuple[type[Honest], ...] = (Coast,)
# Attacks on how an update is measured, against honest miners of the same compute:
# scenarios of their own (thin.toml, page-fit.toml).
MEASURED: tuple[type[Honest], ...] = (Thin, PageFit)
