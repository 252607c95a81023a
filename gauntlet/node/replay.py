"""Catching up: the lead's newest verified checkpoint, then its aggregation records.

A node that is more than one window behind (it started late or restarted), or whose
model diverged from the lead's records, does not need every window since the start
of the run: it loads the lead validator's newest checkpoint at or before the target
and replays only the windows after it by the records (:mod:`.records`), exactly as
live nodes applied them (a window without a record in time left the model as it was).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gauntlet.node.checkpoints import CheckpointError, checkpoint_windows, load_checkpoint
from gauntlet.node.lead import lead_validator
from gauntlet.storage.base import ObjectStore, StorageError

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)


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


async def restore_checkpoint(
    rt: Runtime, lead: Lead, target: int, after: int | None = None
) -> bool:
    """Load the lead's newest verifiable checkpoint in (after, target] (``after`` defaults to
    ``rt.window``); True if one loaded."""
    after = rt.window if after is None else after
    try:
        windows = await checkpoint_windows(lead.store, lead.hotkey)
    except StorageError as exc:
        log.warning("cannot list the lead's checkpoints: %s", exc)
        return False
    for window in (w for w in windows if after < w <= target):
        try:
            manifest = await load_checkpoint(
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
        rt.ledger_head = manifest.ledger_head  # the ledger goes on from the checkpoint's head
        return True
    return False
