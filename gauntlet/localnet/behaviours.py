"""Miner behaviours for the local simulated subnet: the honest miner and its adversaries.

Each behaviour overrides one or two hooks of :class:`gauntlet.node.behaviour.Honest`
and runs inside the real miner loop (``gauntlet sim-miner --behaviour NAME``).
To add one: subclass, give it a ``name``, decorate it with ``@behaviour``; its
constructor takes keyword arguments from the scenario file (``args = {...}``).
See docs/localnet.md.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from gauntlet.compress.aggregate import Delta
from gauntlet.localnet.adaptive import ADAPTIVE, MEASURED, OPERATED, PARTNERED, TIMED
from gauntlet.localnet.clock import WindowsSeen
from gauntlet.localnet.far import far_pages
from gauntlet.localnet.gate_rider import GateRider
from gauntlet.localnet.reading import like, read_current
from gauntlet.localnet.selective import SelectiveServe
from gauntlet.localnet.skim import Skim
from gauntlet.localnet.tarpit import Tarpit
from gauntlet.node.behaviour import Honest

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

BEHAVIOURS: dict[str, type[Honest]] = {"honest": Honest}


def behaviour(cls: type[Honest]) -> type[Honest]:
    """Register a behaviour class under its ``name``."""
    BEHAVIOURS[cls.name] = cls
    return cls


def make_behaviour(name: str, args: dict[str, Any] | None = None) -> Honest:
    """The behaviour ``name`` built with the scenario's ``args``; ValueError if unknown."""
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(sorted(BEHAVIOURS))}")
    try:
        return BEHAVIOURS[name](**(args or {}))
    except TypeError as exc:
        raise ValueError(f"behaviour {name!r}: bad arguments {args}: {exc}") from exc


async def _block_seconds(rt: Runtime, block: int) -> float:
    """Seconds until ``block`` on the chain clock (0 if it has passed)."""
    now = await rt.chain.current_block()
    return max(0.0, (block - now) * await rt.chain.block_time())


async def _give_up_block(rt: Runtime, window: int) -> int:
    """A reader of others' current uploads waits at most until the reveal phase ends."""
    return (await rt.timeline()).reveal_close(window)


@behaviour
class Copycat(Honest):
    """Signs ``target``'s (an ss58 hotkey) tensors as its own, as soon as it can read them.

    Uploads are sealed until the window's observation closes, so the copy can only be
    made from the revealed upload, after the close: the copycat is late every window."""

    name = "copycat"

    def __init__(self, target: str) -> None:
        self.target = target

    async def wire_tensors(
        self, rt: Runtime, window: int, tensors: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray] | None:
        _, miners = await rt.peers.miners(rt.chain)
        victim = next((p for p in miners if p.hotkey == self.target), None)
        if victim is None or victim.store is None:
            log.warning("copycat: target %s not readable; uploading nothing", self.target)
            return None
        give_up = await _give_up_block(rt, window)
        while await rt.chain.current_block() < give_up:
            payload = await read_current(rt, victim, window)
            if payload is not None:
                return dict(payload.tensors)
            await asyncio.sleep(0.2)
        log.warning("copycat: nothing to copy in window %d; uploading nothing", window)
        return None


@behaviour
class CrowdMix(Honest):
    """Trains its own pages honestly, then reads every other miner's current upload as soon
    as it can and uploads ``own + mix · mean(others)``.

    Before sealing this earned 17-37% of the incentive: read just before the deadline,
    the others' work made its update look better than anyone's. Sealed uploads open only
    after the observation closes, so the mix can only be uploaded after it (late); a
    crowd-mixer that does not wait is simply an honest miner."""

    name = "crowd-mix"

    def __init__(self, mix: float = 1.0, min_sources: int = 2) -> None:
        self.mix, self.min_sources = mix, min_sources

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        _, miners = await rt.peers.miners(rt.chain)
        others = [p for p in miners if p.hotkey != rt.hotkey]
        give_up = await _give_up_block(rt, window)
        read: dict[int, Delta] = {}
        while await rt.chain.current_block() < give_up:
            for peer in others:
                if peer.uid in read:
                    continue
                payload = await read_current(rt, peer, window)
                if payload is not None and payload.manifest.codec.root == rt.codec.params:
                    read[peer.uid] = rt.codec.decode(payload.tensors, rt.shapes, rt.device)
            if len(read) >= max(1, min(self.min_sources, len(others))):
                break
            await asyncio.sleep(0.2)
        if not read:
            log.warning("crowd-mix: nothing readable in window %d; uploading its own", window)
            return delta
        log.info("crowd-mix: window %d mixes %d others' updates", window, len(read))
        return {
            name: t + self.mix * torch.stack([d[name] for d in read.values()]).mean(0)
            for name, t in delta.items()
        }


