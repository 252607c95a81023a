"""The localnet releases its held chain only once every node answers on its metrics URL."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest

from gauntlet.localnet.faults import AimedCrashes
from gauntlet.localnet.processes import ProcessGroup
from gauntlet.localnet.release import NodesNotUp, release_file, release_when_up
from gauntlet.telemetry import free_ports


def _serve_after(seconds: float, port: int, directory: Path) -> list[str]:
    """A node that takes ``seconds`` to start, then serves ``directory`` (its /metrics)."""
    code = (
        f"import time, functools, http.server; time.sleep({seconds}); "
        f"handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={str(directory)!r}); "
        f"http.server.HTTPServer(('127.0.0.1', {port}), handler).serve_forever()"
    )
    return [sys.executable, "-c", code]


def test_the_chain_is_released_when_the_slowest_node_serves_its_metrics(tmp_path: Path) -> None:
    (tmp_path / "metrics").write_text("up 1\n")
    group = ProcessGroup(tmp_path)
    fast, slow = free_ports(2)
    try:
        group.start("fast", _serve_after(0.0, fast, tmp_path))
        started = group.start("slow", _serve_after(2.0, slow, tmp_path))
        urls = {
            name: f"http://127.0.0.1:{port}/metrics"
            for name, port in (("fast", fast), ("slow", slow))
        }
        assert not release_file(tmp_path).exists()
        release_when_up(group, tmp_path, urls, AimedCrashes.parse("nobody", ""))
        assert release_file(tmp_path).exists()
        # released only once the slow one answered (it sleeps 2 s before it listens)
        with urllib.request.urlopen(urls["slow"], timeout=2) as response:
            assert response.status == 200
        assert started.process.poll() is None
    finally:
        group.stop_all()


def test_a_node_that_dies_while_starting_fails_the_run_and_releases_nothing(
    tmp_path: Path,
) -> None:
    group = ProcessGroup(tmp_path)
    (port,) = free_ports(1)
    try:
        group.start("broken", [sys.executable, "-c", "raise SystemExit(3)"])
        with pytest.raises(NodesNotUp, match="broken exited \\(code 3\\) while starting"):
            release_when_up(
                group, tmp_path, {"broken": f"http://127.0.0.1:{port}/metrics"},
                AimedCrashes.parse("nobody", ""),
            )  # fmt: skip
        assert not release_file(tmp_path).exists()
    finally:
        group.stop_all()
