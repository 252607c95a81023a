"""The reveal phase: miners publish the keys of their sealed uploads; readers fetch them.

A miner publishes its reveal once the chain reaches the window's observation close
(no upload can count after it, so no one gains by reading others' updates then).
A validator fetches the reveals of the uploads it observed in time, in rounds, until
every one is in or the head reaches the reveal close. Reveals are small signed
envelopes; a bad one is the miner's fault, a store hiccup is retried next round. A
miner's server that holds the read open gets
:data:`~gauntlet.node.peer_reads.SMALL_READ_SECONDS`, then counts as not having revealed
yet: a tarpit delays no round, and so no validator's window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gauntlet.chain.base import Chain
from gauntlet.node import peer_reads
from gauntlet.node.peers import Peer
from gauntlet.storage.base import ObjectNotFound, ObjectStore, StorageError
from gauntlet.storage.retry import RetryPolicy, is_transient, with_retries
from protocol.errors import ProtocolError
from protocol.keys import contribution_key, reveal_key
from protocol.sealed import MAX_REVEAL_BYTES, make_reveal, open_reveal
from protocol.signing import Signer

log = logging.getLogger(__name__)

REVEAL_POLL_SECONDS = 0.2
PUBLISH_POLICY = RetryPolicy(attempts=6, base_delay=0.2, max_delay=2.0)


async def publish_reveal(
    store: ObjectStore, *, netuid: int, window: int, key: bytes, signer: Signer
) -> None:
    """Miner: store the reveal of ``key`` for ``window`` (retrying transient faults)."""
    body = make_reveal(netuid=netuid, window=window, key=key, signer=signer)
    await with_retries(
        lambda: store.put(reveal_key(window, signer.ss58_address), body), PUBLISH_POLICY
    )


async def read_reveal(store: ObjectStore, window: int, hotkey: str, netuid: int) -> bytes:
    """The key ``hotkey`` revealed for ``window``; storage errors and
    :class:`~protocol.errors.ProtocolError` propagate."""
    raw = await store.get(reveal_key(window, hotkey), max_bytes=MAX_REVEAL_BYTES)
    return open_reveal(raw, expected_hotkey=hotkey, expected_window=window, netuid=netuid)


@dataclass
class RevealRound:
    """What the reveal phase found: keys, and bad reveals."""

    keys: dict[int, bytes] = field(default_factory=dict)
    bad: dict[int, str] = field(default_factory=dict)  # uid -> why the reveal is unusable


async def collect_reveals(
    chain: Chain,
    peers: Mapping[int, Peer],
    *,
    window: int,
    netuid: int,
    observed: Collection[int],
    reveal_close: int,
) -> RevealRound:
    """Fetch the reveals of ``observed`` uids in rounds until all are in or the head reaches
    ``reveal_close``."""
    found = RevealRound()
    pending = sorted(uid for uid in observed if uid in peers)
    while pending:
        open_round = await chain.current_block() < reveal_close  # read before the round
        results = await asyncio.gather(
            *(_try_reveal(peers[uid], window, netuid) for uid in pending)
        )
        for uid, (key, bad) in zip(pending, results, strict=True):
            if key is not None:
                found.keys[uid] = key
            elif bad:
                found.bad[uid] = bad
        pending = [uid for uid in pending if uid not in found.keys and uid not in found.bad]
        if not open_round:
            break  # the round that began at or after the close was the last one
        if pending:
            await asyncio.sleep(REVEAL_POLL_SECONDS)
    return found


async def _try_reveal(peer: Peer, window: int, netuid: int) -> tuple[bytes | None, str]:
    """(key, "") when revealed; (None, reason) when the reveal is bad; (None, "") to retry."""
    assert peer.store is not None
    try:
        read = read_reveal(peer.store, window, peer.hotkey, netuid)
        return await peer_reads.within(read, peer_reads.SMALL_READ_SECONDS), ""
    except ProtocolError as exc:
        return None, str(exc)
    except ObjectNotFound:
        return None, ""
    except StorageError as exc:
        if not is_transient(exc):
            log.debug("uid %d: reveal unreadable: %s", peer.uid, exc)
        return None, ""


async def stored_late(peers: Collection[Peer], window: int) -> set[int]:
    """Which of ``peers`` (not observed in time) hold an upload for ``window`` now: asked
    after the record is out, so a miner that uploaded after the close is told ``late``
    rather than ``missing`` (same penalty; a clearer reason)."""
    present = await asyncio.gather(*(_exists(p, contribution_key(window, p.hotkey)) for p in peers))
    return {p.uid for p, here in zip(peers, present, strict=True) if here}


async def _exists(peer: Peer, key: str) -> bool:
    if peer.store is None:
        return False
    try:
        await peer_reads.within(peer.store.head(key), peer_reads.SMALL_READ_SECONDS)
    except StorageError:
        return False
    return True