@behaviour
class Replay(Honest):
    """Re-uploads the tensors it uploaded ``lag`` windows earlier (honest until it has some)."""

    name = "replay"

    def __init__(self, lag: int = 2) -> None:
        self.lag = lag
        self.sent: dict[int, dict[str, np.ndarray]] = {}

    async def wire_tensors(
        self, rt: Runtime, window: int, tensors: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        old = self.sent.get(window - self.lag)
        self.sent[window] = tensors if old is None else old
        self.sent = {w: t for w, t in self.sent.items() if w > window - self.lag - 1}
        return tensors if old is None else old


@behaviour
class Freerider(Honest):
    """Trains nothing useful: uploads the previous window's aggregate, compressed."""

    name = "freerider"

    async def wire_tensors(
        self, rt: Runtime, window: int, tensors: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        if rt.last_aggregate is None:
            return tensors
        return rt.codec.encode(rt.last_aggregate, None)[0]


@behaviour
class WrongData(Honest):
    """Trains on pages that are not its own, but claims its own in the manifest.

    The pages are far from every one of its own (:func:`far_pages`): unrelated text. (Pages
    next to each other come from the same file, and on the localnet's small datasets random
    pages often land a few pages from a miner's own: training on those partly is training on
    its own data, which lifted a wrong-data miner's own-page advantage to +0.02 to +0.11 in
    the windows where it happened.)"""

    name = "wrongdata"

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        return far_pages(assigned, rt.dataset.num_train_pages)


@behaviour
class Noise(Honest):
    """Uploads Gaussian noise with the norm of an honest update (so a norm check cannot tell)."""

    name = "noise"

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        def noise(t: torch.Tensor) -> torch.Tensor:
            n = torch.randn(t.shape, generator=self.generator).to(t.device, t.dtype)
            return n * (t.norm() / n.norm().clamp_min(1e-12))

        return like(delta, noise)


@behaviour
class Scaled(Honest):
    """A real update multiplied by ``factor``, to outweigh the others in the aggregate."""

    name = "scaled"

    def __init__(self, factor: float = 20.0) -> None:
        self.factor = factor

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        return like(delta, lambda t: t * self.factor)


@behaviour
class Late(Honest):
    """Does the work but uploads ``seconds`` after the window's observation closed."""

    name = "late"

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    async def before_upload(self, rt: Runtime, window: int) -> None:
        close = (await rt.timeline()).observation_close(window)
        await asyncio.sleep(await _block_seconds(rt, close) + self.seconds)


@behaviour
class Desync(Honest):
    """Trains from a stale model: θ as it was ``lag`` windows after it started, never updated."""

    name = "desync"

    def __init__(self, lag: int = 0) -> None:
        self.lag = lag
        self.stale: nn.Module | None = None
        self.seen = WindowsSeen()

    def training_model(self, rt: Runtime, window: int) -> nn.Module:
        if self.stale is None and self.seen(window) >= self.lag:
            self.stale = copy.deepcopy(rt.model)
        return self.stale if self.stale is not None else rt.model


@behaviour
class Offline(Honest):
    """Online for the first ``online_windows`` windows it sees, then every ``every``-th (0: never)."""

    name = "offline"

    def __init__(self, online_windows: int = 2, every: int = 0) -> None:
        self.online_windows, self.every = online_windows, every
        self.seen = WindowsSeen()

    def online(self, window: int) -> bool:
        seen = self.seen(window)
        return seen < self.online_windows or (self.every > 0 and seen % self.every == 0)


@behaviour
class Malformed(Honest):
    """Signs a valid payload, then corrupts it (``mode``: flip a byte, truncate, or garbage)."""

    name = "malformed"

    def __init__(self, mode: str = "cycle") -> None:
        self.mode = mode

    def finish(self, window: int, payload: bytes) -> bytes:
        modes = ("flip", "truncate", "garbage")
        mode = modes[window % len(modes)] if self.mode == "cycle" else self.mode
        if mode == "flip":
            middle = len(payload) // 2
            return payload[:middle] + bytes([payload[middle] ^ 0xFF]) + payload[middle + 1 :]
        if mode == "truncate":
            return payload[: len(payload) // 3]
        return np.random.default_rng(window).bytes(len(payload))


# the adaptive scenario's, then those of spoil-control, boost-operator, coast and thin, then
# the attack on the validators' schedule (scenarios/tarpit.toml) and on the followers'
# reads of recorded payloads (scenarios/selective.toml) and on the lead's member check
# (scenarios/gate-rider.toml) and on a check of the declared pages page by page
# (scenarios/skim.toml)
for _adaptive in [
    *ADAPTIVE,
    *PARTNERED,
    *OPERATED,
    *TIMED,
    *MEASURED,
    Tarpit,
    SelectiveServe,
    GateRider,
    Skim,
]:
    behaviour(_adaptive)
