"""The HTTP server on a real loopback port: /metrics in both formats, pages, clear bind errors."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gauntlet.telemetry import NodeMetrics, TelemetryError, TelemetryServer, free_ports


async def _get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


def _serve_and_get(server: TelemetryServer, path: str, accept: str | None = None):
    async def run():
        await server.start()
        try:
            return await _get(server.url + path, accept)
        finally:
            await server.close()

    return asyncio.run(run())


def test_metrics_are_served_in_the_prometheus_text_format() -> None:
    metrics = NodeMetrics(CollectorRegistry())
    metrics.window.set(12)
    server = TelemetryServer("127.0.0.1", 0, metrics.registry)
    status, content_type, body = _serve_and_get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
    samples = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples["gauntlet_window"] == 12


def test_a_scraper_asking_for_openmetrics_gets_openmetrics() -> None:
    metrics = NodeMetrics(CollectorRegistry())
    server = TelemetryServer("127.0.0.1", 0, metrics.registry)
    _, content_type, body = _serve_and_get(server, "/metrics", "application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_without_pages_the_index_points_to_the_metrics() -> None:
    server = TelemetryServer("127.0.0.1", 0, CollectorRegistry())
    status, _, body = _serve_and_get(server, "/")
    assert status == 200 and "/metrics" in body


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = TelemetryServer("127.0.0.1", port, CollectorRegistry())
        with pytest.raises(TelemetryError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            asyncio.run(server.start())


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
