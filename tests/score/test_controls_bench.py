"""bench/controls.py compares the control designs on the same updates and prints them: the
two full-token designs, and the same measurements on half the batches ("two passes")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_controls_bench_prints_every_design_on_the_same_miners(stdlib_dataset_dir: Path) -> None:
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
    assert set(designs) == {"every batch", "shared out", "two passes"}
    every, shared, half = designs["every batch"], designs["shared out"], designs["two passes"]
    # both designs score the same miners (those with a control), from one set of measurements
    assert every["honest"]["n"] == shared["honest"]["n"] > 0
    assert every["wrong"]["n"] == shared["wrong"]["n"] > 0
    # the half-token design draws its controls from its own (half-measured) gains
    assert half["honest"]["n"] > 0
    assert 1 <= report["controls_per_miner"] <= 4
    # from a fresh model, training on its own pages helps them beyond any control
    assert every["honest"]["mean"] > 0 and shared["honest"]["mean"] > 0
    assert half["honest"]["mean"] > 0
