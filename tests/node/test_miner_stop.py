"""A miner asked to stop mid-training leaves within a step (issue 16: SIGINT took ~15 s)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

import gauntlet.node.miner as miner
from gauntlet.train.distributed import DistContext
from gauntlet.train.inner import TrainingStopped


def test_cancelling_the_node_stops_training_in_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    finished = threading.Event()

    def long_training(*args, should_stop=None, **kwargs):  # ~10 s of steps unless stopped
        try:
            for _ in range(1000):
                if should_stop is not None and should_stop():
                    raise TrainingStopped("stopped")
                time.sleep(0.01)
            return "trained"
        finally:
            finished.set()

    monkeypatch.setattr(miner, "train_window", long_training)
    rt = SimpleNamespace(dataset=None, device="cpu")

    async def run() -> float:
        task = asyncio.create_task(miner.train_stoppably(None, rt, None, None, DistContext()))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(finished.wait, 5.0)
        return time.monotonic() - cancelled_at

    assert asyncio.run(run()) < 1.0
    assert finished.is_set()
