"""The validator's observer: polls every miner's bucket during the upload phase.

Runs as a background task beside the validator's window loop (which is still scoring
the previous window). Each round: read the head, HEAD every miner's sealed-upload key
for each window still open to observation, download each version not seen before
to the :class:`~gauntlet.node.spool.Spool` (the GET pinned to the ETag the HEAD
returned), check its signed seal header, read the head again, and hand the finds to :class:`~gauntlet.node.arrivals.WindowArrivals`,
which applies the observed-arrival rule. Storage faults here are never a verdict on
their own: a transient error just means the next round tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gauntlet.chain.base import ChainError
from gauntlet.node.arrivals import Seen, WindowArrivals
from gauntlet.node.peers import Peer
from gauntlet.node.spool import Spool
from gauntlet.storage.base import ObjectNotFound, PreconditionFailed, StorageError
from gauntlet.storage.retry import is_transient
from gauntlet.telemetry import METRICS
from protocol.errors import ProtocolError
from protocol.keys import contribution_key
from protocol.windows import Timeline, window_of, window_start

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

MAX_CONCURRENT_FETCHES = 16  # bounds sockets per round (downloads stream to the spool)
# A chain outage this long (in blocks) during a window's uploads spoils the window: miners
# need the chain to learn a window, and after 2 blocks without it an honest one may miss the
# deadline. One lost poll (a fraction of a block) does not.
MIN_OUTAGE_BLOCKS = 2
KEEP_WINDOWS = 4  # windows of observations kept in memory


class Observer:
    """Keeps a :class:`WindowArrivals` per window; :meth:`closed` waits for one to close."""

    def __init__(
        self, rt: Runtime, timeline: Timeline, poll_seconds: float, spool: Spool | None = None
    ) -> None:
        self.rt = rt
        self.spool = Spool() if spool is None else spool
        self.timeline = timeline
        self.poll_seconds = poll_seconds
        self.windows: dict[int, WindowArrivals] = {}
        self.first_window: int | None = None  # first window observed since this start
        self._changed = asyncio.Event()
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
        self.rounds = 0
        self.requests = 0  # HEAD and GET requests sent (bench/observe.py reads it)
        self.failure: Exception | None = None
        self._last_head: int | None = None  # head at the end of the last good round
        self._outage_from: int | None = None  # last good head before the chain went away

    def _arrivals(self, window: int) -> WindowArrivals:
        if window not in self.windows:
            self.windows[window] = WindowArrivals(
                window,
                deadline_block=self.timeline.deadline(window),
                close_block=self.timeline.observation_close(window),
            )
        return self.windows[window]

    def open_windows(self, head: int) -> list[int]:
        """Windows whose uploads can still count with the chain at ``head``."""
        current = window_of(head, self.timeline.blocks_per_window)
        return [w for w in (current - 1, current) if w >= 0 and self.timeline.observing(w, head)]

    async def run(self) -> None:
        """Poll forever (until cancelled). Chain outages are ridden out (the rounds they
        spoil simply do not count); any other failure is kept and re-raised to every
        waiter of :meth:`closed`, so a broken observer stops the validator loudly."""
        try:
            while True:
                try:
                    await self.poll_round()
                except ChainError as exc:
                    log.warning("observer: chain unavailable (%s); next round", exc)
                    METRICS.error(f"chain_{exc.reason}")
                    self.chain_failed()
                await asyncio.sleep(self.poll_seconds)
        except Exception as exc:
            self.failure = exc
            self._changed.set()
            raise

    async def poll_round(self) -> None:
        chain = self.rt.chain
        started = await chain.current_block()
        if self._outage_from is not None:
            self.spoil_outage(self._outage_from, started)
            self._outage_from = None
        windows = self.open_windows(started)
        if self.first_window is None and windows:
            self.first_window = windows[-1]
        _, miners = await self.rt.peers.miners(chain)
        finds = {w: await self._poll(w, miners, started) for w in windows}
        ended = await chain.current_block()
        for window, found in finds.items():
            self._arrivals(window).settle_round(found, started, ended)
        for arrivals in self.windows.values():
            if ended >= arrivals.close_block and not arrivals.closed:
                arrivals.close()
        self._last_head = ended
        self._prune(ended)
        self.rounds += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def chain_failed(self) -> None:
        """A round failed on the chain: an outage runs from the last head seen until the next
        round that reads one (:meth:`spoil_outage` then judges it)."""
        if self._outage_from is None:
            self._outage_from = self._last_head

    def spoil_outage(self, last_seen: int, back_at: int) -> None:
        """The chain was unreachable between heads ``last_seen`` and ``back_at``: spoil every
        window whose upload phase (its start to its deadline) that overlaps, when it lasted
        ``MIN_OUTAGE_BLOCKS`` or more. Shorter gaps are a lost poll or two, which the
        rounds before and after cover."""
        if back_at - last_seen < MIN_OUTAGE_BLOCKS:
            return
        per = self.timeline.blocks_per_window
        for window in range(window_of(last_seen, per), window_of(back_at, per) + 1):
            if window_start(window, per) <= back_at and last_seen <= self.timeline.deadline(window):
                log.warning(
                    "window %d: the chain was unreachable from block %d to %d, during its "
                    "uploads; nobody is judged on it", window, last_seen, back_at,
                )  # fmt: skip
                METRICS.error("window_chain_outage")
                self._arrivals(window).spoil()

    def _prune(self, head: int) -> None:
        current = window_of(head, self.timeline.blocks_per_window)
        for window in [w for w in self.windows if w < current - KEEP_WINDOWS]:
            del self.windows[window]
        # The spool is not pruned here: a validator catching up (after a restart, or slow)
        # may still judge a window this far back; it drops each window once judged.

    def close(self) -> None:
        self.spool.close()

    async def closed(self, window: int) -> WindowArrivals:
        """The observation of ``window`` once it has closed. A window no round looked at
        comes back empty and incomplete: one that closed before this observer first
        polled, one a single slow round jumped over (a starved host, a slow store), or
        one already pruned (a validator more than :data:`KEEP_WINDOWS` behind)."""
        while True:
            if self.failure is not None:
                raise RuntimeError("the observer stopped") from self.failure
            if window in self.windows and self.windows[window].closed:
                return self.windows[window]
            if window not in self.windows and self._unobserved(window):
                arrivals = self._arrivals(window)
                arrivals.close()
                return arrivals
            await self._changed.wait()

    def _unobserved(self, window: int) -> bool:
        """Whether ``window``'s observation closed with no round having opened it."""
        if self.first_window is not None and window < self.first_window:
            return True
        head = self._last_head
        return head is not None and head >= self.timeline.observation_close(window)

    async def _poll(self, window: int, miners: Sequence[Peer], head: int) -> dict[int, Seen]:
        known = self._arrivals(window).accepted
        results = await asyncio.gather(
            *(self._look(window, p, known.get(p.uid), head) for p in miners)
        )
        return {seen.uid: seen for seen in results if seen is not None}

    async def _look(self, window: int, peer: Peer, known: Seen | None, head: int) -> Seen | None:
        """The peer's current version for ``window`` (reusing a known one, or stamped with
        ``head``, the round's starting head), or None."""
        if peer.store is None:
            return None
        key = contribution_key(window, peer.hotkey)
        arrivals = self._arrivals(window)
        async with self._semaphore:
            try:
                self.requests += 1
                info = await peer.store.head(key)
                if known is not None and known.etag == info.etag:
                    return known
                self.requests += 1
                with METRICS.download("contribution") as transfer:
                    got, sealed = await self.spool.fetch(
                        peer.store,
                        key,
                        self.spool.path_for(window, peer.uid, info.etag),
                        max_bytes=self.rt.limits.max_bytes,
                        if_match=info.etag or None,
                        hotkey=peer.hotkey,
                        window=window,
                        netuid=self.rt.config.chain.netuid,
                    )
                    transfer.nbytes = got.size
            except ObjectNotFound:
                arrivals.faults.pop(peer.uid, None)
                return None
            except PreconditionFailed:
                return None  # replaced between HEAD and GET: the next round sees the new one
            except StorageError as exc:
                arrivals.faults[peer.uid] = exc.reason
                if not is_transient(exc):
                    log.debug("uid %d: cannot read its upload: %s", peer.uid, exc)
                return None
            except ProtocolError as exc:
                return Seen(peer.uid, peer.hotkey, info.etag, head, error=str(exc))
        if sealed.header.uid != peer.uid:
            return Seen(peer.uid, peer.hotkey, info.etag, head, error="seal names another uid")
        arrivals.faults.pop(peer.uid, None)
        return Seen(peer.uid, peer.hotkey, info.etag, head, sealed=sealed)
