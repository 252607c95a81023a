"""bench/gpu.sh, the one prepared run of issue 18's GPU figures, works end to end: its dry
run (CPU, smoke sizes) writes every step's JSON and a timings line per step, all rc 0.
(The run is the session fixture ``gpu_dry_run``; each benchmark's own test reads its JSON.)"""

from __future__ import annotations

import json
from pathlib import Path


def test_the_gpu_script_dry_run_writes_every_benchmark(gpu_dry_run: Path) -> None:
    timings = (gpu_dry_run / "timings.txt").read_text().splitlines()
    steps = ["codec", "codec-model", "validator", "checks", "train", "train-tuned"]
    assert [line.split()[:2] for line in timings] == [[s, "rc=0"] for s in steps]
    for name, key in (
        ("train", "results"), ("validator", "results"), ("codec", "real"), ("train-tuned", "results")
    ):  # fmt: skip
        report = json.loads((gpu_dry_run / f"{name}.json").read_text())
        assert report["bench"] == name.split("-")[0] and report[key], name
        assert report["machine"]["device"] == "cpu"
    model = json.loads((gpu_dry_run / "codec-model.json").read_text())
    assert model["machine"]["device"] == "cpu" and len(model["results"]) == 2
    assert json.loads((gpu_dry_run / "train-tuned.json").read_text())["results"][0]["batch"] == 8
    # the device tool returns at most 8 files: every step's stderr shares one log
    files = sorted(p.name for p in gpu_dry_run.iterdir())
    assert len(files) <= 8 and "steps.log" in files, files
    log = (gpu_dry_run / "steps.log").read_text()
    assert log.count("=== ") == len(steps)
    assert "torch" in log.split("=== ")[0]  # the device, before the first step
    checks = json.loads((gpu_dry_run / "checks.json").read_text())
    assert checks["machine"]["device"] == "cpu" and checks["contributions"] == 2
