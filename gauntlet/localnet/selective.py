"""Selective serving: a miner whose bucket answers the validators and starves the followers.

A peer-set member's payload is read twice: by validators while they judge its window (the
upload before the observation closes, the key before the reveal closes), and by every node
that did not observe the window (miners, a node catching up) after the lead's record names
it. A member that serves the first readers and holds the second (every read of its upload
once the observation has closed) keeps its score, since every validator judged it, while
no follower can reproduce the record: each one diverges
and trains on a stale model until the lead's next checkpoint, and its contributions are
``desynced`` meanwhile. Readers share the public read key, so the server tells them apart
by time alone, which it controls.

:class:`SelectiveServer` answers ``HEAD`` and ``GET`` (ranges and ``If-Match`` included)
from the miner's real bucket, holding the requests :class:`SelectiveServe` tells it to.
The defence is the lead's mirror
(:mod:`gauntlet.node.mirrors`): followers read the lead's copy and never ask the author.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from aiohttp import web

from gauntlet.localnet.tarpit import HOLD_SECONDS, commit_server
from gauntlet.node.behaviour import Honest
from gauntlet.storage.base import ObjectNotFound, ObjectStore, StorageError
from protocol.keys import window_of_key

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

BUCKET = "selective"
MAX_OBJECT_BYTES = 1 << 30
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
)


class SelectiveServer:
    """An S3 server on loopback for one bucket, backed by ``store``: ``HEAD`` and ``GET``
    of an object are answered from it unless ``held(key)`` says to hold the request (then
    it stays open until the server closes or :data:`HOLD_SECONDS` pass)."""

    def __init__(self, store: ObjectStore, held: Callable[[str], Awaitable[bool]]) -> None:
        self.store = store
        self.held = held
        self.holding = 0  # requests held open so far
        self._closing = asyncio.Event()  # answers the held requests (503) at close
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> str:
        """Serve on a free port; the endpoint URL."""
        app = web.Application()
        app.router.add_route("*", "/{bucket}/{key:.+}", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, 0).start()
        return f"http://{host}:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if request.method not in ("HEAD", "GET"):
            return web.Response(status=501)
        if await self.held(key):
            self.holding += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), HOLD_SECONDS)
            return web.Response(status=503)
        try:
            info = await self.store.head(key)
        except ObjectNotFound:
            body = b"" if request.method == "HEAD" else NO_SUCH_KEY
            return web.Response(status=404, body=body, content_type="application/xml")
        except StorageError:
            return web.Response(status=503)
        headers = {
            "ETag": f'"{info.etag}"',
            "Last-Modified": formatdate(info.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        if request.method == "HEAD":  # the body is not sent: it sets the Content-Length
            return web.Response(status=200, body=bytes(info.size), headers=headers)
        pinned = request.headers.get("If-Match")
        if pinned is not None and pinned.strip('"') != info.etag:
            return web.Response(status=412)
        data = await self.store.get(key, max_bytes=MAX_OBJECT_BYTES)
        wanted = _RANGE.match(request.headers.get("Range", ""))
        if wanted is None:
            return web.Response(status=200, body=data, headers=headers)
        start = int(wanted.group(1))
        if start >= len(data):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        end = min(int(wanted.group(2) or len(data) - 1), len(data) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return web.Response(status=206, body=data[start : end + 1], headers=headers)


class SelectiveServe(Honest):
    """Trains and uploads like an honest miner (so it earns a peer-set place), but commits
    a :class:`SelectiveServer` in front of its bucket that holds every read of a window's
    upload once the window's observation has closed: every validator has its copy by then
    (and still gets the reveal), and the readers left are the followers fetching what the
    lead's record names."""

    name = "selective-serve"

    def __init__(self) -> None:
        self.server: SelectiveServer | None = None

    async def before_upload(self, rt: Runtime, window: int) -> None:
        if self.server is not None:
            return

        async def held(key: str) -> bool:
            named = window_of_key(key)
            if named is None or "/contributions/" not in key:
                return False
            observation_close = (await rt.timeline()).observation_close(named)
            return await rt.chain.current_block() >= observation_close

        self.server = SelectiveServer(rt.store, held)
        endpoint = await self.server.start()
        await commit_server(rt, endpoint, BUCKET)
        log.warning("selective-serve: readers now meet %s", endpoint)
