"""A miner that serves the validators and holds the followers' reads of its recorded
payloads (scenarios/selective.toml). Every honest miner must apply every record (reading
the lead's copies), be ok in every window after the first, and the model must train.
Without the lead's mirror each record naming the selective miner left every honest miner
diverged (docs/scoring.md, "Threat model"). A research run (about 2 minutes on 2 cores):
-m research runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from integration_helpers import scenario_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "selective.toml"


@pytest.fixture(scope="module")
def selective_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("selective")
    run, summary = scenario_run(run_dir, stdlib_dataset_dir, SCENARIO, None, timeout=600)
    results = json.loads((run / "report" / "results.json").read_text())
    nodes = {n["uid"]: n for n in results["nodes"]}
    return {"run": run, "summary": summary, "results": results, "nodes": nodes}


def _miners(run: dict, behaviour: str) -> list[dict]:
    return [
        n for n in run["nodes"].values() if n["role"] == "miner" and n["behaviour"] == behaviour
    ]


def test_the_selective_miner_was_recorded_and_held_the_followers_reads(selective_run) -> None:
    (selective,) = _miners(selective_run, "selective-serve")
    log = (selective_run["run"] / "logs" / f"{selective['name']}.log").read_text()
    assert "selective-serve: readers now meet" in log
    recorded = re.findall(r"applied the lead's record \((\d+) contributions\)", log)
    assert recorded and max(int(n) for n in recorded) == 4  # it and the 3 honest miners


def test_every_honest_miner_applies_every_record_and_stays_in_sync(selective_run) -> None:
    windows = [w for w in selective_run["results"]["windows"] if w["window"] > 0]
    assert len(windows) >= 6
    for miner in _miners(selective_run, "honest"):
        log = (selective_run["run"] / "logs" / f"{miner['name']}.log").read_text()
        assert "cannot apply the lead's record" not in log, miner["name"]
        assert log.count("applied the lead's record") >= len(windows) - 1, miner["name"]
        for window in windows:
            assert window["peers"][str(miner["uid"])]["status"] == "ok", window


def test_the_model_trains(selective_run) -> None:
    summary = selective_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"] - 1.0
