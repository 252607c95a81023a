"""Download slots go to the best-standing waiter; equals in the order they asked."""

from __future__ import annotations

import asyncio

import pytest

from gauntlet.node.download_slots import PrioritySlots


async def _contend(waiters: list[tuple[str, float]], cancel: str = "") -> tuple[list[str], int]:
    """One slot held while ``waiters`` (name, priority) queue for it in this order; the one
    named ``cancel`` gives up; then the holder lets go. The order the others got the slot
    in, and the free slots left once all are done."""
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
    tasks = {name: asyncio.create_task(waiter(name, priority)) for name, priority in waiters}
    await asyncio.sleep(0)
    if cancel:
        tasks[cancel].cancel()
    release.set()
    await asyncio.gather(first, *(t for name, t in tasks.items() if name != cancel))
    if cancel:
        with pytest.raises(asyncio.CancelledError):
            await tasks[cancel]
    return granted, slots.free


def test_a_freed_slot_goes_to_the_highest_priority_waiter_then_first_come() -> None:
    waiters = [("sybil-a", 0.0), ("earner", 5.0), ("newcomer", 1.0), ("earner-2", 5.0),
               ("sybil-b", 0.0)]  # fmt: skip
    granted, free = asyncio.run(_contend(waiters))
    assert granted == ["earner", "earner-2", "newcomer", "sybil-a", "sybil-b"] and free == 1


def test_a_cancelled_waiter_takes_no_slot_with_it() -> None:
    granted, free = asyncio.run(_contend([("gone", 9.0), ("stays", 0.0)], cancel="gone"))
    assert granted == ["stays"] and free == 1


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
