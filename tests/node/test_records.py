"""One model everywhere: nodes step by the lead's signed aggregation record, on real
filesystem buckets with real sealed payloads; the chain head is moved by hand.

Window 3 of 10 blocks: observation closes at 41, reveals until 43, the record must be in
the lead's store by the chain time of block 48."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from node_helpers import (
    Miner,
    revealed_window,
)

import gauntlet.node.gather as gather_module
from gauntlet.chain.base import Neuron
from gauntlet.node import peer_reads
from gauntlet.node.checkpoints import save_checkpoint
from gauntlet.node.gather import Contribution
from gauntlet.node.mirrors import mirror_payloads
from gauntlet.node.records import follow_record, publish_record
from gauntlet.node.replay import Lead
from gauntlet.node.runtime import Runtime
from gauntlet.storage.retry import RetryPolicy
from gauntlet.telemetry import METRICS
from gauntlet.train.fingerprint import fingerprint, fingerprint_after, max_abs_difference
from protocol.commitment import FilesystemCommitment, encode_commitment
from protocol.keys import mirror_key
from protocol.schemas import AggregatedContribution, AggregationRecord

WINDOW = 3
RECORD_DEADLINE = 48


@pytest.fixture
def network(tmp_path: Path, stdlib_dataset_dir: Path):
    """Two miners that uploaded and revealed window 3, a lead and a second validator."""
    return revealed_window(tmp_path, stdlib_dataset_dir, WINDOW)


def _record(lead: Runtime, contributions: list[Contribution]) -> AggregationRecord:
    update = lead.aggregate(contributions)
    return AggregationRecord(
        netuid=1, window=WINDOW, hotkey=lead.hotkey, peer_set_window=0,
        contributions=[AggregatedContribution(uid=c.uid, hotkey=c.hotkey, sha256=c.sha256) for c in contributions],
        fingerprint=fingerprint_after(lead.model, update, lead.config.train.outer_lr, WINDOW + 1),
    )  # fmt: skip


async def _lead_publishes(lead: Runtime, miners: list[Miner]) -> AggregationRecord:
    contributions = [
        gather_module.open_payload(m.uid, m.hotkey, WINDOW, m.payloads[WINDOW], lead.decoder)
        for m in miners
    ]
    record = _record(lead, contributions)
    assert await publish_record(lead, record)
    lead.apply_outer_step(WINDOW, contributions)
    return record


def test_a_node_whose_first_get_fails_reaches_the_leads_model(network) -> None:
    chain, miners, lead, follower = network
    miners[0].store.failing_gets = 1  # a dropped connection on the follower's first read

    async def run() -> tuple[AggregationRecord, str]:
        record = await _lead_publishes(lead, miners)
        outcome = await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)
        return record, outcome

    record, outcome = asyncio.run(run())
    assert outcome == "applied" and follower.window == lead.window == WINDOW + 1
    assert max_abs_difference(fingerprint(follower.model, WINDOW + 1), record.fingerprint) == 0.0
    assert fingerprint(follower.model, WINDOW + 1) == fingerprint(lead.model, WINDOW + 1)
    assert len(record.contributions) == 2


def test_the_lead_retries_storing_its_record(network) -> None:
    chain, miners, lead, follower = network
    lead.store.failing_puts = 2
    record = asyncio.run(_lead_publishes(lead, miners))
    assert lead.store.failing_puts == 0 and record.window == WINDOW


def test_without_a_record_in_time_no_node_changes_the_model(network) -> None:
    chain, miners, lead, follower = network
    chain.block = RECORD_DEADLINE + 1
    before = fingerprint(follower.model, WINDOW + 1)
    outcome = asyncio.run(follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW))
    assert outcome == "skipped" and follower.window == WINDOW + 1
    assert fingerprint(follower.model, WINDOW + 1) == before and follower.last_aggregate is None


def test_a_record_stored_after_the_deadline_does_not_count(network) -> None:
    chain, miners, lead, follower = network
    chain.genesis = time.time() - 1000  # block 48's chain time is long past
    chain.block = RECORD_DEADLINE + 1

    async def run() -> tuple[bool, str]:
        contributions = [
            gather_module.open_payload(m.uid, m.hotkey, WINDOW, m.payloads[WINDOW], lead.decoder)
            for m in miners
        ]
        counted = await publish_record(lead, _record(lead, contributions))
        return counted, await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)

    counted, outcome = asyncio.run(run())
    assert counted is False and outcome == "skipped"


def test_a_recorded_payload_that_cannot_be_fetched_marks_the_node_diverged(
    network, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, miners, lead, follower = network
    monkeypatch.setattr(gather_module, "RECORDED_FETCH_POLICY", RetryPolicy(3, 0.0, 0.0))

    async def run() -> str:
        await _lead_publishes(lead, miners)
        miners[1].store.down = True
        return await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)

    before = fingerprint(follower.model, WINDOW + 1)
    assert asyncio.run(run()) == "diverged"
    assert follower.diverged_since == WINDOW and follower.window == WINDOW + 1
    assert fingerprint(follower.model, WINDOW + 1) == before  # no partial aggregate applied
    assert METRICS.model_diverged._value.get() == 1  # type: ignore[attr-defined]


def test_a_recorded_payload_held_open_by_its_server_is_given_up_in_bounded_time(
    network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer-set member served the lead, then holds every other node's read open (a
    tarpit): each try ends at the download limit, so the node gives up (diverged, as for
    any unfetchable payload) instead of waiting on the server forever."""
    chain, miners, lead, follower = network
    monkeypatch.setattr(gather_module, "RECORDED_FETCH_POLICY", RetryPolicy(3, 0.0, 0.0))
    monkeypatch.setattr(peer_reads, "DOWNLOAD_ALLOWANCE_SECONDS", 0.2)
    monkeypatch.setattr(peer_reads, "DOWNLOAD_FLOOR_BYTES_PER_SECOND", 2**40)  # 0.2 s in all

    async def run() -> tuple[str, float]:
        await _lead_publishes(lead, miners)
        miners[1].store.stall = {"get"}
        began = time.monotonic()
        outcome = await asyncio.wait_for(
            follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW), timeout=20
        )
        return outcome, time.monotonic() - began

    outcome, elapsed = asyncio.run(run())
    assert outcome == "diverged" and miners[1].store.stalled == 3
    assert elapsed < 3 * (0.2 + 1.0), elapsed


