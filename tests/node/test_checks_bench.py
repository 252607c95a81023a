"""bench/checks.py prints what the checks cost per contribution and checksums of what they
measured (the figures in docs/validator.md come from it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(contributions: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "checks.py"), "--subset", "layers.0.attention.wk.,layers.0.attention.wv.",
         "--contributions", str(contributions), "--repeats", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_the_checks_bench_counts_operations_that_do_not_grow_with_the_miners() -> None:
    one, four = _run(1), _run(4)
    for report in (one, four):
        assert report["bench"] == "checks" and report["parameters"] == 2
        assert report["seconds_per_contribution"] > 0
        assert report["scalar_reads_per_contribution"] == 0
        assert {"cpu_model", "device", "torch"} <= set(report["machine"])
    # read together, four contributions cost far fewer operations each than one alone
    assert four["aten_calls_per_contribution"] < 0.5 * one["aten_calls_per_contribution"]
    assert four["norms"][0] == one["norms"][0]  # the same first payload, the same bits
