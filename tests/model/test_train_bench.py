"""bench/train.py --quick runs and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_train_bench_prints_tokens_per_second_and_mfu():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train.py"), "--quick", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert {"platform", "cpu_model", "torch", "device", "device_name"} <= set(report["machine"])
    assert report["peak"]["flops"] > 0 and report["peak"]["source"].startswith("measured")
    assert "6*N + 12*L*d*T" in report["flops_formula"]
    (row,) = report["results"]
    assert row["config"] == "tiny" and row["dtype"] == "fp32"
    assert row["tokens_per_s"] > 0 and row["flops_per_token"] > 6 * row["non_embedding_params"]
    assert 0 < row["mfu"] < 1.5  # measured CPU peak: a small model may not beat one big matmul
