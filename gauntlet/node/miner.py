"""The miner's window loop: sync θ_w, train on the assigned pages, upload Δ before the deadline."""

from __future__ import annotations

import logging
import math

from gauntlet.compress import dense
from gauntlet.config.schema import GauntletConfig
from gauntlet.model import causal_lm_loss
from gauntlet.node.lifecycle import retry_transient
from gauntlet.node.runtime import Runtime, open_runtime
from gauntlet.train.fingerprint import fingerprint
from gauntlet.train.inner import InnerResult, InnerSettings, snapshot, train_inner
from gauntlet.train.outer import restore
from gauntlet.train.schedule import inner_lr
from protocol.assignment import assign_pages
from protocol.container import encode_payload
from protocol.keys import contribution_key
from protocol.schemas import ContributionManifest
from protocol.windows import window_end, window_of

log = logging.getLogger(__name__)


def assigned_pages(rt: Runtime, window: int) -> list[int]:
    return assign_pages(
        netuid=rt.config.chain.netuid,
        uid=rt.uid,
        hotkey=rt.hotkey,
        window=window,
        dataset_id=rt.dataset.dataset_id,
        num_pages=rt.dataset.num_train_pages,
        pages_per_window=rt.config.data.pages_per_window,
    )


def train_window(rt: Runtime, window: int) -> tuple[InnerResult, list[int], list[float]]:
    """Train from θ_w on this window's pages; θ_w is restored afterwards (the outer step decides θ_{w+1})."""
    cfg = rt.config.train
    pages = assigned_pages(rt, window)
    start = snapshot(rt.model)
    sync_print = fingerprint(rt.model, window)
    batches = rt.dataset.batches(pages, seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=window)
    first_step = (window - cfg.start_window) * cfg.inner_steps

    def lr(step: int) -> float:
        return inner_lr(
            first_step + step,
            base_lr=cfg.inner_lr,
            warmup_steps=cfg.lr_warmup_steps,
            decay_steps=cfg.lr_decay_steps,
            min_ratio=cfg.lr_min_ratio,
        )

    settings = InnerSettings(
        steps=cfg.inner_steps,
        lr=lr,
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        optimizer=cfg.inner_optimizer,
        momentum=cfg.momentum,
    )
    result = train_inner(rt.model, batches, causal_lm_loss, settings, device=rt.device)
    restore(rt.model, start)
    return result, pages, sync_print


async def upload(
    rt: Runtime, window: int, result: InnerResult, pages: list[int], sync_print: list[float]
) -> int:
    manifest = ContributionManifest(
        netuid=rt.config.chain.netuid,
        window=window,
        uid=rt.uid,
        hotkey=rt.hotkey,
        model=rt.config.model.name,
        fingerprint=sync_print,
        page_ids=pages,
        tensors_sha256="0" * 64,  # filled in by encode_payload
    )
    data = encode_payload(dense.encode(result.delta), manifest, rt.keypair)
    await rt.store.put(contribution_key(window, rt.hotkey), data)
    return len(data)


async def mine_current_window(rt: Runtime) -> int:
    """Sync to the window in progress, train, upload; returns the window worked on."""
    bpw = rt.config.chain.blocks_per_window
    window = window_of(await rt.chain.current_block(), bpw)
    await rt.catch_up(window)  # θ_window: every aggregate before this window applied
    if window_of(await rt.chain.current_block(), bpw) != window:
        log.warning("window %d closed while syncing; skipping it", window)
        return window
    result, pages, sync_print = train_window(rt, window)
    if window_of(await rt.chain.current_block(), bpw) != window:
        log.warning("window %d: training outlasted the window, not uploading", window)
    elif not all(math.isfinite(x) for x in [*sync_print, result.losses[-1]]):
        log.error("window %d: the model or its loss is not finite; not uploading", window)
    else:
        size = await upload(rt, window, result, pages, sync_print)
        log.info(
            "window %d pages %s loss %.3f -> %.3f %.0f tok/s uploaded %d bytes",
            window,
            pages,
            result.losses[0],
            result.losses[-1],
            result.tokens_per_second,
            size,
        )
        await rt.prune(window)
    return window


async def run_miner(config: GauntletConfig) -> None:
    rt = await open_runtime(config)
    log.info("miner uid %d hotkey %s on netuid %d", rt.uid, rt.hotkey, config.chain.netuid)
    try:
        done = 0
        while not config.node.max_windows or done < config.node.max_windows:
            window = await retry_transient(mine_current_window, rt)
            done += 1
            await retry_transient(
                rt.chain.wait_for_block, window_end(window, config.chain.blocks_per_window)
            )
    finally:
        await rt.close()
