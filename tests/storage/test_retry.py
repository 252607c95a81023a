"""retry.py: transient failures are retried a bounded number of times with jitter;
answers (not found, forbidden, ...) are not retried."""

from __future__ import annotations

import pytest
from storage_helpers import run

from gauntlet.storage.base import AccessDenied, ObjectNotFound, StoreUnavailable, Throttled
from gauntlet.storage.retry import RetryPolicy, with_retries


class FlakyCall:
    """Fails with ``error`` ``failures`` times, then returns "ok"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


class FakeClock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=1.5)


@pytest.mark.parametrize("error", [Throttled("slow down"), StoreUnavailable("503")])
def test_transient_failures_are_retried_until_success(error: Exception) -> None:
    call, clock = FlakyCall(3, error), FakeClock()
    assert run(with_retries(call, POLICY, sleep=clock.sleep, rand=lambda: 1.0)) == "ok"
    assert call.calls == 4
    assert clock.sleeps == [0.5, 1.0, 1.5]  # exponential, capped at max_delay


def test_retries_are_bounded_and_reraise_the_last_error() -> None:
    call, clock = FlakyCall(10, Throttled("slow down")), FakeClock()
    with pytest.raises(Throttled):
        run(with_retries(call, POLICY, sleep=clock.sleep, rand=lambda: 0.5))
    assert call.calls == POLICY.attempts
    assert len(clock.sleeps) == POLICY.attempts - 1


@pytest.mark.parametrize("error", [ObjectNotFound("k"), AccessDenied("k"), ValueError("bug")])
def test_answers_and_bugs_are_not_retried(error: Exception) -> None:
    call, clock = FlakyCall(1, error), FakeClock()
    with pytest.raises(type(error)):
        run(with_retries(call, POLICY, sleep=clock.sleep))
    assert call.calls == 1 and clock.sleeps == []


def test_jitter_spreads_delays_below_the_cap() -> None:
    delays = [POLICY.delay(retry=5, rand=r) for r in (0.0, 0.25, 0.999)]
    assert delays == sorted(delays) and all(0 <= d < POLICY.max_delay for d in delays)
    assert delays[0] == 0.0


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
