"""bench/observe.py with tiny sizes runs end to end and counts the observer's requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UIDS = 4


def test_tiny_observe_bench_reports_sealing_rates_and_round_requests() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "observe.py"),
            *("--sizes", "65536", "--uids", str(UIDS), "--repeats", "1"),
            *("--steady-rounds", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout)
    assert {"platform", "cpu_count", "cpu_model", "python"} <= set(report["machine"])
    (seal,) = report["seal"]
    rates = [value for name, value in seal.items() if name.endswith("_MBps")]
    assert len(rates) == 5 and all(rate > 0 for rate in rates)
    (poll,) = report["polling"]
    assert poll["accepted_after_first_round"] == UIDS
    assert poll["first_round"]["requests"] == 2 * UIDS  # a HEAD and a GET per upload
    assert poll["steady_round"]["requests"] == UIDS  # known versions: a HEAD each, no GET
    assert poll["first_round"]["bytes_downloaded"] >= UIDS * 65536
    assert poll["per_window"]["finney"]["gets_per_window"] == UIDS
