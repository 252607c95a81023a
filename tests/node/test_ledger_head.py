"""Every node keeps the ledger head as it follows the lead's records; records carry the ledger
fields; checkpoints carry the head; retention keeps the records; ``--check-payloads`` finds a
payload that differs from its record. Real runtimes, buckets and sealed payloads.

Window 3 of 10 blocks, as in test_records.py: the record must be in the lead's store by the
chain time of block 48."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from pathlib import Path

import pytest
from node_helpers import (
    Miner,
    payload,
    revealed_window,
    upload_sealed,
)

import gauntlet.node.gather as gather_module
from gauntlet.compress.aggregate import peer_shares
from gauntlet.ledger.digest import model_sha256, model_sha256_after
from gauntlet.ledger.fetch import Buckets, check_payloads
from gauntlet.ledger.verify import LedgerError, walk_chain
from gauntlet.node.checkpoints import save_checkpoint
from gauntlet.node.checks import delta_norm
from gauntlet.node.lead import aggregation_record
from gauntlet.node.records import follow_record, publish_record, validation_loss
from gauntlet.node.replay import Lead, restore_checkpoint
from gauntlet.node.reveals import publish_reveal
from gauntlet.node.runtime import Runtime
from gauntlet.telemetry import METRICS
from gauntlet.train.fingerprint import fingerprint_after
from protocol.envelope import open_envelope
from protocol.keys import (
    aggregation_record_key,
    peer_set_key,
    window_report_key,
)
from protocol.schemas import AggregationRecord, RecordLink

WINDOW = 3


@pytest.fixture
def network(tmp_path: Path, stdlib_dataset_dir: Path):
    """Two miners that uploaded and revealed window 3, a lead and a second validator."""
    return revealed_window(tmp_path, stdlib_dataset_dir, WINDOW, scale=lambda m: 0.001 * m.uid)


async def _lead_publishes(lead: Runtime, miners: list[Miner]) -> AggregationRecord:
    """The lead's record as the validator builds it: shares by norm, the ledger head,
    the digest of θ_{w+1} and the validation loss of θ_w."""
    used = [
        gather_module.open_payload(m.uid, m.hotkey, WINDOW, m.payloads[WINDOW], lead.decoder)
        for m in miners
    ]
    update = lead.aggregate(used)
    lr = lead.config.train.outer_lr
    norms = [delta_norm(gather_module.decode_update(c, lead.decoder)) for c in used]
    record = aggregation_record(
        netuid=1, window=WINDOW, hotkey=lead.hotkey,
        used=[(c.uid, c.hotkey, c.sha256) for c in used],
        fingerprint=fingerprint_after(lead.model, update, lr, WINDOW + 1),
        shares=peer_shares(norms, lead.config.compress.normalise, lead.config.compress.clip_norm),
        previous=lead.ledger_head, model_sha256=model_sha256_after(lead.model, update, lr),
        validation_loss=validation_loss(lead),
    )  # fmt: skip
    assert await publish_record(lead, record)
    lead.apply_outer_step(WINDOW, used)
    return record


def _stored(lead: Runtime, window: int) -> bytes:
    return (lead.store.inner.base / aggregation_record_key(window, lead.hotkey)).read_bytes()  # type: ignore[attr-defined]


def test_every_node_follows_the_ledger_head(network) -> None:
    chain, miners, lead, follower = network

    async def run() -> tuple[AggregationRecord, str]:
        record = await _lead_publishes(lead, miners)
        return record, await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)

    before = METRICS.ledger_breaks._value.get()  # type: ignore[attr-defined]
    record, outcome = asyncio.run(run())
    assert outcome == "applied" and record.previous is None
    assert lead.ledger_head is not None and lead.ledger_head == follower.ledger_head
    assert lead.ledger_head.sha256 == hashlib.sha256(_stored(lead, WINDOW)).hexdigest()
    assert model_sha256(lead.model) == record.model_sha256  # the digest signed before the step
    assert model_sha256(follower.model) == record.model_sha256
    assert [c.share for c in record.contributions] == pytest.approx([0.5, 0.5])  # per_peer
    assert record.validation_loss is not None and math.isfinite(record.validation_loss)
    assert METRICS.ledger_breaks._value.get() == before  # type: ignore[attr-defined]


def test_a_record_off_the_nodes_head_is_followed_with_one_warning(
    network, caplog: pytest.LogCaptureFixture
) -> None:
    chain, miners, lead, follower = network
    follower.ledger_head = RecordLink(window=1, hotkey=lead.hotkey, sha256="ab" * 32)
    before = METRICS.ledger_breaks._value.get()  # type: ignore[attr-defined]

    async def run() -> str:
        await _lead_publishes(lead, miners)
        return await follow_record(follower, Lead(lead.hotkey, lead.store), WINDOW)

    with caplog.at_level(logging.WARNING, logger="gauntlet.node.records"):
        assert asyncio.run(run()) == "applied"  # model sync comes first
    warnings = [r for r in caplog.records if "ledger head" in r.getMessage()]
    assert len(warnings) == 1 and "window 3" in warnings[0].getMessage()
    assert METRICS.ledger_breaks._value.get() == before + 1  # type: ignore[attr-defined]
    assert follower.ledger_head == lead.ledger_head


def test_a_lead_without_its_window_declares_an_empty_linked_record(network) -> None:
    chain, miners, lead, follower = network
    lead.ledger_head = RecordLink(window=2, hotkey=lead.hotkey, sha256="cd" * 32)
    digest = model_sha256(lead.model)
    outcome = asyncio.run(follow_record(lead, Lead(lead.hotkey, lead.store), WINDOW))
    assert outcome == "skipped"
    record = open_envelope(_stored(lead, WINDOW), AggregationRecord, expected_signer=lead.hotkey)
    assert record.contributions == [] and record.model_sha256 == digest
    assert record.previous == RecordLink(window=2, hotkey=lead.hotkey, sha256="cd" * 32)
    assert record.validation_loss is not None and lead.ledger_head.window == WINDOW  # type: ignore[union-attr]


def test_a_checkpoint_carries_the_head_and_a_restored_node_takes_it(network) -> None:
    chain, miners, lead, follower = network

    async def run() -> bool:
        await _lead_publishes(lead, miners)
        await save_checkpoint(
            lead.store, lead.keypair, lead.model, netuid=1, window=WINDOW + 1,
            model_name="tiny", dataset_id=lead.dataset.dataset_id, ledger_head=lead.ledger_head,
        )  # fmt: skip
        return await restore_checkpoint(follower, Lead(lead.hotkey, lead.store), WINDOW + 1)

    assert asyncio.run(run())
    assert follower.window == WINDOW + 1 and follower.ledger_head == lead.ledger_head
    assert model_sha256(follower.model) == model_sha256(lead.model)


def test_retention_keeps_the_aggregation_records(network) -> None:
    chain, miners, lead, follower = network
    store = lead.store.inner

    async def run() -> int:
        await _lead_publishes(lead, miners)
        await store.put(window_report_key(WINDOW, lead.hotkey), b"{}")
        await store.put(peer_set_key(WINDOW, lead.hotkey), b"{}")
        return await lead.prune(WINDOW + 100)

    assert asyncio.run(run()) == 2
    assert (store.base / aggregation_record_key(WINDOW, lead.hotkey)).is_file()
    assert not (store.base / window_report_key(WINDOW, lead.hotkey)).exists()


def test_check_payloads_finds_a_payload_that_differs_from_its_record(network) -> None:
    chain, miners, lead, follower = network
    buckets = Buckets({m.hotkey: m.store.inner for m in miners} | {lead.hotkey: lead.store.inner})

    async def verify():
        ledger = await walk_chain(buckets, WINDOW, lead.hotkey)
        return await check_payloads(buckets, ledger, 4 * 2**20)

    asyncio.run(_lead_publishes(lead, miners))
    assert asyncio.run(verify()).checked == 2

    async def replace() -> None:  # the miner swaps its upload (and reveal) after the record
        m = miners[1]
        await upload_sealed(m, WINDOW, payload(lead.model, m, WINDOW, scale=0.5))
        await publish_reveal(
            m.store.inner, netuid=1, window=WINDOW, key=m.keys[WINDOW], signer=m.keypair
        )

    asyncio.run(replace())
    with pytest.raises(LedgerError, match=r"^record of window 3 .*uid 2 .*payload hash mismatch"):
        asyncio.run(verify())