def _mirror(lead: Runtime, miners: list[Miner], tamper: bool = False) -> int:
    """The lead's copies of the miners' payloads (``tamper``: bytes that are not them)."""
    members = [
        replace(
            gather_module.open_payload(m.uid, m.hotkey, WINDOW, m.payloads[WINDOW], lead.decoder),
            opened=lambda m=m: m.payloads[WINDOW],
        )
        for m in miners
    ]
    stored = asyncio.run(mirror_payloads(lead.store, WINDOW, members))
    if tamper:
        for m in miners:
            path = lead.store.inner.base / mirror_key(WINDOW, m.hotkey)  # type: ignore[attr-defined]
            path.write_bytes(m.payloads[WINDOW][:-1] + b"x")
    return stored


def test_a_member_that_serves_only_the_lead_is_read_from_the_leads_copy(network) -> None:
    """Selective serving: a peer-set member answered the lead, then holds every other
    reader. Followers read the lead's copy (checked against the record's hash and the
    author's signature) and never ask the author."""
    chain, miners, lead, follower = network
    assert _mirror(lead, miners) == 2

    async def run() -> str:
        await _lead_publishes(lead, miners)
        miners[1].store.stall = {"get"}
        return await asyncio.wait_for(
            follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW), timeout=20
        )

    assert asyncio.run(run()) == "applied" and miners[1].store.stalled == 0
    assert fingerprint(follower.model, WINDOW + 1) == fingerprint(lead.model, WINDOW + 1)


def test_a_copy_that_is_not_the_recorded_payload_is_passed_over_for_the_author(network) -> None:
    """The lead can withhold a copy, never alter one: bytes that do not hash to what the
    record names are ignored, and the follower fetches the author's."""
    chain, miners, lead, follower = network
    _mirror(lead, miners, tamper=True)

    async def run() -> str:
        await _lead_publishes(lead, miners)
        for m in miners:
            m.store.failing_gets = 1  # spent only if the author is asked
        return await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)

    assert asyncio.run(run()) == "applied"
    assert [m.store.failing_gets for m in miners] == [0, 0]
    assert fingerprint(follower.model, WINDOW + 1) == fingerprint(lead.model, WINDOW + 1)


def test_a_node_uses_its_own_verified_copies_of_recorded_payloads(network) -> None:
    """A validator already holds what it observed: a store that is down now costs nothing."""
    chain, miners, lead, follower = network

    async def run() -> str:
        await _lead_publishes(lead, miners)
        have = {
            m.uid: gather_module.open_payload(
                m.uid, m.hotkey, WINDOW, m.payloads[WINDOW], follower.decoder
            )
            for m in miners
        }
        for m in miners:
            m.store.down = True
        return await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW, have)

    assert asyncio.run(run()) == "applied"
    assert fingerprint(follower.model, WINDOW + 1) == fingerprint(lead.model, WINDOW + 1)


def test_a_diverged_node_repairs_from_the_leads_next_checkpoint(
    network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a window it could not reproduce, the node loads the lead's checkpoint of the
    next window at its next catch-up and is back on the lead's model and records."""
    chain, miners, lead, follower = network
    monkeypatch.setattr(gather_module, "RECORDED_FETCH_POLICY", RetryPolicy(2, 0.0, 0.0))

    async def run() -> None:
        await _lead_publishes(lead, miners)
        miners[0].store.down = True
        assert await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW) == "diverged"
        miners[0].store.down = False
        await save_checkpoint(
            lead.store, lead.keypair, lead.model, netuid=1, window=WINDOW + 1,
            model_name="tiny", dataset_id=lead.dataset.dataset_id,
        )  # fmt: skip
        chain.committed[lead.hotkey] = encode_commitment(
            FilesystemCommitment(bucket=lead.store.inner.bucket, root=str(lead.store.inner.root))
        )
        chain.neurons = (Neuron(0, lead.hotkey, "cold", 1000.0, True, 0),)
        follower.peers.by_hotkey[lead.hotkey] = lead.store
        chain.block = RECORD_DEADLINE + 11  # window 4 had no record: skipped everywhere
        await follower.catch_up(WINDOW + 2)

    asyncio.run(run())
    assert follower.diverged_since is None and METRICS.model_diverged._value.get() == 0  # type: ignore[attr-defined]
    assert fingerprint(follower.model, WINDOW + 1) == fingerprint(lead.model, WINDOW + 1)
