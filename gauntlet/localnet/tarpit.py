"""The tarpit: a miner whose bucket server holds readers' requests open.

The cheapest attack on a schedule: it costs one registration and no training. Before
validators' rounds had time limits, one tarpit held every observation round open, so no
round could start after a window's deadline and end before its close: no window was ever
judged, the lead published empty records, and the network stopped training.

The attack that knows the rule (rounds wait at most half the grace; a miner with a lookup
still running gets no second one) answers the HEAD at once with a fresh version and holds
the download open instead, to keep validators' download slots busy (``mode = "get"``);
several of them are sybils of one operator. Both must leave the honest miners judged in
every window and earn nothing themselves.

:class:`TarpitServer` is also what the unit tests point a real S3 client at.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from gauntlet.node.behaviour import Honest
from protocol.commitment import S3Commitment, encode_commitment

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

HOLD_SECONDS = 3600.0  # a held request is answered (503) only after this, or at close
MODES = ("head", "get")
VERSION_BYTES = 4096  # the size each HEAD of a ``get`` tarpit announces


class TarpitServer:
    """An HTTP server on loopback that speaks just enough S3 for its ``mode``: ``head``
    holds every request open; ``get`` answers each HEAD at once with a new version (a
    fresh ETag, as if re-uploaded) and holds every other request open."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"tarpit mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.held = 0  # requests held open so far
        self._versions = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> str:
        """Serve on a free port; the endpoint URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving; every held connection is closed (its reader gets an error)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "get" and request.method == "HEAD":
            return web.Response(  # a HEAD's body is not sent; it sets the Content-Length
                status=200,
                body=bytes(VERSION_BYTES),
                headers={
                    "ETag": f'"tarpit-{next(self._versions)}"',
                    "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                    "Content-Type": "application/octet-stream",
                },
            )
        self.held += 1
        await asyncio.sleep(HOLD_SECONDS)
        return web.Response(status=503)


class Tarpit(Honest):
    """Commits a bucket on its own :class:`TarpitServer` (``mode``: ``head`` or ``get``),
    so every reader of its uploads, reveals or payloads meets a server that never answers.
    It trains and uploads like an honest miner, to its real bucket, which nobody reads."""

    name = "tarpit"

    def __init__(self, mode: str = "head") -> None:
        self.server = TarpitServer(mode)
        self.committed = False

    async def before_upload(self, rt: Runtime, window: int) -> None:
        if self.committed:
            return
        endpoint = await self.server.start()
        await commit_server(rt, endpoint, "tarpit")
        self.committed = True
        log.warning("tarpit (%s): readers now meet %s", self.server.mode, endpoint)


async def commit_server(rt: Runtime, endpoint: str, bucket: str) -> None:
    """Commit ``bucket`` on the S3 server at ``endpoint`` as this miner's bucket: from then
    on every reader of its uploads and reveals asks that server."""
    encoded = encode_commitment(
        S3Commitment(bucket=bucket, endpoint=endpoint, access_key=bucket, secret_key=bucket)
    )
    await rt.chain.commit(encoded)
    if rt.lease is not None:  # its own node must not take the new commitment for a rival
        rt.lease.commitment = encoded
