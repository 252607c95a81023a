"""The validator's observer: polls every miner's bucket during the upload phase.

Runs as a background task beside the validator's window loop (which is still scoring
the previous window). Each round: read the head, HEAD every miner's sealed-upload key
for each window still open to observation, download each version not seen before
to the :class:`~gauntlet.node.spool.Spool` (the GET pinned to the ETag the HEAD
returned), check its signed seal header, read the head again, and hand the finds to :class:`~gauntlet.node.arrivals.WindowArrivals`,
which applies the observed-arrival rule. Storage faults here are never a verdict on
their own: a transient error just means the next round tries again.

A miner's bucket server is adversarial, and one that holds requests open (a *tarpit*)
must not hold up the round: then no round could start after the deadline and end before
the close, and one miner would leave the window unjudged for everyone (the lead's empty
record stops training). So each miner's lookup is a task of its own that outlives the
round that started it: a round waits at most ``round_seconds`` for the lookups it
started, takes every one that has finished, and starts no second lookup for a miner
whose last one is still running.
Lookups still running when their window closes are abandoned (the miner is ``missing``,
a transient fault, never blamed as invalid). Downloads share
:data:`MAX_CONCURRENT_FETCHES` slots (one read chunk of memory each), handed out by the
validator's standing of each miner (:mod:`~gauntlet.node.download_slots`), and each is
cut off after :func:`~gauntlet.node.peer_reads.download_seconds`, so stalled downloads
hold a slot only briefly and never ahead of miners that have earned a standing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gauntlet.chain.base import ChainError
from gauntlet.node import peer_reads
from gauntlet.node.arrivals import Seen, WindowArrivals
from gauntlet.node.download_slots import PrioritySlots
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

MAX_CONCURRENT_FETCHES = 16  # downloads at once (each streams to the spool: one chunk in memory)
# How long a round waits for lookups when the validator does not say (tests, benchmarks).
DEFAULT_ROUND_SECONDS = 1.0
# A chain outage this long (in blocks) during a window's uploads spoils the window: miners
# need the chain to learn a window, and after 2 blocks without it an honest one may miss the
# deadline. One lost poll (a fraction of a block) does not.
MIN_OUTAGE_BLOCKS = 2
KEEP_WINDOWS = 4  # windows of observations kept in memory


def round_seconds_for(timeline: Timeline, block_seconds: float) -> float:
    """Half the grace between the deadline and the close, in seconds: a round that starts
    at the deadline and waits this long still ends before the close, with room for the
    head reads around it (never under 0.1 s: a zero grace leaves no room at all)."""
    return max(0.1, timeline.grace_blocks * block_seconds / 2)


class Observer:
    """Keeps a :class:`WindowArrivals` per window; :meth:`closed` waits for one to close."""

    def __init__(
        self,
        rt: Runtime,
        timeline: Timeline,
        poll_seconds: float,
        spool: Spool | None = None,
        round_seconds: float = DEFAULT_ROUND_SECONDS,
    ) -> None:
        """``round_seconds``: the longest a round waits for miners' lookups; a validator
        passes half its grace (:func:`round_seconds_for`), so a round that starts at the
        deadline ends before the close however slow a miner's server is."""
        self.rt = rt
        self.round_seconds = round_seconds
        self._lookups: dict[tuple[int, int], asyncio.Task[Seen | None]] = {}  # (window, uid)
        self.spool = Spool() if spool is None else spool
        self.timeline = timeline
        self.poll_seconds = poll_seconds
        self.windows: dict[int, WindowArrivals] = {}
        self.first_window: int | None = None  # first window observed since this start
        self._changed = asyncio.Event()
        self._downloads = PrioritySlots(MAX_CONCURRENT_FETCHES)
        # uid -> its claim on a download slot when they are short (the validator sets its
        # standing: :meth:`gauntlet.node.validator.Validator.standing`); equal: first come
        self.priority: Callable[[int], float] = lambda uid: 0.0
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
        # Wait (a bounded time) for this round's own lookups only: one a stalling server
        # still holds from an earlier round has cost that round its wait already.
        new = [task for w in windows for task in self._start_lookups(w, miners, started)]
        if new:
            await asyncio.wait(new, timeout=self.round_seconds)
        finds = {w: self._finished_lookups(w) for w in windows}
        ended = await chain.current_block()
        for window, found in finds.items():
            self._arrivals(window).settle_round(found, started, ended)
        for window, arrivals in self.windows.items():
            if ended >= arrivals.close_block and not arrivals.closed:
                arrivals.close()
            if arrivals.closed:
                self._abandon_lookups(window)
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
        for task in self._lookups.values():  # lookups a stalling server still holds
            task.cancel()
        self._lookups.clear()
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

    def _start_lookups(
        self, window: int, miners: Sequence[Peer], head: int
    ) -> list[asyncio.Task[Seen | None]]:
        """A lookup of each miner's upload for ``window``, unless its last one still runs;
        the lookups started."""
        known = self._arrivals(window).accepted
        started = []
        for peer in miners:
            if peer.store is not None and (window, peer.uid) not in self._lookups:
                task = asyncio.create_task(
                    self._look(window, peer, known.get(peer.uid), head),
                    name=f"observe-{window}-{peer.uid}",
                )
                self._lookups[(window, peer.uid)] = task
                started.append(task)
        return started

    def _finished_lookups(self, window: int) -> dict[int, Seen]:
        """The finds of ``window``'s lookups that have finished (each taken once)."""
        found = {}
        for key in [k for k, task in self._lookups.items() if k[0] == window and task.done()]:
            seen = self._lookups.pop(key).result()  # _look turns peer faults into None
            if seen is not None:
                found[seen.uid] = seen
        return found

    def _abandon_lookups(self, window: int) -> None:
        """Cancel ``window``'s lookups still running at its close: their miner's server did
        not answer in time, a transient fault (``missing``)."""
        arrivals = self.windows[window]
        for key in [k for k in self._lookups if k[0] == window]:
            task = self._lookups.pop(key)
            if task.done():
                continue
            task.cancel()
            if key[1] not in arrivals.accepted:
                arrivals.faults[key[1]] = "timeout"
            METRICS.error("observe_timeout")

    async def _look(self, window: int, peer: Peer, known: Seen | None, head: int) -> Seen | None:
        """The peer's current version for ``window`` (reusing a known one, or stamped with
        ``head``, the starting head of the round that began this lookup), or None."""
        if peer.store is None:
            return None
        key = contribution_key(window, peer.hotkey)
        arrivals = self._arrivals(window)
        max_bytes = self.rt.limits.max_bytes
        try:
            self.requests += 1
            info = await peer.store.head(key)
            if known is not None and known.etag == info.etag:
                return known
            async with self._downloads.held(self.priority(peer.uid)):
                self.requests += 1
                with METRICS.download("contribution") as transfer:
                    got, sealed = await peer_reads.within(
                        self.spool.fetch(
                            peer.store,
                            key,
                            self.spool.path_for(window, peer.uid, info.etag),
                            max_bytes=max_bytes,
                            if_match=info.etag or None,
                            hotkey=peer.hotkey,
                            window=window,
                            netuid=self.rt.config.chain.netuid,
                        ),
                        peer_reads.download_seconds(max_bytes),
                    )
                    transfer.nbytes = got.size
        except ObjectNotFound:
            arrivals.faults.pop(peer.uid, None)
            return None
        except PreconditionFailed:
            return None  # replaced between HEAD and GET: the next round sees the new one
        except StorageError as exc:  # a stalling server's ReadTimedOut: next round asks again
            arrivals.faults[peer.uid] = exc.reason
            if isinstance(exc, peer_reads.ReadTimedOut):
                METRICS.error("observe_timeout")
            elif not is_transient(exc):
                log.debug("uid %d: cannot read its upload: %s", peer.uid, exc)
            return None
        except ProtocolError as exc:
            return Seen(peer.uid, peer.hotkey, info.etag, head, error=str(exc))
        if sealed.header.uid != peer.uid:
            return Seen(peer.uid, peer.hotkey, info.etag, head, error="seal names another uid")
        arrivals.faults.pop(peer.uid, None)
        return Seen(peer.uid, peer.hotkey, info.etag, head, sealed=sealed)
