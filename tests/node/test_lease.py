"""One uploader per hotkey across machines: the uploader lease in the node's own bucket
refuses a second node, is taken over when stale or on purpose, recognises the same node
restarting, and stops a node whose hotkey was taken over while it ran."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from node_helpers import FlakyStore, ScriptedChain, node_runtime

from gauntlet.config import GauntletConfig
from gauntlet.node import lease as lease_mod
from gauntlet.node.lease import (
    Lease,
    UploaderLease,
    commitment_taken,
    decide_start,
    instance_id,
    instance_path,
    lease_key,
    read_lease,
)
from gauntlet.node.lifecycle import EXIT_STARTUP, run_until_signalled
from gauntlet.node.peers import PeerDirectory
from gauntlet.node.runtime import LeaseLost
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.retention import delete_older_than
from protocol.commitment import FilesystemCommitment, encode_commitment
from protocol.keys import contribution_key

HOTKEY = "5Miner" + "x" * 42
STALE = 30  # blocks: 3 windows of 10


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_mod, "READ_PAUSES", (0.0, 0.0))


def _commitment(root: Path, bucket: str) -> str:
    return encode_commitment(FilesystemCommitment(bucket=bucket, root=str(root.resolve())))


def _node(state: Path, root: Path, *, pid: int, host: str = "box-a", bucket: str = "mine"):
    return UploaderLease(
        hotkey=HOTKEY,
        instance=instance_id(state, HOTKEY),
        role="miner",
        commitment=_commitment(root, bucket),
        host=host,
        pid=pid,
        clock=lambda: 1_700_000_000.0,
    )


async def _acquire(node: UploaderLease, store, chain, *, take_over: bool = False, elsewhere=()):
    return await node.acquire(
        store, chain, where="bucket mine", stale_blocks=STALE, take_over=take_over,
        elsewhere=elsewhere,
    )  # fmt: skip


# --- the pure decisions -----------------------------------------------------------------


def _lease(instance: str, block: int, time: float = 0.0) -> Lease:
    return Lease(instance=instance, role="miner", host="h", pid=1, block=block, time=time)


@pytest.mark.parametrize(
    ("found", "take_over", "action"),
    [
        (None, False, "acquire"),
        (_lease("me", 100), False, "acquire"),  # its own lease: a restart
        (_lease("other", 100), False, "refuse"),  # 5 blocks old
        (_lease("other", 100), True, "take_over"),
        (_lease("other", 75), False, "acquire"),  # exactly 30 blocks old: stale
        (_lease("other", 76), False, "refuse"),
    ],
)
def test_the_start_decision(found: Lease | None, take_over: bool, action: str) -> None:
    decision = decide_start(found, instance="me", head=105, now=0.0, block_time=12.0,
                            stale_blocks=STALE, take_over=take_over)  # fmt: skip
    assert decision.action == action


def test_a_lease_from_ahead_of_the_chain_head_is_dated_by_wall_time() -> None:
    """A reset development chain: block numbers cannot be compared, wall time can."""
    ahead = _lease("other", 5000, time=1000.0)
    fresh = decide_start(ahead, instance="me", head=10, now=1000.0 + 29 * 12, block_time=12.0,
                         stale_blocks=STALE, take_over=False)  # fmt: skip
    stale = decide_start(ahead, instance="me", head=10, now=1000.0 + 31 * 12, block_time=12.0,
                         stale_blocks=STALE, take_over=False)  # fmt: skip
    assert (fresh.action, stale.action) == ("refuse", "acquire")


def test_a_changed_commitment_means_a_take_over_only_once_it_is_not_chain_lag() -> None:
    kw = {"ours": "B", "replaced": "A"}
    assert not commitment_taken("B", seen_own=False, **kw)
    assert not commitment_taken("A", seen_own=False, **kw)  # the chain still shows the old one
    assert commitment_taken("A", seen_own=True, **kw)  # ours was there, now the old is back
    assert commitment_taken("C", seen_own=False, **kw)
    assert not commitment_taken(None, seen_own=True, **kw)


# --- the lease in a real bucket ---------------------------------------------------------


def test_a_start_acquires_the_lease_and_each_renewal_writes_the_chain_head(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    node = _node(tmp_path / "state", tmp_path, pid=4242)

    async def run() -> tuple[str | None, Lease | None, str | None, Lease | None]:
        refused = await _acquire(node, store, chain)
        first = await read_lease(store, HOTKEY)
        chain.block = 117
        lost = await node.renew(store, chain)
        return refused, first, lost, await read_lease(store, HOTKEY)

    refused, first, lost, renewed = asyncio.run(run())
    assert refused is None and lost is None
    assert first is not None and renewed is not None
    assert (first.instance, first.role, first.host, first.pid, first.block) == (
        node.instance, "miner", "box-a", 4242, 100,
    )  # fmt: skip
    assert renewed.block == 117 and renewed.instance == node.instance


def test_a_second_node_on_the_hotkey_is_refused_naming_the_first_and_when_it_renewed(
    tmp_path: Path,
) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    first = _node(tmp_path / "state-a", tmp_path, pid=4242, host="box-a")
    second = _node(tmp_path / "state-b", tmp_path, pid=777, host="box-b")

    async def run() -> tuple[str | None, Lease | None]:
        await _acquire(first, store, chain)
        chain.block = 105
        return await _acquire(second, store, chain), await read_lease(store, HOTKEY)

    refused, held = asyncio.run(run())
    assert refused is not None
    assert "miner on host box-a (pid 4242)" in refused
    assert "at block 100, 5 blocks (about 5 s) ago" in refused  # ScriptedChain: 1 s blocks
    assert "lapses in about 25 s" in refused
    assert "--node.take_over_lease true" in refused
    assert held is not None and held.instance == first.instance  # the first keeps it


def test_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    crashed = _node(tmp_path / "state-a", tmp_path, pid=4242)
    replacement = _node(tmp_path / "state-b", tmp_path, pid=777)

    async def run() -> tuple[str | None, Lease | None]:
        await _acquire(crashed, store, chain)
        chain.block = 100 + STALE
        return await _acquire(replacement, store, chain), await read_lease(store, HOTKEY)

    refused, held = asyncio.run(run())
    assert refused is None
    assert held is not None and (held.instance, held.pid) == (replacement.instance, 777)


def test_the_same_node_restarting_after_a_crash_is_recognised_as_itself(tmp_path: Path) -> None:
    """Killed without releasing its lease: the restart (same state directory) is accepted at
    once; a node with another state directory is not."""
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    state = tmp_path / "state"
    before = _node(state, tmp_path, pid=4242)

    async def run() -> tuple[str | None, str | None, Lease | None]:
        await _acquire(before, store, chain)  # ... and SIGKILL: nothing released
        chain.block = 101
        restarted = await _acquire(_node(state, tmp_path, pid=5151), store, chain)
        other = await _acquire(_node(tmp_path / "elsewhere", tmp_path, pid=6), store, chain)
        return restarted, other, await read_lease(store, HOTKEY)

    restarted, other, held = asyncio.run(run())
    assert restarted is None
    assert held is not None and (held.instance, held.pid, held.block) == (
        before.instance,
        5151,
        101,
    )
    assert other is not None and "pid 5151" in other
    assert instance_path(state, HOTKEY).read_text().strip() == before.instance


def test_take_over_on_purpose_and_the_old_node_stops_at_its_next_renewal(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    old = _node(tmp_path / "state-a", tmp_path, pid=4242, host="box-a")
    new = _node(tmp_path / "state-b", tmp_path, pid=777, host="box-b")

    async def run() -> tuple[str | None, str | None, str | None]:
        await _acquire(old, store, chain)
        chain.block = 103
        refused = await _acquire(new, store, chain, take_over=True)
        chain.block = 110
        return refused, await old.renew(store, chain), await new.renew(store, chain)

    refused, old_renewal, new_renewal = asyncio.run(run())
    assert refused is None and new_renewal is None
    assert old_renewal is not None
    assert "another node took hotkey" in old_renewal
    assert "miner on host box-b (pid 777)" in old_renewal


def test_a_node_whose_other_bucket_on_chain_holds_a_fresh_lease_is_refused(tmp_path: Path) -> None:
    """Different buckets: the second node reads the first one's lease through the
    commitment on chain, as a reader would."""
    chain = ScriptedChain(block=100)
    first_bucket = FilesystemStore(tmp_path, "first")
    first = _node(tmp_path / "state-a", tmp_path, pid=4242, bucket="first")
    second = _node(tmp_path / "state-b", tmp_path, pid=777, bucket="second")
    peers = PeerDirectory()

    async def run() -> str | None:
        await _acquire(first, first_bucket, chain)
        old = peers.store_for(HOTKEY, first.commitment)
        assert old is not None
        return await _acquire(second, FilesystemStore(tmp_path, "second"), chain,
                              elsewhere=[(old, "bucket first")])  # fmt: skip

    refused = asyncio.run(run())
    assert refused is not None and "in bucket first" in refused and "pid 4242" in refused


def test_a_commitment_replaced_on_chain_by_another_node_stops_this_one(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    node = _node(tmp_path / "state", tmp_path, pid=4242)
    theirs = _commitment(tmp_path, "theirs")

    async def run() -> tuple[str | None, str | None]:
        await _acquire(node, store, chain)
        chain.committed[HOTKEY] = node.commitment
        ours = await node.renew(store, chain)
        chain.committed[HOTKEY] = theirs
        return ours, await node.renew(store, chain)

    ours, taken = asyncio.run(run())
    assert ours is None
    assert taken is not None and "commitment now names bucket theirs" in taken


def test_a_store_that_fails_while_renewing_is_logged_and_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, chain = FlakyStore(FilesystemStore(tmp_path, "mine")), ScriptedChain(block=100)
    node = _node(tmp_path / "state", tmp_path, pid=4242)

    async def run() -> list[str | None]:
        await _acquire(node, store, chain)
        chain.block = 110
        store.down = True
        results = [await node.renew(store, chain)]  # the read fails
        store.down = False
        store.failing_puts = 1
        chain.block = 120
        results.append(await node.renew(store, chain))  # the write fails
        assert (await read_lease(store, HOTKEY)).block == 100  # type: ignore[union-attr]
        chain.block = 130
        results.append(await node.renew(store, chain))  # the store is back
        return results

    with caplog.at_level(logging.WARNING, logger="gauntlet.node.lease"):
        results = asyncio.run(run())
    assert results == [None, None, None]
    assert caplog.text.count("could not renew the uploader lease") == 2
    held = asyncio.run(read_lease(store, HOTKEY))
    assert held is not None and held.block == 130


def test_a_store_that_never_answers_at_start_does_not_refuse_the_start(tmp_path: Path) -> None:
    store, chain = FlakyStore(FilesystemStore(tmp_path, "mine")), ScriptedChain(block=100)
    store.down = True
    assert asyncio.run(_acquire(_node(tmp_path / "s", tmp_path, pid=1), store, chain)) is None


def test_a_clean_stop_releases_its_own_lease_but_never_another_nodes(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)
    old = _node(tmp_path / "state-a", tmp_path, pid=1)
    new = _node(tmp_path / "state-b", tmp_path, pid=2)

    async def run() -> tuple[Lease | None, Lease | None]:
        await _acquire(old, store, chain)
        await _acquire(new, store, chain, take_over=True)
        await old.release(store)  # the lease is the new node's now
        kept = await read_lease(store, HOTKEY)
        await new.release(store)
        return kept, await read_lease(store, HOTKEY)

    kept, released = asyncio.run(run())
    assert kept is not None and kept.instance == new.instance
    assert released is None


def test_retention_never_deletes_the_lease(tmp_path: Path) -> None:
    store, chain = FilesystemStore(tmp_path, "mine"), ScriptedChain(block=100)

    async def run() -> int:
        await _acquire(_node(tmp_path / "state", tmp_path, pid=1), store, chain)
        await store.put(contribution_key(3, HOTKEY), b"old upload")
        return await delete_older_than(store, "", 10**9)  # every windowed key in the bucket

    assert asyncio.run(run()) == 1
    assert (store.base / lease_key(HOTKEY)).exists()


# --- through the runtime ----------------------------------------------------------------


def test_a_lease_stolen_mid_run_stops_the_node_at_its_next_window(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    """Runtime.prune (once per window, both roles) renews the lease; another node's lease
    there raises LeaseLost, and nothing of the bucket is pruned by the node that lost it."""
    chain = ScriptedChain(block=100)
    rt = node_runtime(tmp_path, stdlib_dataset_dir, "//miner/0", chain, PeerDirectory(), 50)
    hotkey = rt.hotkey
    rt.lease = UploaderLease(hotkey=hotkey, instance="a" * 32, role="miner",
                             commitment="mine", host="box-a", pid=1)  # fmt: skip
    thief = UploaderLease(hotkey=hotkey, instance="b" * 32, role="miner",
                          commitment="theirs", host="box-b", pid=2)  # fmt: skip
    old_upload = contribution_key(1, hotkey)

    async def run() -> None:
        await rt.lease.acquire(rt.store, chain, where="bucket", stale_blocks=STALE,  # type: ignore[union-attr]
                               take_over=False)  # fmt: skip
        await rt.store.put(old_upload, b"x")
        await rt.prune(50)  # renewed: still ours
        await thief.acquire(rt.store, chain, where="bucket", stale_blocks=STALE, take_over=True)
        await rt.store.put(old_upload, b"x")
        with pytest.raises(LeaseLost, match="another node took hotkey .* host box-b \\(pid 2\\)"):
            await rt.prune(51)
        assert await rt.store.get(old_upload, max_bytes=8) == b"x"  # not pruned

    asyncio.run(run())


def test_the_cli_says_stopping_in_one_error_line(caplog: pytest.LogCaptureFixture) -> None:
    async def runner(config: GauntletConfig) -> None:
        raise LeaseLost("another node took hotkey X over")

    with caplog.at_level(logging.ERROR, logger="gauntlet.node.lifecycle"):
        code = run_until_signalled(runner, GauntletConfig())
    assert code == EXIT_STARTUP
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["stopping: another node took hotkey X over"]


def test_the_lease_names_this_host_by_default() -> None:
    node = UploaderLease(hotkey=HOTKEY, instance="c" * 32, role="validator", commitment="c")
    assert node.lease(7).host == socket.gethostname()
