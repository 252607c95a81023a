"""The observer's spool: downloads checked and kept on disk until their window is judged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from node_helpers import LIMITS, NETUID, ScriptedChain, make_miner, upload_sealed

from gauntlet.node.observer import KEEP_WINDOWS, Observer
from gauntlet.node.spool import Spool, SpoolDamaged
from protocol.errors import ProtocolError
from protocol.keys import contribution_key
from protocol.sealed import open_sealed
from protocol.windows import Timeline

TIMELINE = Timeline(blocks_per_window=10, grace_blocks=1, reveal_blocks=2, record_blocks=5)


def test_a_spooled_upload_loads_back_as_checked_and_damage_is_caught(tmp_path: Path) -> None:
    miner = make_miner(tmp_path, 1)
    spool = Spool(tmp_path / "spool")

    async def scenario():
        raw = await upload_sealed(miner, 3, b"payload bytes" * 100)
        path = spool.path_for(3, 1, "etag-1")
        _, spooled = await spool.fetch(
            miner.store, contribution_key(3, miner.hotkey), path, max_bytes=LIMITS.max_bytes,
            if_match=None, hotkey=miner.hotkey, window=3, netuid=NETUID,
        )  # fmt: skip
        return raw, spooled

    raw, spooled = asyncio.run(scenario())
    expected = open_sealed(
        raw, expected_hotkey=miner.hotkey, expected_window=3, expected_netuid=NETUID,
        max_bytes=LIMITS.max_bytes,
    )  # fmt: skip
    assert spooled.load() == expected
    damaged = bytearray(spooled.path.read_bytes())
    damaged[-1] ^= 1
    spooled.path.write_bytes(bytes(damaged))
    with pytest.raises(SpoolDamaged):
        spooled.load()


def test_an_upload_that_fails_its_checks_leaves_no_file(tmp_path: Path) -> None:
    miner = make_miner(tmp_path, 1)
    spool = Spool(tmp_path / "spool")
    path = spool.path_for(3, 1, "etag")

    async def scenario() -> None:
        await upload_sealed(miner, 3, b"x" * 100)
        await spool.fetch(
            miner.store, contribution_key(3, miner.hotkey), path, max_bytes=LIMITS.max_bytes,
            if_match=None, hotkey=miner.hotkey, window=4, netuid=NETUID,  # sealed for 3
        )  # fmt: skip

    with pytest.raises(ProtocolError):
        asyncio.run(scenario())
    assert not path.exists()


def test_start_empties_the_spool_and_prune_drops_only_earlier_windows(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    for window in (5, 6, 7):
        (root / str(window)).mkdir(parents=True)
        (root / str(window) / "1-x.sealed").write_bytes(b"old")
    spool = Spool(root)  # a restart: what was there belongs to a previous run
    assert list(root.iterdir()) == []
    for window in (5, 6, 7):
        (root / str(window)).mkdir()
    spool.prune(6)
    assert sorted(p.name for p in root.iterdir()) == ["6", "7"]


def test_the_observer_keeps_a_window_s_uploads_until_the_validator_judges_it(
    tmp_path: Path,
) -> None:
    """A validator catching up after a restart judges windows far behind the head: their
    spooled uploads must still be there however far the observer has moved on."""
    miner = make_miner(tmp_path, 1)
    chain = ScriptedChain(block=35)
    rt = SimpleNamespace(
        chain=chain,
        peers=SimpleNamespace(miners=lambda _chain: _async((None, [miner.peer]))),
        config=SimpleNamespace(chain=SimpleNamespace(netuid=NETUID)),
        limits=LIMITS,
    )
    observer = Observer(rt, TIMELINE, poll_seconds=0.0, spool=Spool(tmp_path / "spool"))  # type: ignore[arg-type]

    async def scenario() -> None:
        await upload_sealed(miner, 3, b"y" * 100)
        await observer.poll_round()
        chain.block = (3 + KEEP_WINDOWS + 3) * 10  # the observer moves far ahead
        await observer.poll_round()

    asyncio.run(scenario())
    assert 3 not in observer.windows  # its in-memory observation is gone...
    assert list((tmp_path / "spool" / "3").iterdir())  # ...but not the upload on disk


async def _async(value):
    return value
