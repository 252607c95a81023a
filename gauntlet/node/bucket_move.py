"""Moving a node to a new bucket without losing what the network rebuilds its model from.

The lead validator's bucket holds the aggregation records, peer sets and checkpoints every
node replays or restores the model from. A lead that restarted with a new bucket used to
commit it at once, find none of its own artifacts there, and walk the model back to the
initial weights (issue 16: the next window started at loss 5.593). So a node whose
commitment on chain names another bucket than the one it is about to commit first copies
those artifacts from the old bucket (read through its old commitment, as any node would)
into the new one, then commits. Artifacts already in the new bucket are left as they are;
a run that is interrupted is resumed by the next start. Per-window artifacts (uploads,
reveals, reports, arrival books) are not carried: nothing reads them after their window.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from gauntlet.storage.base import ObjectNotFound, ObjectStore, StorageError
from protocol.keys import aggregations_prefix, checkpoints_prefix, peer_sets_prefix

log = logging.getLogger(__name__)

CARRIED_PREFIXES = (aggregations_prefix(), peer_sets_prefix(), checkpoints_prefix())
# A checkpoint's model file is the largest object carried: 64 GiB covers a 16B-parameter
# float32 model; larger ones are skipped with a warning (nodes fall back to replaying).
MAX_CARRIED_BYTES = 64 << 30


async def carry_over(old: ObjectStore, new: ObjectStore) -> int:
    """Copy every record, peer set and checkpoint file of ``old`` that ``new`` lacks; the
    number copied. Objects stream through a temporary file, so a model-sized checkpoint
    never sits in memory. Raises :class:`StorageError` when ``old`` cannot be listed."""
    copied = 0
    with tempfile.TemporaryDirectory(prefix="gauntlet-carry-") as tmp:
        scratch = Path(tmp) / "object"
        for prefix in CARRIED_PREFIXES:
            async for info in old.list(prefix):
                try:
                    await new.head(info.key)
                    continue  # already carried (an earlier, interrupted move)
                except ObjectNotFound:
                    pass
                if info.size > MAX_CARRIED_BYTES:
                    log.warning("not carrying %s: %d bytes", info.key, info.size)
                    continue
                await old.get_to_file(info.key, scratch, max_bytes=MAX_CARRIED_BYTES)
                await new.put_file(info.key, scratch)
                copied += 1
    return copied


async def move_bucket(old: ObjectStore | None, new: ObjectStore, where: str) -> None:
    """Before committing ``new`` in place of the bucket ``old`` (read through the old
    commitment; None when it cannot be opened): carry the artifacts over, and say so."""
    if old is None:
        log.warning(
            "the bucket committed before (%s) cannot be opened: nothing carried over; nodes "
            "will restore the model from what the new bucket holds",
            where,
        )
        return
    try:
        copied = await carry_over(old, new)
    except StorageError as exc:
        log.warning(
            "could not carry records and checkpoints over from the bucket committed before "
            "(%s): %s; nodes will restore the model from what the new bucket holds",
            where,
            exc,
        )
        return
    log.info("moved to a new bucket: carried %d records, peer sets and checkpoint files", copied)
