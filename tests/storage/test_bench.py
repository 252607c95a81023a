"""bench/storage.py --quick runs end to end and reports every store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_reports_all_stores_and_the_machine() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "storage.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    assert set(report["stores"]) == {"filesystem", "moto", "rclone"}
    assert {"platform", "cpu_count", "cpu_model", "python"} <= set(report["machine"])
    for figures in [report["raw_disk"], *report["stores"].values()]:
        assert all(value > 0 for value in figures.values())
