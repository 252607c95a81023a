"""Catching up: the newest verified checkpoint, then the lead's aggregation records.

A node that is more than one window behind (it started late or restarted) does
not need every window since the start of the run: it loads the lead validator's
newest checkpoint at or before the target and replays only the windows after
it, fetching exactly the payloads each signed aggregation record names (checked
by sha256) and confirming the resulting model's fingerprint. Where a record is
missing, the node falls back to gathering that window by the protocol's rule.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gauntlet.node.checkpoints import CheckpointError, checkpoint_windows, load_checkpoint
from gauntlet.node.gather import Contribution, fetch_one
from gauntlet.node.lead import lead_validator
from gauntlet.node.peers import Peer
from gauntlet.storage.base import ObjectStore, StorageError
from gauntlet.train.fingerprint import fingerprint, max_abs_difference
from protocol.envelope import open_envelope
from protocol.errors import ProtocolError
from protocol.keys import aggregation_record_key
from protocol.schemas import AggregationRecord

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

FINGERPRINT_TOLERANCE = 1e-6
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class Lead:
    hotkey: str
    store: ObjectStore


async def find_lead(rt: Runtime) -> Lead | None:
    metagraph = await rt.chain.metagraph()
    neuron = lead_validator(metagraph)
    if neuron is None:
        return None
    store = rt.peers.store_for(neuron.hotkey, (await rt.chain.commitments()).get(neuron.hotkey))
    return Lead(neuron.hotkey, store) if store is not None else None


async def restore_checkpoint(rt: Runtime, lead: Lead, target: int) -> bool:
    """Load the lead's newest verifiable checkpoint in (rt.window, target]; True if one loaded."""
    try:
        windows = await checkpoint_windows(lead.store, lead.hotkey)
    except StorageError as exc:
        log.warning("cannot list the lead's checkpoints: %s", exc)
        return False
    for window in (w for w in windows if rt.window < w <= target):
        try:
            await load_checkpoint(
                lead.store,
                lead.hotkey,
                window,
                rt.model,
                netuid=rt.config.chain.netuid,
                model_name=rt.config.model.name,
                dataset_id=rt.dataset.dataset_id,
            )
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
            continue
        log.info("loaded the lead's checkpoint of window %d", window)
        rt.window = window
        return True
    return False


async def fetch_record(lead: Lead, window: int, netuid: int) -> AggregationRecord | None:
    try:
        raw = await lead.store.get(
            aggregation_record_key(window, lead.hotkey), max_bytes=MAX_RECORD_BYTES
        )
        record = open_envelope(
            raw, AggregationRecord, expected_signer=lead.hotkey, expected_window=window
        )
    except (StorageError, ProtocolError) as exc:
        log.debug("no usable aggregation record for window %d: %s", window, exc)
        return None
    return record if record.netuid == netuid else None


async def contributions_of_record(rt: Runtime, record: AggregationRecord) -> list[Contribution]:
    """Exactly the payloads a record names, each checked against its sha256."""
    commitments = await rt.chain.commitments()

    async def one(uid: int, hotkey: str, sha256: str) -> Contribution:
        peer = Peer(uid, hotkey, rt.peers.store_for(hotkey, commitments.get(hotkey)))
        result = await fetch_one(
            peer,
            netuid=rt.config.chain.netuid,
            window=record.window,
            deadline_time=float("inf"),  # the record already settled timeliness
            grace_seconds=0.0,
            limits=rt.limits,
            codec=rt.codec,
            shapes=rt.shapes,
            device=rt.device,
        )
        if result.ok and result.sha256 != sha256:
            return replace(
                result,
                status="invalid",
                reason="payload differs from the aggregation record",
                delta=None,
            )
        return result

    return list(
        await asyncio.gather(*(one(c.uid, c.hotkey, c.sha256) for c in record.contributions))
    )


async def replay_window(rt: Runtime, lead: Lead | None) -> None:
    """Apply one past window, from the lead's record when there is one."""
    window = rt.window
    record = await fetch_record(lead, window, rt.config.chain.netuid) if lead else None
    if record is None:
        used = await rt.outer_step(window, await rt.gather_window(window))
        log.info("synced window %d by gathering (%d contributions)", window, len(used))
        return
    contributions = await contributions_of_record(rt, record)
    missing = [c.uid for c in contributions if not c.ok]
    if missing:
        log.error(
            "window %d: record names payloads that are gone or altered (uids %s)", window, missing
        )
    rt.apply_outer_step(window, contributions)
    drift = max_abs_difference(fingerprint(rt.model, window + 1), record.fingerprint)
    level = logging.INFO if drift <= FINGERPRINT_TOLERANCE else logging.ERROR
    log.log(
        level, "replayed window %d from the lead's record (fingerprint drift %.2e)", window, drift
    )
