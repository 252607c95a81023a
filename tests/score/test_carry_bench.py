"""bench/carry.py measures what the error feedback carries into a burst miner's low windows:
each burst trains exactly what the steady miner of its pages trains, so the two differ only
by the residual they carry in."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.carry import pages_like  # noqa: E402


def test_pages_like_reads_a_gain_off_the_steady_curve() -> None:
    curve = {1: 0.1, 2: 0.3, 3: 0.4}
    assert pages_like(0.2, curve) == pytest.approx(1.5)
    assert pages_like(0.35, curve) == pytest.approx(2.5)
    assert pages_like(0.5, curve) == pytest.approx(4.0)  # beyond the curve: its last segment
    assert pages_like(0.2, {1: 0.1, 2: 0.3, 3: 0.3}) is None  # not increasing: noise, no reading


def test_the_carry_bench_pairs_each_burst_with_the_steady_miner_of_its_pages(
    stdlib_dataset_dir: Path,
) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "carry.py"), "--windows", "3", "--cycle", "1",
            "--skip", "0", "--eval-batches", "2", "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "carry" and "cpu_model" in report["machine"]
    first, low, full = report["gains"]
    # window 0: nobody carries a residual yet, and both bursts train what `steady 5` trains
    assert first["burst"] == first["burst, reset"] == first["steady 5"]
    # window 1 (low): the same 2-page training; the reset miner dropped its 5-page residual,
    # the other sends what it kept, so the two uploads, and their gains, differ
    assert low["burst"] != low["burst, reset"]
    assert set(report["phases"]) == {"full, first 2", "low, first 2"}
    assert report["phases"]["low, first 2"]["trained"] == 2
    assert set(report["run_pages_measured_like"]) == {"burst", "burst, reset"}
    assert full["steady 5"] != first["steady 5"]  # the model moved between windows


def test_bursts_measured_with_their_carry_still_earn_less_than_steady_work_per_page() -> None:
    """bench/rating_horizon.py's 5-window bursts, measured like the pages bench/carry.py read
    off a carrying miner's uploads in each phase (more in its low windows, less in the full
    ones after them), at the default memory: per page of average compute, under the honest
    3-page miners' rate; and the carry does lift them above the bursts measured without it."""
    from bench.rating_horizon import cycle
    from gauntlet.score.config import ScoringConfig

    config = ScoringConfig()
    runs = {
        carry: [cycle(config, 300, 8, 5, random.Random(seed), carry) for seed in range(3)]
        for carry in (False, True)
    }
    for key in ("5_and_1_vs_3_pages", "5_and_2_vs_3_pages"):
        without = sum(r[key] for r in runs[False]) / 3
        carried = sum(r[key] for r in runs[True]) / 3
        assert without < carried < 1.0, (key, without, carried)
