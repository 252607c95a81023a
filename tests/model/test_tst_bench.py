"""bench/tst.py runs both arms and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tst_bench_prints_both_arms_with_the_switch(stdlib_dataset_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tst.py"), "--steps", "6", "--seeds", "0",
         "--eval-every", "3", "--ratio", "0.5", "--dataset-dir", str(stdlib_dataset_dir)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert {"cpu_model", "torch", "device"} <= set(report["machine"])
    run = report["runs"]["0"]
    assert run["plain"]["switch_step"] is None and run["tst"]["switch_step"] == 3
    assert set(run["tst"]["tokens_per_s"]) == {"superposition", "plain"}
    plain, tst = run["plain"]["curve"], run["tst"]["curve"]
    assert [c["step"] for c in tst] == [0, 3, 6] and [c["step"] for c in plain] == [0, 3, 6]
    assert plain[0]["val_loss"] == tst[0]["val_loss"]  # same initial weights, same batches
    # a superposition step reads bag times the tokens of a plain one, at the same FLOPs
    assert tst[1]["tokens"] == 4 * plain[1]["tokens"] and tst[1]["flops"] == plain[1]["flops"]
    assert report["summary"]["superposition_tokens_per_s_over_plain"] > 0
