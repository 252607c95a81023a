"""Bucket servers that hold readers' requests open (scenarios/tarpit.toml): one holds every
request, two answer HEADs and hold the downloads. The validator must judge every window
after the first, the honest miners must be ok in every one of them and the model must
train; the tarpits are missing and earn nothing. Before rounds had time limits the lead
never finished a window (docs/scoring.md, "Threat model"). A research run (about 2
minutes on 2 cores): -m research runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_helpers import scenario_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tarpit.toml"


@pytest.fixture(scope="module")
def tarpit_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("tarpit")
    run, summary = scenario_run(run_dir, stdlib_dataset_dir, SCENARIO, None, timeout=600)
    results = json.loads((run / "report" / "results.json").read_text())
    behaviour = {n["uid"]: n["behaviour"] for n in results["nodes"] if n["role"] == "miner"}
    return {"summary": summary, "results": results, "behaviour": behaviour}


def _of(run: dict, behaviour: str) -> list[int]:
    return sorted(u for u, b in run["behaviour"].items() if b == behaviour)


def test_every_window_after_the_first_is_judged_and_honest_miners_are_ok(tarpit_run) -> None:
    judged = [w for w in tarpit_run["results"]["windows"] if w["window"] > 0]
    assert len(judged) >= 6
    for window in judged:
        statuses = {int(u): p["status"] for u, p in window["peers"].items()}
        assert all(statuses.get(u) == "ok" for u in _of(tarpit_run, "honest")), window
        assert all(statuses.get(u) == "missing" for u in _of(tarpit_run, "tarpit")), window


def test_the_model_trains_and_the_tarpits_earn_nothing(tarpit_run) -> None:
    summary = tarpit_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"] - 1.0
    for uid in _of(tarpit_run, "tarpit"):
        assert summary["incentive"][str(uid)] < 0.01
        assert summary["incentive_mean"][str(uid)] < 0.01
