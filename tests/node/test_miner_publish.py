"""A miner's state is durable before its upload is visible: killed in between, it never
resends part of an update, and it can still reveal the upload it made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import torch
from node_helpers import ScriptedChain, node_runtime

from gauntlet.node.behaviour import Honest
from gauntlet.node.deadline import Stopwatch
from gauntlet.node.miner import WindowPlan, miner_state_file, publish
from gauntlet.node.miner_state import MinerState, load_state
from gauntlet.node.runtime import Runtime
from gauntlet.storage.base import StoreUnavailable
from gauntlet.train.inner import InnerResult
from protocol.keys import contribution_key

WINDOW = 3


class NoPeers:
    def store_for(self, hotkey: str, raw: str | None) -> None:
        return None

    async def close(self) -> None:
        return None


def _trained_window(tmp_path: Path, dataset: Path) -> tuple[Runtime, InnerResult, WindowPlan]:
    """A miner in window 3 (block 35, on time) with a trained result to publish."""
    chain = ScriptedChain(block=35)
    chain.genesis = time.time()
    rt = node_runtime(tmp_path, dataset, "//miner/1", chain, NoPeers(), WINDOW)
    delta = {name: torch.full_like(p, 1e-3) for name, p in rt.model.named_parameters()}
    return (
        rt,
        InnerResult(delta, [4.0, 3.5], tokens=2048, seconds=1.0),
        WindowPlan(WINDOW, [1, 2], True),
    )


def test_the_state_and_the_key_are_saved_before_the_upload_is_made(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    rt, result, plan = _trained_window(tmp_path, stdlib_dataset_dir)
    rt.store.failing_puts = 1  # type: ignore[attr-defined]  # dies between saving and storing

    with pytest.raises(StoreUnavailable):
        asyncio.run(publish(rt, plan, result, [0.0] * 16, MinerState.fresh(), Honest()))

    saved = load_state(miner_state_file(rt), model_name="tiny", shapes=rt.shapes)
    assert saved.window == WINDOW and saved.step == 2 and len(saved.reveal_key) == 32
    assert not (rt.store.inner.base / contribution_key(WINDOW, rt.hotkey)).exists()  # type: ignore[attr-defined]

    state, key = asyncio.run(publish(rt, plan, result, [0.0] * 16, MinerState.fresh(), Honest()))
    assert key and state.reveal_key == key and state.window == WINDOW
    assert load_state(miner_state_file(rt), model_name="tiny", shapes=rt.shapes).reveal_key == key
    assert (rt.store.inner.base / contribution_key(WINDOW, rt.hotkey)).exists()  # type: ignore[attr-defined]


class Dawdler(Honest):
    """Waits in every behaviour hook, as a copycat waits for its target's upload."""

    async def update(self, rt, window, delta):
        await asyncio.sleep(0.4)
        return delta

    async def wire_tensors(self, rt, window, tensors):
        await asyncio.sleep(0.4)
        return tensors

    async def before_upload(self, rt, window) -> None:
        await asyncio.sleep(0.4)


def test_the_upload_time_a_miner_learns_is_its_own_work_not_a_behaviours_waits(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    """The adversarial localnet of 4994643: the copycat, crowd-mix and late adversaries
    counted their waits as upload time, kept that much of every window for the upload, and
    trained 0 steps in each: the scenario no longer tried their attacks."""
    rt, result, plan = _trained_window(tmp_path, stdlib_dataset_dir)
    watch = Stopwatch()
    began = time.monotonic()
    state, key = asyncio.run(
        publish(rt, plan, result, [0.0] * 16, MinerState.fresh(), Dawdler(), watch)
    )
    elapsed = time.monotonic() - began
    assert key and elapsed >= 1.2
    assert 0 < watch.seconds <= elapsed - 1.2
