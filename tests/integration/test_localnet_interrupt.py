"""Ctrl-C stops the localnet cleanly: every process it started ends, and it says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from integration_helpers import alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigint_stops_every_child_process(tmp_path: Path, stdlib_dataset_dir: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gauntlet.cli", "localnet",
            "--localnet.run_dir", str(tmp_path), "--data.dataset_dir", str(stdlib_dataset_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*/logs/miner2.log")):  # every node has been started
            assert time.monotonic() < deadline, "localnet never started its miners"
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out
    assert "interrupted" in out
    (summary_path,) = tmp_path.glob("*/summary.json")
    pids = json.loads(summary_path.read_text())["pids"]
    assert len(pids) == 5  # chain, validator, 3 miners
    assert not [pid for pid in pids if alive(pid)]
