"""Bounded retries with full jitter: the one place storage retries live.

Only *transient* failures are retried (:class:`Throttled`, :class:`StoreUnavailable`;
the S3 error mapping turns 429/503/SlowDown, other 5xx and connection errors
into those). Everything else (not found, forbidden, too large, precondition)
is an answer, and repeating the request would only repeat the answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gauntlet.storage.base import StorageError, StoreUnavailable, Throttled

T = TypeVar("T")

TRANSIENT: tuple[type[StorageError], ...] = (Throttled, StoreUnavailable)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try; delays are in seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")

    def delay(self, retry: int, rand: float) -> float:
        """Full jitter (uniform in [0, cap)): spreads retrying clients apart so a
        throttled server is not hit again by all of them at the same instant."""
        cap = min(self.max_delay, self.base_delay * (2**retry))
        return rand * cap


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Await ``attempt()`` until it succeeds, raises a non-transient error, or
    ``policy.attempts`` tries are spent (the last transient error is re-raised).

    ``sleep`` and ``rand`` are seams for tests (a fake clock, fixed jitter).
    """
    for retry in range(policy.attempts):
        try:
            return await attempt()
        except TRANSIENT:
            if retry + 1 >= policy.attempts:
                raise
            await sleep(policy.delay(retry, rand()))
    raise AssertionError("unreachable: the loop returns or raises")
