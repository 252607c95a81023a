"""The selective-serve behaviour's server, read with the S3 client every node uses for a
peer's bucket: it answers like the miner's bucket until it decides to hold a key's reads,
then holds them (the followers' reads of a recorded payload, in the scenario)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gauntlet.localnet.selective import BUCKET, SelectiveServer
from gauntlet.node import peer_reads
from gauntlet.storage.base import ObjectNotFound
from gauntlet.storage.factory import store_from_commitment
from gauntlet.storage.filesystem import FilesystemStore
from protocol.commitment import S3Commitment
from protocol.keys import contribution_key, reveal_key

HOTKEY = "5Selective"
UPLOAD = contribution_key(3, HOTKEY)
REVEAL = reveal_key(3, HOTKEY)


def test_it_serves_like_a_bucket_until_it_holds(tmp_path: Path) -> None:
    backing = FilesystemStore(tmp_path, "bucket")
    closed: set[str] = set()

    async def held(key: str) -> bool:
        return key in closed

    async def scenario() -> None:
        body = bytes(range(256)) * 40
        await backing.put(UPLOAD, body)
        await backing.put(REVEAL, b'{"key": "k"}')
        server = SelectiveServer(backing, held)
        endpoint = await server.start()
        reader = store_from_commitment(
            S3Commitment(bucket=BUCKET, endpoint=endpoint, access_key="r", secret_key="r")
        )
        try:
            info = await reader.head(UPLOAD)
            assert info.size == len(body) and info.etag
            assert await reader.get(UPLOAD, max_bytes=1 << 20) == body
            assert await reader.get(UPLOAD, max_bytes=1 << 20, if_match=info.etag) == body
            assert await reader.get_range(UPLOAD, 100, 50) == body[100:150]
            assert await reader.get_range(UPLOAD, len(body), 10) == b""
            with pytest.raises(ObjectNotFound):
                await reader.get(contribution_key(4, HOTKEY), max_bytes=1 << 20)
            with pytest.raises(ObjectNotFound):
                await reader.head(contribution_key(4, HOTKEY))

            closed.add(UPLOAD)  # the window's reveals have closed: its readers now wait
            with pytest.raises(peer_reads.ReadTimedOut):
                await peer_reads.within(reader.get(UPLOAD, max_bytes=1 << 20), 0.5)
            assert server.holding == 1
            assert await reader.get(REVEAL, max_bytes=1 << 20) == b'{"key": "k"}'
        finally:
            await server.close()  # first: it drops the held connection the reader waits on
            await reader.close()

    asyncio.run(scenario())
