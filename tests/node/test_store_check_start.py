"""The node's start-up check of its own bucket rides out a store that is still starting,
and gives up with one line when it never answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from node_helpers import FlakyStore

from gauntlet.node import runtime
from gauntlet.node.runtime import StartupError, _check_own_store
from gauntlet.storage.filesystem import FilesystemStore
from protocol.commitment import FilesystemCommitment

HOTKEY = "5Miner" + "x" * 42


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "outage_pause", lambda attempt: 0.0)


def _bucket(tmp_path: Path) -> tuple[FlakyStore, FilesystemCommitment]:
    store = FlakyStore(FilesystemStore(tmp_path, "mine"))
    return store, FilesystemCommitment(bucket="mine", root=str(tmp_path.resolve()))


def test_a_store_that_answers_on_the_third_try_passes(tmp_path: Path) -> None:
    store, commitment = _bucket(tmp_path)
    store.failing_puts = 2
    asyncio.run(_check_own_store(store, commitment, HOTKEY))
    assert store.failing_puts == 0


def test_a_store_that_never_answers_is_one_start_up_line(tmp_path: Path) -> None:
    store, commitment = _bucket(tmp_path)
    store.down = True
    with pytest.raises(StartupError, match="own bucket: bucket mine under .* is unreachable"):
        asyncio.run(_check_own_store(store, commitment, HOTKEY))
