"""Arrival books: a validator's signed account of what it observed in time, and borrowing one.

Every validator publishes its book when a window's observation closes (transparency:
anyone can compare what validators saw). A validator whose own observation of a
window is incomplete (it was down, or started, across the deadline) does not guess:
it takes the lead's book, fetching exactly the sealed objects it names (checked by
hash), so timeliness is judged as the lead judged it and no miner is blamed for the
validator's downtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gauntlet.node.arrivals import Seen, WindowArrivals
from gauntlet.node.peers import Peer
from gauntlet.node.spool import Spool
from gauntlet.storage.base import StorageError
from gauntlet.storage.retry import RetryPolicy, is_transient, with_retries
from protocol.envelope import open_envelope, seal
from protocol.errors import ProtocolError
from protocol.keys import arrivals_key, contribution_key
from protocol.schemas import Arrival, ArrivalBook

if TYPE_CHECKING:
    from gauntlet.node.replay import Lead
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BOOK_BYTES = 1 << 20
BOOK_POLL_SECONDS = 0.25
FETCH_POLICY = RetryPolicy(attempts=5, base_delay=0.3, max_delay=3.0)
CONCURRENT_FETCHES = 16  # sockets at once; memory is bounded by the spool


def book_of(arrivals: WindowArrivals, *, netuid: int, hotkey: str) -> ArrivalBook:
    """The signed-to-be account of ``arrivals`` (uploads that failed their header excluded)."""
    return ArrivalBook(
        netuid=netuid,
        window=arrivals.window,
        hotkey=hotkey,
        close_block=arrivals.close_block,
        complete=arrivals.complete,
        arrivals=[
            Arrival(
                uid=s.uid,
                hotkey=s.hotkey,
                sealed_sha256=s.sealed.sha256,
                payload_sha256=s.sealed.header.payload_sha256,
                block=s.block,
            )
            for s in sorted(arrivals.accepted.values(), key=lambda s: s.uid)
            if s.sealed is not None
        ],
    )


async def publish_book(rt: Runtime, arrivals: WindowArrivals) -> None:
    """Store this validator's book of ``arrivals`` (best effort: a failure is logged)."""
    book = book_of(arrivals, netuid=rt.config.chain.netuid, hotkey=rt.hotkey)
    body = seal(book, rt.keypair)
    try:
        await with_retries(
            lambda: rt.store.put(arrivals_key(arrivals.window, rt.hotkey), body), FETCH_POLICY
        )
    except StorageError as exc:
        log.warning("window %d: could not publish the arrival book: %s", arrivals.window, exc)


async def read_book(rt: Runtime, lead: Lead, window: int) -> ArrivalBook | None:
    """The lead's complete book of ``window``, polled until the reveal phase ends."""
    until = (await rt.timeline()).reveal_close(window)
    while True:
        past = await rt.chain.current_block() >= until
        try:
            raw = await lead.store.get(arrivals_key(window, lead.hotkey), max_bytes=MAX_BOOK_BYTES)
            book = open_envelope(
                raw, ArrivalBook, expected_signer=lead.hotkey, expected_window=window
            )
            if book.netuid == rt.config.chain.netuid and book.complete:
                return book
            return None
        except ProtocolError as exc:
            log.warning("the lead's arrival book of window %d is unusable: %s", window, exc)
            return None
        except StorageError as exc:
            if not is_transient(exc) and exc.reason != "not_found":
                return None
        if past:
            return None
        await asyncio.sleep(BOOK_POLL_SECONDS)


async def borrow_arrivals(
    rt: Runtime, lead: Lead, window: int, miners: Sequence[Peer], spool: Spool
) -> WindowArrivals | None:
    """Arrivals of ``window`` as the lead observed them, each sealed object fetched from its
    author to ``spool`` and checked against the book; None without a usable complete book."""
    book = await read_book(rt, lead, window)
    if book is None:
        return None
    timeline = await rt.timeline()
    borrowed = WindowArrivals(
        window, timeline.deadline(window), book.close_block, complete=True, closed=True
    )
    by_uid = {p.uid: p for p in miners}
    sockets = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def fetch(arrival: Arrival) -> Seen | None:
        async with sockets:
            return await _fetch(rt, by_uid.get(arrival.uid), arrival, window, spool)

    fetched = await asyncio.gather(*(fetch(a) for a in book.arrivals))
    for seen in fetched:
        if seen is not None:
            borrowed.accepted[seen.uid] = seen
    return borrowed


async def _fetch(
    rt: Runtime, peer: Peer | None, arrival: Arrival, window: int, spool: Spool
) -> Seen | None:
    if peer is None or peer.store is None or peer.hotkey != arrival.hotkey:
        return None
    store = peer.store
    try:
        _, sealed = await with_retries(
            lambda: spool.fetch(
                store,
                contribution_key(window, arrival.hotkey),
                spool.path_for(window, arrival.uid, f"book:{arrival.sealed_sha256}"),
                max_bytes=rt.limits.max_bytes,
                if_match=None,
                hotkey=arrival.hotkey,
                window=window,
                netuid=rt.config.chain.netuid,
            ),
            FETCH_POLICY,
        )
    except (StorageError, ProtocolError) as exc:
        log.info("uid %d: the upload the lead observed is not readable now: %s", arrival.uid, exc)
        return None
    if sealed.sha256 != arrival.sealed_sha256:
        log.info("uid %d: its upload changed since the lead observed it", arrival.uid)
        return None
    return Seen(arrival.uid, arrival.hotkey, etag="", block=arrival.block, sealed=sealed)
