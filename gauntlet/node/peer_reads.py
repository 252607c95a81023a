"""Time limits on reads from miners' buckets.

A miner's bucket server is adversarial. One that holds a request open (a *tarpit*) must
cost a reader no more than a bounded wait, or it holds up whatever waits on it: an
observation round, the reveal phase, a record's payloads. The limits sit far above what
any bucket provider needs, so only a stalling server ever meets them, and meeting one is
a transient fault (the miner is ``missing``; nobody is blamed as ``invalid``).

The storage clients have their own timeouts (the S3 store's read timeout is 60 s), sized
for a node's own bucket and for checkpoints; these are the tighter ones for the reads a
window's schedule depends on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from gauntlet.storage.base import StoreUnavailable

T = TypeVar("T")

# A small object (a reveal, a HEAD): every provider answers well inside this.
SMALL_READ_SECONDS = 2.0
# A payload download: a fixed allowance for the request, then at least this rate.
DOWNLOAD_ALLOWANCE_SECONDS = 2.0
DOWNLOAD_FLOOR_BYTES_PER_SECOND = 8 * 1024 * 1024


def download_seconds(max_bytes: int) -> float:
    """How long one download of at most ``max_bytes`` may take before it is cut off."""
    return DOWNLOAD_ALLOWANCE_SECONDS + max_bytes / DOWNLOAD_FLOOR_BYTES_PER_SECOND


class ReadTimedOut(StoreUnavailable):
    """A miner's server did not answer within the limit (transient: retried where reads
    are; the fault slug ``timeout`` makes the miner ``missing``)."""

    reason = "timeout"


async def within(read: Awaitable[T], seconds: float) -> T:
    """``read``, or :class:`ReadTimedOut` if it has not answered in ``seconds``."""
    try:
        return await asyncio.wait_for(read, seconds)
    except TimeoutError:
        raise ReadTimedOut(f"no answer in {seconds:g} s") from None
