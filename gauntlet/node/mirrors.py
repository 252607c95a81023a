"""The lead's mirror of the payloads it records.

A record names each member's payload by its hash, and every node that did not observe the
window itself (miners, a node catching up) fetches those payloads to step. Fetched from
their authors alone, a member could serve the lead, which records it, and hold every other
reader's request (``selective-serve`` in the localnet): each follower would fail to
reproduce the record and diverge until the lead's next checkpoint, while the member kept
its score. So the lead stores its own copy of each member's opened payload in its bucket
before it publishes the record, and followers read that copy first, the author only when
the copy is missing or wrong. The copy proves itself: its hash is the one the signed record
names and it carries its author's signature, so a lead can withhold it but never alter it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from gauntlet.node import peer_reads
from gauntlet.node.gather import Contribution, Decoder, open_payload
from gauntlet.storage.base import ObjectNotFound, ObjectStore, StorageError
from gauntlet.storage.retry import RetryPolicy, with_retries
from protocol.errors import ProtocolError
from protocol.keys import mirror_key

log = logging.getLogger(__name__)

# Storing a copy: a few quick tries; the record does not wait longer for a mirror (a
# follower that finds none asks the author, as before mirrors existed).
MIRROR_PUT_POLICY = RetryPolicy(attempts=3, base_delay=0.2, max_delay=1.0)


async def mirror_payloads(store: ObjectStore, window: int, members: Sequence[Contribution]) -> int:
    """Lead: store a copy of each member's opened payload (read again from the validator's
    spool: opening it checks it against the hash its author signed, the one judged) under
    :func:`protocol.keys.mirror_key`; how many were stored. A member whose bytes are not at
    hand is not mirrored; a store that refuses is logged, not raised: followers then ask
    the authors."""

    async def one(member: Contribution) -> bool:
        if member.opened is None:
            return False
        try:
            data = await asyncio.to_thread(member.opened)
        except (OSError, ProtocolError) as exc:  # the spooled copy is gone or damaged
            log.warning("window %d: cannot mirror uid %d's payload: %s", window, member.uid, exc)
            return False
        key = mirror_key(window, member.hotkey)
        try:
            await with_retries(lambda: store.put(key, data), MIRROR_PUT_POLICY)
        except StorageError as exc:
            log.warning("window %d: cannot mirror uid %d's payload: %s", window, member.uid, exc)
            return False
        return True

    return sum(await asyncio.gather(*(one(m) for m in members)))


async def fetch_mirrored(
    store: ObjectStore, window: int, uid: int, hotkey: str, sha256: str, decoder: Decoder
) -> Contribution | None:
    """The lead's copy of ``hotkey``'s payload for ``window``, if it is the one the record
    names (``sha256``) and opens as its author's; None otherwise (ask the author)."""
    max_bytes = decoder.limits.max_bytes
    try:
        data = await peer_reads.within(
            store.get(mirror_key(window, hotkey), max_bytes=max_bytes),
            peer_reads.download_seconds(max_bytes),
        )
    except ObjectNotFound:
        return None
    except StorageError as exc:
        log.info("window %d: the lead's copy of uid %d's payload: %s", window, uid, exc)
        return None
    opened = open_payload(uid, hotkey, window, data, decoder)  # hashes it once, for the check
    if opened.ok and opened.sha256 == sha256:
        return opened
    log.warning(
        "window %d: the lead's copy of uid %d's payload is not the recorded one", window, uid
    )
    return None
