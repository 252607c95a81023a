"""Declaring more pages than one trains (scenarios/over-declare.toml), the attack that knows
the rating match ranks the work an update shows on its own pages, its declared pages times
its own-page advantage (`scoring.match_work`): two `lazy` miners declare 8 pages and train
6 or 4, beside honest miners with 1-6 pages; two validators, 40 windows.

Declaring untrained pages multiplies the work by the pages declared, but the advantage is
measured on a secret sample of them, so the untrained ones divide it by about as much. The
measure: over windows 20-39 (the whole run is scored; a share is the mean of those windows'
weights, per validator, from the run's recording) neither earns more than the honest miner
that trains as many pages, within TOLERANCE, and honest pay follows pages. Seed 0 gave the
8/6 miner 0.97x and the 8/4 one 0.63x of their honest twins (docs/runs.md, "Ranking by the
work too"); ranked by the random pages alone, the 8/6 miner had had 1.32x and 1.16x at the
two validators at seed 0, and 0.85x at seed 1 (docs/scoring.md, "Declaring more than one
trains"). The seed comes from GAUNTLET_OVER_DECLARE_SEED (default 0).
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
from integration_helpers import honest_pages_and_pay, scenario_run

from gauntlet.localnet.recording import shares_by_miner
from gauntlet.localnet.results import spearman

# About 8 minutes on 2 cores: a research run, outside the default suite;
# `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "over-declare.toml"
SEED = os.environ.get("GAUNTLET_OVER_DECLARE_SEED", "0")
TRAINED = (6, 4)  # the pages the scenario's lazy miners train, in uid order (both declare 8)
FROM_WINDOW = 20
TOLERANCE = 0.15  # relative: one run's shares are noisy at the 10-20% level


@pytest.fixture(scope="module")
def over_declare_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("over-declare")
    run, summary = scenario_run(run_dir, stdlib_dataset_dir, SCENARIO, SEED)
    return {"summary": summary, "run": run}


def late_shares(run: Path) -> dict[tuple[str, int], float]:
    """Each miner's share of windows FROM_WINDOW on, the mean of the two validators, keyed
    (``"honest"``, pages) or (``"lazy"``, pages trained)."""
    record = json.loads((run / "report" / "recording.json").read_text())
    lazy = iter(TRAINED)
    out: dict[tuple[str, int], float] = {}
    for key, miner in shares_by_miner(record, FROM_WINDOW).items():  # in uid order
        _, behaviour, pages = key.split()
        trained = next(lazy) if behaviour == "lazy" else int(pages)
        out[(behaviour, trained)] = statistics.mean(miner["run_share"])
    return out


def test_declaring_untrained_pages_earns_no_more_than_declaring_the_trained_ones(
    over_declare_run,
) -> None:
    shares = late_shares(over_declare_run["run"])
    for trained in TRAINED:
        lazy, twin = shares[("lazy", trained)], shares[("honest", trained)]
        assert lazy <= twin * (1 + TOLERANCE), (trained, lazy, twin, shares)


def test_honest_miners_are_ranked_by_the_pages_they_process(over_declare_run) -> None:
    pages, earned = honest_pages_and_pay(over_declare_run["summary"], late=True)
    assert len(pages) == 6
    assert (spearman(pages, earned) or 0.0) >= 0.8, (pages, earned)


def test_the_model_trains(over_declare_run) -> None:
    summary = over_declare_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"] - 2.0
