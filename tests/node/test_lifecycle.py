"""Outage retries: a node resumes within a few seconds of the chain coming back."""

from __future__ import annotations

import asyncio
import time

import pytest

from gauntlet.chain.base import ChainUnavailable
from gauntlet.node.lifecycle import MAX_OUTAGE_PAUSE_SECONDS, outage_pause, retry_transient


def test_pause_never_exceeds_a_few_seconds_however_long_the_outage() -> None:
    # A 30 s pause left nodes idle up to 30 s after the chain had returned.
    assert MAX_OUTAGE_PAUSE_SECONDS <= 5.0
    assert max(outage_pause(attempt) for attempt in range(10_000)) == MAX_OUTAGE_PAUSE_SECONDS


def test_pauses_grow_from_a_short_first_one() -> None:
    pauses = [outage_pause(attempt) for attempt in range(10)]
    assert pauses == sorted(pauses) and pauses[0] <= 1.0


def test_a_step_is_retried_until_the_chain_is_back() -> None:
    failures = [ChainUnavailable("connection refused")]

    async def step(value: int) -> int:
        if failures:
            raise failures.pop()
        return value

    started = time.monotonic()
    assert asyncio.run(retry_transient(step, 7)) == 7
    assert time.monotonic() - started < outage_pause(0) + 1.0


def test_other_errors_are_not_retried() -> None:
    async def step() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        asyncio.run(retry_transient(step))
