"""A miner hears what validators say about it: faults it can fix are logged every window.

Validators publish a report per window (protocol/keys.py ``window_report_key``). A miner
whose bucket validators cannot read (a wrong read key, a missing bucket) or whose uploads
they reject would otherwise mine on, unpaid, with nothing in its own log. After each
window the miner reads each validator's report of the previous one, and while any of
them names it ``unreadable`` or ``invalid`` it logs a WARNING with the reason and sets
``gauntlet_reported_fault{status}`` to the number of validators saying so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from gauntlet.storage.base import ObjectStore, StorageError
from gauntlet.telemetry import METRICS
from protocol.keys import window_report_key
from protocol.schemas import PeerResult, WindowReport

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 4 * 2**20
FIXABLE = ("unreadable", "invalid")  # faults of the miner's own set-up, not of its training


async def about_me(store: ObjectStore, validator: str, window: int, uid: int) -> PeerResult | None:
    """The line ``validator``'s report of ``window`` has on ``uid``; None if there is none."""
    try:
        raw = await store.get(window_report_key(window, validator), max_bytes=MAX_REPORT_BYTES)
        report = WindowReport.model_validate_json(raw)
    except (StorageError, ValidationError):
        return None  # not published (yet), or not readable: nothing to say
    return next((p for p in report.peers if p.uid == uid), None)


async def check_feedback(rt: Runtime, window: int) -> dict[str, int]:
    """Read every validator's report of ``window``; warn about fixable faults it names.
    Returns status -> how many validators report it (for :data:`FIXABLE` statuses)."""
    metagraph = await rt.chain.metagraph()
    commitments = await rt.chain.commitments()
    validators = [n for n in metagraph.neurons if n.validator_permit]
    stores = [rt.peers.store_for(v.hotkey, commitments.get(v.hotkey)) for v in validators]
    lines = await asyncio.gather(
        *(
            about_me(store, v.hotkey, window, rt.uid)
            for v, store in zip(validators, stores, strict=True)
            if store is not None
        )
    )
    counts = {status: 0 for status in FIXABLE}
    for line in lines:
        if line is not None and line.status in counts:
            counts[line.status] += 1
            log.warning(
                "window %d: a validator scores this miner %s: %s (check the bucket, its read "
                "keys and the payload; docs/miner.md, troubleshooting)",
                window,
                line.status,
                line.reason or "no reason given",
            )
    for status, count in counts.items():
        METRICS.reported_fault.labels(status).set(count)
    return counts
