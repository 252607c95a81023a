"""The miner's window loop: sync θ_w, train on the assigned pages, upload Δ sealed before the
deadline, reveal its key once the window's observation has closed.

Under ``torchrun`` one miner spans several processes: rank 0 (the leader) does all
chain and storage work and broadcasts each window's plan and θ_w; every rank
trains on its slice of the batches (DDP), and the leader uploads the result.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from gauntlet.compress.aggregate import Delta
from gauntlet.config.schema import GauntletConfig, TrainConfig
from gauntlet.data import PageDataset
from gauntlet.node.assignment import assigned_pages
from gauntlet.node.behaviour import Honest
from gauntlet.node.deadline import Stopwatch, UploadTime, seconds_to_end, training_seconds
from gauntlet.node.feedback import check_feedback
from gauntlet.node.lifecycle import retry_transient
from gauntlet.node.miner_state import MinerState, load_state, save_state, state_path
from gauntlet.node.reveals import publish_reveal
from gauntlet.node.runtime import Runtime, load_data_and_model, open_runtime, resolve_device
from gauntlet.telemetry import METRICS
from gauntlet.train.distributed import DistContext, init_from_env, shutdown
from gauntlet.train.fingerprint import fingerprint
from gauntlet.train.inner import InnerResult, InnerSettings, snapshot, train_inner
from gauntlet.train.objective import objective_at, training_plan
from gauntlet.train.outer import restore
from gauntlet.train.schedule import inner_lr
from protocol.container import encode_payload
from protocol.keys import contribution_key
from protocol.schemas import CodecParams, ContributionManifest
from protocol.sealed import seal_payload
from protocol.windows import window_end, window_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPlan:
    """What the leader tells every rank at the start of a window."""

    window: int
    pages: list[int]
    train: bool  # False: skip this window (it closed while syncing) or stop (window < 0)


def inner_settings(cfg: TrainConfig, window: int, steps: int) -> InnerSettings:
    """``steps`` optimizer steps for ``window``; the learning-rate schedule counts
    ``steps`` per window since ``start_window``."""
    first_step = (window - cfg.start_window) * steps

    def lr(step: int) -> float:
        return inner_lr(
            first_step + step,
            base_lr=cfg.inner_lr,
            warmup_steps=cfg.lr_warmup_steps,
            decay_steps=cfg.lr_decay_steps,
            min_ratio=cfg.lr_min_ratio,
        )

    return InnerSettings(
        steps=steps,
        lr=lr,
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        optimizer=cfg.inner_optimizer,
        momentum=cfg.momentum,
    )


def train_window(
    cfg: TrainConfig,
    dataset: PageDataset,
    model: nn.Module,
    plan: WindowPlan,
    *,
    device: torch.device,
    dist: DistContext,
    should_stop: Callable[[], bool] | None = None,
    until: Callable[[], bool] | None = None,
) -> tuple[InnerResult, int]:
    """Train from θ_w on the plan's pages; the result, and how many of the pages (a prefix)
    it trained in full. One pass, a page at a time in the plan's order, unless
    ``cfg.inner_steps`` fixes the step count (then the pages are shuffled together and only
    all the steps cover them). ``until`` ends training early (the window's deadline);
    ``should_stop`` voids it (the node is stopping). θ_w is restored afterwards either way
    (the outer step decides θ_{w+1})."""
    start = snapshot(model)
    objective = objective_at(cfg, plan.window)
    seq_len = objective.data_seq_len(cfg.seq_len)
    if cfg.inner_steps:
        batches = list(
            dataset.batches(
                plan.pages, seq_len=seq_len, batch_size=cfg.batch_size, seed=plan.window
            )
        )
        steps = cfg.inner_steps

        def covered(taken: int) -> int:
            return len(plan.pages) if taken >= steps else 0

    else:
        ordered = dataset.batches_in_page_order(
            plan.pages, seq_len=seq_len, batch_size=cfg.batch_size, seed=plan.window
        )
        batches, steps = ordered.batches, len(ordered.batches)

        def covered(taken: int) -> int:
            return ordered.pages_done[taken - 1] if taken else 0

    if not batches:
        raise ValueError(
            f"pages {plan.pages} hold less than one batch of {cfg.batch_size} x {seq_len} tokens"
        )
    settings = inner_settings(cfg, plan.window, steps)
    try:
        result = train_inner(
            model, batches, objective.loss, settings, device=device, dist=dist,
            should_stop=should_stop, until=until,
        )  # fmt: skip
        return result, covered(len(result.losses))
    finally:
        restore(model, start)


async def train_stoppably(
    cfg: TrainConfig,
    rt: Runtime,
    model: nn.Module,
    plan: WindowPlan,
    dist: DistContext,
    stop_at: float = math.inf,
) -> tuple[InnerResult, int]:
    """:func:`train_window` in a worker thread, so a SIGINT/SIGTERM (which cancels the node's
    task) stops it before its next step instead of after the window's training (about 15 s
    on a CPU miner), ending early at ``stop_at`` (``time.monotonic()``). Under torchrun the
    other ranks are in the same steps' collectives: training runs on this thread, and the
    deadline (this rank's clock) stops every rank at the same step."""

    def until() -> bool:
        return time.monotonic() >= stop_at

    if dist.enabled:
        return train_window(cfg, rt.dataset, model, plan, device=rt.device, dist=dist, until=until)
    stop = threading.Event()
    try:
        return await asyncio.to_thread(
            train_window, cfg, rt.dataset, model, plan, device=rt.device, dist=dist,
            should_stop=stop.is_set, until=until,
        )  # fmt: skip
    except asyncio.CancelledError:
        stop.set()
        raise


async def training_stop(rt: Runtime, window: int, upload: UploadTime) -> float:
    """The ``time.monotonic()`` at which training must end for the upload to land before
    ``window`` ends (:func:`training_seconds`)."""
    block, block_time = await rt.chain.current_block(), await rt.chain.block_time()
    end = window_end(window, rt.config.chain.blocks_per_window)
    end_timestamp = await rt.chain.block_timestamp(end)
    to_end = seconds_to_end(end - block, block_time, end_timestamp, time.time())
    margin = rt.config.train.upload_margin
    return time.monotonic() + training_seconds(to_end, upload, margin=margin, block_time=block_time)


async def upload(
    rt: Runtime,
    window: int,
    result: InnerResult,
    pages: list[int],
    sync_print: list[float],
    error_feedback: Delta,
    behaviour: Honest,
    before_store: Callable[[Delta, bytes], None] = lambda residual, key: None,
    watch: Stopwatch | None = None,
) -> tuple[int, Delta, bytes]:
    """Compress Δ plus the carried residual, sign, seal, store; returns (bytes stored, the new
    residual, the key to reveal after the observation closes); nothing stored: (0, ..., b"").
    ``before_store(residual, key)`` runs right before the upload is made visible. ``watch``
    times this node's own work, not what a behaviour waits for (its upload-time estimate:
    a copycat waiting for its target must not learn that uploading takes the window)."""
    watch = watch or Stopwatch()
    delta = await behaviour.update(rt, window, result.delta)
    # The trained Δ is not read again, so its memory may become the residual; a behaviour's
    # own Δ (it may be the node's last aggregate) is never overwritten.
    with watch:
        tensors, residual = rt.codec.encode(
            delta, error_feedback or None, reuse_delta=delta is result.delta
        )
    wire = await behaviour.wire_tensors(rt, window, tensors)
    if wire is None:
        return 0, error_feedback, b""
    with watch:
        manifest = ContributionManifest(
            netuid=rt.config.chain.netuid,
            window=window,
            uid=rt.uid,
            hotkey=rt.hotkey,
            model=rt.config.model.name,
            fingerprint=sync_print,
            page_ids=pages,
            codec=CodecParams(rt.codec.params),
            plan_sha256=training_plan(rt.config.train).sha256,
            tensors_sha256="0" * 64,  # filled in by encode_payload
        )
        payload = behaviour.finish(window, encode_payload(wire, manifest, rt.keypair))
        data, key = seal_payload(
            payload, netuid=rt.config.chain.netuid, window=window, uid=rt.uid, signer=rt.keypair
        )
    await behaviour.before_upload(rt, window)
    with watch:
        before_store(residual, key)
        with METRICS.upload("contribution", len(data)):
            await rt.store.put(contribution_key(window, rt.hotkey), data)
    return len(data), residual, key


async def reveal(rt: Runtime, window: int, key: bytes) -> None:
    """Publish the key of the window's sealed upload once its observation has closed: from
    then on no upload for the window counts, so nobody gains by reading it."""
    await rt.chain.wait_for_block((await rt.timeline()).observation_close(window))
    await publish_reveal(
        rt.store, netuid=rt.config.chain.netuid, window=window, key=key, signer=rt.keypair
    )


async def reveal_pending(rt: Runtime, state: MinerState) -> None:
    """After a restart: reveal the upload the saved state holds a key for, while it counts."""
    if not state.reveal_key or state.window < 0:
        return
    timeline = await rt.timeline()
    if await rt.chain.current_block() >= timeline.reveal_close(state.window):
        return
    log.info("revealing the key of window %d's upload, made before the restart", state.window)
    await retry_transient(reveal, rt, state.window, state.reveal_key)


async def plan_window(rt: Runtime) -> WindowPlan:
    """Leader: sync to the window in progress and decide whether to train in it."""
    bpw = rt.config.chain.blocks_per_window
    window = window_of(await rt.chain.current_block(), bpw)
    await rt.catch_up(window)  # θ_window: every aggregate before this window applied
    if window_of(await rt.chain.current_block(), bpw) != window:
        log.warning("window %d closed while syncing; skipping it", window)
        METRICS.error("window_skipped")
        return WindowPlan(window, [], train=False)
    pages = objective_at(rt.config.train, window).pages  # a superposition page costs less
    budget = min(pages(rt.config.train.pages), pages(rt.config.data.pages_per_window))
    return WindowPlan(window, assigned_pages(rt, rt.uid, rt.hotkey, window)[:budget], train=True)


async def publish(
    rt: Runtime,
    plan: WindowPlan,
    result: InnerResult,
    sync_print: list[float],
    state: MinerState,
    behaviour: Honest,
    watch: Stopwatch | None = None,
) -> tuple[MinerState, bytes]:
    """Leader: upload the window's contribution if it is still on time and sane; the new state
    and the key to reveal (b"" when nothing was uploaded); ``watch`` times the upload's own
    work (:func:`upload`).

    The error-feedback residual only advances when a contribution is actually stored.
    """
    window = plan.window
    if window_of(await rt.chain.current_block(), rt.config.chain.blocks_per_window) != window:
        log.warning("window %d: training outlasted the window, not uploading", window)
        METRICS.error("training_too_slow")
        return state, b""
    if not all(math.isfinite(x) for x in [*sync_print, result.losses[-1]]):
        log.error("window %d: the model or its loss is not finite; not uploading", window)
        METRICS.error("nonfinite_model")
        return state, b""
    steps = state.step + len(result.losses)

    def commit(residual: Delta, key: bytes) -> None:  # durable before anyone can see the upload
        after = MinerState(window=window, step=steps, error_feedback=residual, reveal_key=key)
        save_state(miner_state_file(rt), after, model_name=rt.config.model.name)

    size, residual, key = await upload(
        rt, window, result, plan.pages, sync_print, state.error_feedback, behaviour, commit, watch
    )
    if not size:
        log.info("window %d: nothing uploaded", window)
        return state, b""
    state = MinerState(window=window, step=steps, error_feedback=residual, reveal_key=key)
    log.info(
        "window %d pages %s loss %.3f -> %.3f %.0f tok/s uploaded %d bytes",
        window,
        plan.pages,
        result.losses[0],
        result.losses[-1],
        result.tokens_per_second,
        size,
    )
    await rt.prune(window)
    return state, key


async def _train_and_publish(
    rt: Runtime,
    dist: DistContext,
    model: nn.Module,
    plan: WindowPlan,
    trained: WindowPlan,
    state: MinerState,
    behaviour: Honest,
    upload: UploadTime,
) -> tuple[MinerState, bytes, UploadTime]:
    """Leader: train the window from θ_w in ``model`` until its pages are done or the upload
    time is all that is left, and upload what it trained in full; the new state, the key to
    reveal (b"": nothing uploaded) and the upload time measured on the way."""
    sync_print = fingerprint(model, plan.window)
    stop_at = await retry_transient(training_stop, rt, plan.window, upload)
    result, covered = await train_stoppably(rt.config.train, rt, model, trained, dist, stop_at)
    if covered < len(trained.pages):
        if not covered:
            log.warning(
                "window %d: no page trained in full by the window's end (%d steps); not "
                "uploading", plan.window, len(result.losses),
            )  # fmt: skip
            METRICS.error("training_too_slow")
            return state, b"", upload
        log.info(
            "window %d: %d of %d pages trained by the window's end; declaring those",
            plan.window, covered, len(trained.pages),
        )  # fmt: skip
        METRICS.error("pages_cut_to_deadline")
        plan = replace(plan, pages=plan.pages[:covered])
    METRICS.observe_training(result.losses, result.tokens, result.seconds)
    watch = Stopwatch()
    state, key = await retry_transient(
        publish, rt, plan, result, sync_print, state, behaviour, watch
    )
    return state, key, upload.observed(watch.seconds) if key else upload


def miner_state_file(rt: Runtime) -> Path:
    return state_path(Path(rt.config.node.state_dir).expanduser(), rt.hotkey)


def _share_plan(dist: DistContext, plan: WindowPlan | None) -> WindowPlan:
    data = dist.broadcast_json(None if plan is None else [plan.window, plan.pages, plan.train])
    return WindowPlan(data[0], data[1], data[2])


async def _lead(config: GauntletConfig, dist: DistContext, behaviour: Honest) -> None:
    rt = await open_runtime(config, resolve_device(config, dist.local_rank), role="miner")
    log.info(
        "miner uid %d hotkey %s on netuid %d (%d process%s)",
        rt.uid, rt.hotkey, config.chain.netuid, dist.world_size, "" if dist.world_size == 1 else "es",
    )  # fmt: skip
    state = load_state(miner_state_file(rt), model_name=config.model.name, shapes=rt.shapes)
    state = replace(
        state, error_feedback={k: v.to(rt.device) for k, v in state.error_feedback.items()}
    )
    if state.window >= 0:
        log.info("resumed miner state: window %d, step %d, %d residual tensors",
                 state.window, state.step, len(state.error_feedback))  # fmt: skip
    try:
        await rt.serve_telemetry("miner")
        await reveal_pending(rt, state)
        done, upload = 0, UploadTime()
        while not config.node.max_windows or done < config.node.max_windows:
            plan = await retry_transient(plan_window, rt)
            METRICS.window.set(plan.window)
            if plan.train and not behaviour.online(plan.window):
                log.info("window %d: %s miner stays offline", plan.window, behaviour.name)
                plan = replace(plan, train=False)
            model = behaviour.training_model(rt, plan.window)
            plan = replace(plan, pages=behaviour.declared_pages(rt, plan.window, plan.pages))
            trained = replace(plan, pages=behaviour.training_pages(rt, plan.window, plan.pages))
            _share_plan(dist, trained)
            key = b""
            if plan.train:
                dist.broadcast_parameters(model)
                state, key, upload = await _train_and_publish(
                    rt, dist, model, plan, trained, state, behaviour, upload
                )
            done += 1
            if key:
                await retry_transient(reveal, rt, plan.window, key)
            if plan.window > 0:
                await retry_transient(check_feedback, rt, plan.window - 1)
            # A window left early (nothing uploaded, training stopped at the deadline) is
            # over only at its end: planning before it would train the same window again.
            await retry_transient(
                rt.chain.wait_for_block, window_end(plan.window, config.chain.blocks_per_window)
            )
        _share_plan(dist, WindowPlan(-1, [], train=False))  # tell the other ranks to stop
    finally:
        await rt.close()


def _follow(config: GauntletConfig, dist: DistContext) -> None:
    # A follower spends its life blocked in collectives, where the event loop's signal
    # handlers never run: let SIGTERM/SIGINT end it directly (it holds no state).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    device = resolve_device(config, dist.local_rank)
    dataset, model = load_data_and_model(config, device)
    while (plan := _share_plan(dist, None)).window >= 0:
        if plan.train:
            dist.broadcast_parameters(model)
            train_window(config.train, dataset, model, plan, device=device, dist=dist)


async def run_miner(config: GauntletConfig, behaviour: Honest | None = None) -> None:
    """Mine until ``node.max_windows`` (0: forever); ``behaviour`` is for simulations only."""
    dist = init_from_env(config.train.device)
    try:
        if dist.is_leader:
            await _lead(config, dist, behaviour or Honest())
        else:
            _follow(config, dist)
    finally:
        shutdown()
