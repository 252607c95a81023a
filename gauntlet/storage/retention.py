"""Retention: delete a node's own artifacts from windows nobody will read again."""

from __future__ import annotations

import asyncio

from gauntlet.storage.base import ObjectStore
from protocol.keys import window_of_key

_DELETE_CONCURRENCY = 16


async def delete_older_than(store: ObjectStore, prefix: str, keep_from_window: int) -> int:
    """Delete keys under ``prefix`` whose window is < ``keep_from_window``; return how many.

    Keys that carry no window (``window_of_key`` is None) are kept: they are not
    per-window artifacts. Keys are collected before deleting, so pagination
    never runs over a listing that is shrinking under it.
    """
    doomed = []
    async for info in store.list(prefix):
        window = window_of_key(info.key)
        if window is not None and window < keep_from_window:
            doomed.append(info.key)
    gate = asyncio.Semaphore(_DELETE_CONCURRENCY)

    async def delete(key: str) -> None:
        async with gate:
            await store.delete(key)

    await asyncio.gather(*(delete(key) for key in doomed))
    return len(doomed)
