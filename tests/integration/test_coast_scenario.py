"""The rating's memory (scenarios/coast.toml): three `coast` miners mine all 5 of their pages
honestly for 8 windows, then truthfully declare and train 2, 2 and 1 pages to the end of the
run, against five honest miners with 1-5 pages; two validators, 20 windows.

No check can fire on a coaster: every update is honest and every declaration true. What it
exploits is that a rating built on full work is lost slowly, so the measure is what it earns
over the run (the mean of the chain's incentive samples, ``incentive_mean``) per page it
trained, and where it ends once the rating has had its coasting windows to respond.
docs/scoring.md ("Coasting") records three seeds, and what is still open: over a
20-window run coasters earned 0.85-2.1x the rate per page of the honest miner closest to
their average compute (8 of 9 above 1); over two cycles (40 windows) they earned under it,
so what is open is a one-off gain for a miner that stops for good.
The seed comes from GAUNTLET_COAST_SEED (default 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_helpers import incentives, miner_behaviours, scenario_run

from gauntlet.localnet.results import spearman
from gauntlet.localnet.scenario import expand, load_scenario

# About 4 minutes on 2 cores: a research run, outside the default suite;
# `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "coast.toml"
SEED = os.environ.get("GAUNTLET_COAST_SEED", "0")
# Over the run, per page trained, against the best-paid honest miner per page: the most
# any coaster earned was 1.16, 0.85 and 1.04 of it in seeds 0-2 (docs/scoring.md).
TOLERANCE = 0.25


@pytest.fixture(scope="module")
def coast_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("coast")
    _, summary = scenario_run(run_dir, stdlib_dataset_dir, SCENARIO, SEED)
    return summary


def _coasters(summary: dict) -> dict[int, float]:
    """uid -> pages a coaster trains per window on average over the run."""
    _, miners = expand(load_scenario(SCENARIO))
    by_name = {m.name: m for m in miners}
    windows = len(summary["windows"])
    out = {}
    for uid, behaviour in miner_behaviours(summary).items():
        if behaviour == "coast":
            node = by_name[summary["roles"][str(uid)]]
            full, coast = node.args["full_windows"], node.args["coast"]
            cycle = full + node.args["coast_windows"]
            pages = [node.pages or 1 if w % cycle < full else coast for w in range(windows)]
            out[uid] = sum(pages) / windows
    assert len(out) == 3
    return out


def _honest(summary: dict) -> dict[int, int]:
    """uid -> pages per window of each honest miner."""
    miners = miner_behaviours(summary)
    return {u: int(summary["budgets"][str(u)]) for u, b in miners.items() if b == "honest"}


def test_no_coaster_earns_more_per_page_over_the_run_than_the_best_paid_honest_miner(
    coast_run,
) -> None:
    earned = {int(u): v for u, v in coast_run["incentive_mean"].items()}
    best = max(earned.get(u, 0.0) / pages for u, pages in _honest(coast_run).items())
    for uid, pages in _coasters(coast_run).items():
        per_page = earned.get(uid, 0.0) / pages
        assert per_page <= best * (1 + TOLERANCE), (uid, per_page, best, earned)


def test_by_the_end_every_coaster_earns_less_than_the_honest_miner_of_its_full_budget(
    coast_run,
) -> None:
    incentive, honest = incentives(coast_run), _honest(coast_run)
    top = next(u for u, pages in honest.items() if pages == 5)
    for uid in _coasters(coast_run):
        assert incentive.get(uid, 0.0) < incentive.get(top, 0.0), (uid, incentive)


def test_a_coaster_down_to_one_page_ends_below_the_honest_three_page_miner(coast_run) -> None:
    """Its 1-page updates lose every match (one page overfits: the 1-page honest miner
    earns nothing), so its rating falls within its 12 coasting windows."""
    incentive, honest = incentives(coast_run), _honest(coast_run)
    three = next(u for u, pages in honest.items() if pages == 3)
    coasters = _coasters(coast_run)
    slowest = min(coasters, key=coasters.__getitem__)
    assert incentive.get(slowest, 0.0) < incentive.get(three, 0.0), incentive


def test_honest_miners_are_ranked_by_the_pages_they_process(coast_run) -> None:
    incentive, honest = incentives(coast_run), _honest(coast_run)
    uids = sorted(honest)
    pages = [float(honest[u]) for u in uids]
    assert (spearman(pages, [incentive.get(u, 0.0) for u in uids]) or 0.0) >= 0.8


def test_the_model_trains(coast_run) -> None:
    assert coast_run["validation_loss_last"] < coast_run["validation_loss_first"]
