"""One model on every node: the lead's aggregation record decides every outer step.

After the reveal phase of window ``w`` the lead validator publishes a signed record
naming exactly which payloads (uid, hotkey, payload sha256) enter the aggregate.
The record counts if the lead's store holds it by the chain time of
``Timeline.record_deadline(w)`` (the lead's own server clock: the lead is the
authority on its records, as on its peer sets). Then:

- every node applies exactly that record, fetching the named payloads (transient
  faults retried) and checking each against its hash; a validator reuses the copies
  it observed itself;
- with no record in time, no node changes the model: θ_{w+1} = θ_w everywhere (the
  deterministic fallback; the lead applies the same rule to its own record);
- a node that cannot fetch a recorded payload, or whose model's fingerprint then
  differs from the record's, does not go on silently: it marks itself diverged
  (log and metric) and repairs from the lead's next checkpoint (:mod:`.replay`).

The records that count form the contribution ledger (SPEC section 8.7): each names the one
before it (``previous``). Every node keeps the ledger head, the link to the last record that
counted, so whichever validator leads next links its records to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gauntlet.ledger.digest import model_sha256
from gauntlet.node.evaluation import loss_on
from gauntlet.node.gather import Contribution, fetch_recorded
from gauntlet.node.mirrors import fetch_mirrored
from gauntlet.node.peers import Peer
from gauntlet.storage.base import ObjectStore, StorageError
from gauntlet.storage.retry import is_transient
from gauntlet.telemetry import METRICS
from gauntlet.train.fingerprint import fingerprint, max_abs_difference
from protocol.envelope import open_envelope, seal
from protocol.errors import ProtocolError
from protocol.keys import aggregation_record_key
from protocol.ledger import MAX_RECORD_BYTES, StoredRecord, link_to, record_sha256
from protocol.schemas import AggregationRecord, RecordLink

if TYPE_CHECKING:
    from gauntlet.node.replay import Lead
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

FINGERPRINT_TOLERANCE = 1e-6
RECORD_POLL_SECONDS = 0.25
PUBLISH_PAUSE_SECONDS = (0.2, 0.5, 1.0, 2.0)


async def record_on_time(rt: Runtime, store: ObjectStore, window: int, hotkey: str) -> bool:
    """Whether ``hotkey``'s record of ``window`` is in ``store`` by the record deadline."""
    timeline = await rt.timeline()
    deadline = await rt.chain.block_timestamp(timeline.record_deadline(window))
    info = await store.head(aggregation_record_key(window, hotkey))
    return info.last_modified <= deadline + rt.config.chain.upload_grace_seconds


async def fetch_record(rt: Runtime, lead: Lead, window: int) -> StoredRecord | None:
    """The lead's valid record of ``window`` if it was stored in time; None if there is none
    (yet), it came too late, or it is not a valid record by the lead. Transient store
    faults propagate (the caller retries)."""
    try:
        if not await record_on_time(rt, lead.store, window, lead.hotkey):
            log.warning("the lead's record of window %d came too late to count", window)
            return None
        raw = await lead.store.get(
            aggregation_record_key(window, lead.hotkey), max_bytes=MAX_RECORD_BYTES
        )
        record = open_envelope(
            raw, AggregationRecord, expected_signer=lead.hotkey, expected_window=window
        )
    except StorageError as exc:
        if is_transient(exc):
            raise
        log.debug("no usable aggregation record for window %d: %s", window, exc)
        return None
    except ProtocolError as exc:
        log.warning("ignoring the lead's record of window %d: %s", window, exc)
        return None
    if record.netuid != rt.config.chain.netuid:
        return None
    return StoredRecord(record, record_sha256(raw))


async def await_record(rt: Runtime, lead: Lead | None, window: int) -> StoredRecord | None:
    """Poll for the lead's record of ``window`` until it is there or the deadline passed."""
    if lead is None:
        return None
    deadline = (await rt.timeline()).record_deadline(window)
    while True:
        past = await rt.chain.current_block() > deadline  # read before the fetch: no race
        try:
            record = await fetch_record(rt, lead, window)
        except StorageError as exc:
            log.warning("the lead's store: %s; retrying", exc)
            METRICS.error(f"store_{exc.reason}")
            record = None
        if record is not None or past:
            return record
        await asyncio.sleep(RECORD_POLL_SECONDS)


async def publish_record(rt: Runtime, record: AggregationRecord) -> bool:
    """Lead: store ``record``, retrying until stored or the deadline passed; whether it
    counts (stored in time). A lead whose record does not count skips the window like
    every other node; one that counts is the lead's new ledger head."""
    body = seal(record, rt.keypair)
    key = aggregation_record_key(record.window, rt.hotkey)
    deadline = (await rt.timeline()).record_deadline(record.window)
    attempt = 0
    while True:
        try:
            with METRICS.upload("record", len(body)):
                await rt.store.put(key, body)
            counted = await record_on_time(rt, rt.store, record.window, rt.hotkey)
            if counted:
                rt.ledger_head = link_to(record.window, rt.hotkey, body)
            return counted
        except StorageError as exc:
            METRICS.error(f"publish_{exc.reason}")
            if await rt.chain.current_block() > deadline:
                log.error(
                    "window %d: the record could not be stored in time: %s", record.window, exc
                )
                return False
            log.warning("window %d: storing the record failed (%s); retrying", record.window, exc)
        await asyncio.sleep(PUBLISH_PAUSE_SECONDS[min(attempt, len(PUBLISH_PAUSE_SECONDS) - 1)])
        attempt += 1


