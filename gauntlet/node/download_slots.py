"""A fixed number of download slots handed out by priority.

A validator downloads at most so many miners' uploads at once (each streams one chunk
through memory). Handed out first come, first served, the slots go to whoever asks
first, and miners whose servers hold downloads open (tarpits, docs/scoring.md) can be
many hotkeys that ask every round: each slot a tarpit holds returns to the queue only at
the download limit, and a long queue of them puts every honest download behind it. Handed
out by priority (the validator's current score of the miner), a freed slot goes to the
best-standing miner waiting, so sybils with nothing earned only ever wait behind miners
who have; among equals the order of asking stands.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PrioritySlots:
    """``size`` slots; :meth:`held` waits for one, higher ``priority`` first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot")
        self.free = size
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []  # (-priority, n, fut)
        self._order = itertools.count()

    @asynccontextmanager
    async def held(self, priority: float = 0.0) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: float) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled
                self._release()
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():  # a cancelled waiter's future is done: skip it
                future.set_result(None)
                return
        self.free += 1
