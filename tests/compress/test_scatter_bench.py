"""bench/scatter_determinism.py compares the aggregate's per-peer fold with the one-call
scatters it could use instead, bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scatter_determinism.py"


def test_the_fold_is_its_own_reference_and_every_alternative_is_compared() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cpu", "--rows", "16", "--peers", "3"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["peers_rows_chunk_k"] == [3, 16, 4096, 54]
    fold = report["fold"]
    assert fold["bitwise_fold"] and fold["repeatable"] and fold["max_abs_diff_from_fold"] == 0
    for name in ("index_put_acc", "index_add", "index_add_deterministic_mode"):
        assert report[name]["ms"] > 0 and isinstance(report[name]["bitwise_fold"], bool), name
    assert report["machine"]["device"] == "cpu"
