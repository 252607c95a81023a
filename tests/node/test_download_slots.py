"""Download slots go to the best-standing waiter; equals in the order they asked."""

from __future__ import annotations

import asyncio

import pytest

from gauntlet.node.download_slots import PrioritySlots


def test_a_freed_slot_goes_to_the_highest_priority_waiter_then_first_come() -> None:
    async def run() -> list[str]:
        slots = PrioritySlots(1)
        granted: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with slots.held(0.0):
                await release.wait()

        async def waiter(name: str, priority: float) -> None:
            async with slots.held(priority):
                granted.append(name)

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiters = [
            asyncio.create_task(waiter(name, priority))
            for name, priority in [("sybil-a", 0.0), ("earner", 5.0), ("newcomer", 1.0),
                                   ("earner-2", 5.0), ("sybil-b", 0.0)]
        ]  # fmt: skip
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *waiters)
        assert slots.free == 1
        return granted

    assert asyncio.run(run()) == ["earner", "earner-2", "newcomer", "sybil-a", "sybil-b"]


def test_a_cancelled_waiter_takes_no_slot_with_it() -> None:
    async def run() -> tuple[list[str], int]:
        slots = PrioritySlots(1)
        granted: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with slots.held():
                await release.wait()

        async def waiter(name: str, priority: float) -> None:
            async with slots.held(priority):
                granted.append(name)

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        gone = asyncio.create_task(waiter("gone", 9.0))
        stays = asyncio.create_task(waiter("stays", 0.0))
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        await asyncio.gather(first, stays)
        with pytest.raises(asyncio.CancelledError):
            await gone
        return granted, slots.free

    assert asyncio.run(run()) == (["stays"], 1)


def test_slots_are_shared_up_to_their_number_without_waiting() -> None:
    async def run() -> int:
        slots = PrioritySlots(3)
        inside = 0
        peak = 0

        async def use() -> None:
            nonlocal inside, peak
            async with slots.held():
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(use() for _ in range(7)))
        return peak

    assert asyncio.run(run()) == 3
    with pytest.raises(ValueError):
        PrioritySlots(0)