async def recorded_contributions(
    rt: Runtime,
    record: AggregationRecord,
    have: Mapping[int, Contribution],
    mirror: ObjectStore | None = None,
) -> list[Contribution]:
    """Exactly the payloads ``record`` names: from ``have`` (this node's own verified copies,
    by uid) when the hash matches, else the lead's copy in ``mirror`` (its bucket:
    :mod:`gauntlet.node.mirrors`), else fetched from each author's bucket."""
    commitments = await rt.chain.commitments()

    async def one(uid: int, hotkey: str, sha256: str) -> Contribution:
        mine = have.get(uid)
        if mine is not None and mine.ok and mine.hotkey == hotkey and mine.sha256 == sha256:
            return mine
        if mirror is not None:
            copy = await fetch_mirrored(mirror, record.window, uid, hotkey, sha256, rt.decoder)
            if copy is not None:
                return copy
        peer = Peer(uid, hotkey, rt.peers.store_for(hotkey, commitments.get(hotkey)))
        return await fetch_recorded(peer, record.window, sha256, rt.decoder)

    return list(
        await asyncio.gather(*(one(c.uid, c.hotkey, c.sha256) for c in record.contributions))
    )


async def follow_record(
    rt: Runtime, lead: Lead | None, window: int, have: Mapping[int, Contribution] | None = None
) -> str:
    """Step the model from θ_window to θ_{window+1} by the lead's record; the outcome
    (``applied``, ``skipped`` or ``diverged``)."""
    if lead is not None and lead.hotkey == rt.hotkey:
        fetched = await fetch_record(rt, lead, window)  # its own: nothing to wait for
        if fetched is None:
            await _declare_empty(rt, window)
    else:
        fetched = await await_record(rt, lead, window)
    if fetched is None:
        log.warning("window %d: no aggregation record in time; the model stays as it is", window)
        rt.skip_window(window)
        return _outcome("skipped")
    advance_ledger(rt, fetched)
    record = fetched.record
    mirror = lead.store if lead is not None else None
    contributions = await recorded_contributions(rt, record, have or {}, mirror)
    failed = [c for c in contributions if not c.ok]
    if failed:
        reasons = "; ".join(f"uid {c.uid}: {c.reason}" for c in failed)
        log.error("window %d: cannot apply the lead's record (%s)", window, reasons)
        rt.mark_diverged(window)
        rt.skip_window(window)
        return _outcome("diverged")
    rt.peer_set_window = record.peer_set_window
    rt.apply_outer_step(window, contributions)
    drift = max_abs_difference(fingerprint(rt.model, window + 1), record.fingerprint)
    if drift > FINGERPRINT_TOLERANCE:
        log.error("window %d: model differs from the lead's record (drift %.2e)", window, drift)
        rt.mark_diverged(window)
        return _outcome("diverged")
    log.info("window %d: applied the lead's record (%d contributions)", window, len(contributions))
    return _outcome("applied")


def advance_ledger(rt: Runtime, fetched: StoredRecord) -> None:
    """A record that counts is the node's new ledger head. One that does not link to the
    head the node holds is logged and counted (a lead that forked the ledger, or a node
    that missed a record); the node still follows it: model sync comes first."""
    previous = fetched.record.previous
    if previous != rt.ledger_head:
        log.warning(
            "window %d: the lead's record links to %s, but this node's ledger head is %s",
            fetched.record.window,
            _describe(previous),
            _describe(rt.ledger_head),
        )
        METRICS.ledger_breaks.inc()
    rt.ledger_head = fetched.link


def _describe(link: RecordLink | None) -> str:
    return "none" if link is None else f"window {link.window} ({link.sha256[:12]})"


def validation_loss(rt: Runtime) -> float:
    """Loss (nats/token) of the node's model on the first ``validator.validation_pages``
    held-out pages: what window reports and the lead's records carry."""
    pages = rt.dataset.validation_page_ids()[: rt.config.validator.validation_pages]
    return loss_on(rt, pages, 0)


async def _declare_empty(rt: Runtime, window: int) -> None:
    """Lead over a window it did not process (it was not running, or could not observe the
    window): publish an empty record at once, so the other nodes need not wait for the
    deadline to skip it."""
    if await rt.chain.current_block() > (await rt.timeline()).record_deadline(window):
        return
    record = AggregationRecord(
        netuid=rt.config.chain.netuid,
        window=window,
        hotkey=rt.hotkey,
        peer_set_window=0,
        contributions=[],
        fingerprint=fingerprint(rt.model, window + 1),
        previous=rt.ledger_head,
        model_sha256=await asyncio.to_thread(model_sha256, rt.model),
        validation_loss=await asyncio.to_thread(validation_loss, rt),
    )
    await publish_record(rt, record)


def _outcome(outcome: str) -> str:
    METRICS.record_outcomes.labels(outcome).inc()
    return outcome
