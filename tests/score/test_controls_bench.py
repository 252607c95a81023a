"""bench/controls.py compares the two control designs on the same updates and prints them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_controls_bench_prints_both_designs_on_the_same_miners(stdlib_dataset_dir: Path) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "controls.py"), "--trials", "2",
            "--honest", "4", "--wrong", "1", "--warm-steps", "0", "--steps", "3",
            "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "controls" and "cpu_model" in report["machine"]
    designs = report["advantage"]
    assert set(designs) == {"every batch", "shared out"}
    every, shared = designs["every batch"], designs["shared out"]
    # both designs score the same miners (those with a control), from one set of measurements
    assert every["honest"]["n"] == shared["honest"]["n"] > 0
    assert every["wrong"]["n"] == shared["wrong"]["n"] > 0
    assert 1 <= report["controls_per_miner"] <= 4
    # from a fresh model, training on its own pages helps them beyond any control
    assert every["honest"]["mean"] > 0 and shared["honest"]["mean"] > 0
