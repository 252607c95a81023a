"""bench/gpu.sh, the one prepared run of issue 18's GPU figures, works end to end: its dry
run (CPU, smoke sizes) writes every step's JSON and a timings line per step, all rc 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_script_dry_run_writes_every_benchmark(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_BENCH_DEVICE": "cpu",
        "GPU_BENCH_QUICK": "1",
        "GPU_BENCH_INSTALL": "0",  # never pip-install into the test environment
    }
    subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    timings = (tmp_path / "timings.txt").read_text().splitlines()
    assert [line.split()[:2] for line in timings] == [
        ["train", "rc=0"], ["validator", "rc=0"], ["codec", "rc=0"]
    ]  # fmt: skip
    for name, key in (("train", "results"), ("validator", "results"), ("codec", "real")):
        report = json.loads((tmp_path / f"{name}.json").read_text())
        assert report["bench"] == name and report[key], name
        assert report["machine"]["device"] == "cpu"
    assert "torch" in (tmp_path / "device.txt").read_text()
