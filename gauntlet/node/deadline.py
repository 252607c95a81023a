"""When a miner stops training so that its upload still lands before the window ends.

A miner's budget (``train.pages``) is what it trains when its hardware has time to spare. On
a host that slows down (a shared GPU, thermal throttling, a CPU localnet with more processes
than cores) the full budget can outlast the window, and a contribution finished after the
window ends is not uploaded: the whole window's work would be lost. So the miner trains its
pages in order, a page at a time, stops when the upload time it needs is all that is left,
and declares the prefix of pages it trained in full (validators accept any non-empty prefix
of the assignment, ``score.pages.check_declared_pages``): it is paid for what it processed.
Pure arithmetic here; the miner's loop feeds it measured seconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from gauntlet.score.average import moving_average

# Weight of the newest upload in the running estimate: follows a slower store within an
# upload or two, and one quick upload does not halve the reserve.
NEWEST_WEIGHT = 0.5


@dataclass(frozen=True)
class UploadTime:
    """Running estimate of the seconds from the end of training to the stored upload
    (compress, sign, seal, put); None until one was measured."""

    seconds: float | None = None

    def observed(self, seconds: float) -> UploadTime:
        if not math.isfinite(seconds) or seconds < 0:
            return self
        return UploadTime(moving_average(self.seconds, seconds, NEWEST_WEIGHT))


class Stopwatch:
    """Seconds spent inside ``with watch:`` blocks, summed: what a miner's own upload work
    takes (compress, sign, seal, save, put), apart from anything a behaviour waits for."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.monotonic() - self._started


def seconds_to_end(
    blocks_left: int, block_time: float, end_timestamp: float | None, now: float
) -> float:
    """Seconds until the window's end block is due, ``blocks_left`` blocks after the head
    block: the chain's expected time of that block (``end_timestamp``) less ``now``, kept
    within what the block count allows (the head block just begun, or nearly over) so that
    a host clock off by more than a block costs at most a block. Without a usable timestamp:
    as if the head block were nearly over."""
    latest = max(0.0, blocks_left * block_time)
    earliest = max(0.0, (blocks_left - 1) * block_time)
    if end_timestamp is None or not math.isfinite(end_timestamp):
        return earliest
    return min(latest, max(earliest, end_timestamp - now))


def training_seconds(
    seconds_to_end: float, upload: UploadTime, *, margin: float, block_time: float
) -> float:
    """Seconds of training that leave ``margin`` times the estimated upload time before the
    window ends (one block's time before any upload was measured); never negative."""
    reserve = block_time if upload.seconds is None else margin * upload.seconds
    return max(0.0, seconds_to_end - reserve)
