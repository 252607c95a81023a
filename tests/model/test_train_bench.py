"""bench/train.py --quick (the train step of bench/gpu.sh's dry run) prints the JSON it
promises."""

from __future__ import annotations

import json
from pathlib import Path


def test_quick_train_bench_prints_tokens_per_second_and_mfu(gpu_dry_run: Path) -> None:
    report = json.loads((gpu_dry_run / "train.json").read_text())
    assert {"platform", "cpu_model", "torch", "device", "device_name"} <= set(report["machine"])
    assert report["peak"]["flops"] > 0 and report["peak"]["source"].startswith("measured")
    assert "6*N + 12*L*d*T" in report["flops_formula"]
    (row,) = report["results"]
    assert row["config"] == "tiny" and row["dtype"] == "fp32"
    assert row["tokens_per_s"] > 0 and row["flops_per_token"] > 6 * row["non_embedding_params"]
    assert 0 < row["mfu"] < 1.5  # measured CPU peak: a small model may not beat one big matmul
