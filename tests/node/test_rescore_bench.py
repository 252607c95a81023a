"""bench/rescore.py writes a journal the validator's way and times `gauntlet rescore` on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_rescore_bench_replays_its_journal_exactly_and_prints_its_costs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rescore.py"), "--miners", "12", "--windows", "6",
         "--evaluated", "0.5"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert (result["miners"], result["windows"]) == (12, 6)
    assert result["journal_bytes"] > 1000 and result["rescore_s"] > 0
    assert result["rescore_peak_rss_mb"] > 10  # the child's, not this process's
    assert result["largest_weight_difference"] == 0.0  # the settings it was written with
    assert result["machine"]["cpu_count"] >= 1
