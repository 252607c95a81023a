"""Clocks for the simulated chain: wall time in service, a hand-driven one in unit tests.

The chain's block is derived from time, never counted: ``block = floor((now - genesis) /
block_time)``, so a restarted service resumes the same block sequence from the stored genesis.
"""

from __future__ import annotations

import math
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to: rules become testable without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds


def block_at(now: float, genesis: float, block_time: float) -> int:
    # A tiny epsilon keeps exact multiples (ManualClock advancing by k*block_time) from
    # landing on block-1 through float rounding.
    return max(0, math.floor((now - genesis) / block_time + 1e-9))
