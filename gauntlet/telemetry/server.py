"""The node's HTTP side door: Prometheus ``/metrics`` plus whatever read-only pages a node adds.

It runs on the node's own event loop (aiohttp), so a scrape sees the metrics
between two statements of the window loop, never half-updated.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


class TelemetryError(RuntimeError):
    """The server could not start (address in use, bad host); the message says which."""


def metrics_handler(registry: CollectorRegistry):
    async def handle(request: web.Request) -> web.Response:
        # Prometheus asks for OpenMetrics or the classic text format; answer in kind.
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    return handle


class TelemetryServer:
    """``/metrics`` on ``host:port`` (0: a free port); ``routes`` add pages, e.g. a status page."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        routes: Sequence[web.RouteDef] = (),
        index: str = "gauntlet node: Prometheus metrics at /metrics\n",
    ) -> None:
        self.host, self.port = host, port
        app = web.Application()
        app.router.add_get("/metrics", metrics_handler(registry))
        app.router.add_routes(routes)
        if not any(r.path == "/" for r in routes):
            app.router.add_get("/", _text(index))
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def url(self) -> str:
        """Base URL once started, e.g. ``http://127.0.0.1:9100``."""
        return base_url(self.host, self.port)

    async def start(self) -> TelemetryServer:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise TelemetryError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        await self._runner.cleanup()


def _text(body: str):
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=body)

    return handle


def base_url(host: str, port: int) -> str:
    """How a client on this machine reaches a server bound to ``host:port``."""
    if host in ("", "0.0.0.0", "::"):  # bound to every interface: loopback is one of them
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel just had free (a server binds each a moment later)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:  # all held open at once, so no port is handed out twice
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
