"""The rating's memory, attacked by miners whose compute changes over time, against five
honest miners with 1-5 pages; two validators:

- scenarios/coast.toml: three `coast` miners mine all 5 of their pages honestly for 8
  windows, then truthfully declare and train 2, 2 and 1 pages to the end (20 windows);
- scenarios/burst.toml: two work in bursts as long as the memory, 5 pages for 5 windows
  then 1 or 2 for 5, repeated (30 windows).

No check can fire on them: every update is honest and every declaration true. What they
exploit is that a rating lags the work it measures, so the measure is what each earns over
the run (the mean of the chain's incentive samples, ``incentive_mean``) per page it trained
on average, and where it ends. docs/scoring.md ("The rating's memory") records the runs.
The seed comes from GAUNTLET_COAST_SEED (default 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_helpers import incentives, miner_behaviours, scenario_run

from gauntlet.localnet.results import spearman
from gauntlet.localnet.scenario import expand, load_scenario
from gauntlet.score.config import ScoringConfig

# About 4 minutes on 2 cores: a research run, outside the default suite;
# `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED = os.environ.get("GAUNTLET_COAST_SEED", "0")
# Over the run, per page trained, against the best-paid honest miner per page: the most
# any coaster earned was 1.16, 0.85 and 1.04 of it in seeds 0-2 without the memory, 1.23
# with it (seed 0); a burst miner 1.17 (docs/scoring.md, "The rating's memory").
TOLERANCE = 0.25


@pytest.fixture(scope="module", params=["coast.toml", "burst.toml"])
def coast_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stdlib_dataset_dir: Path,
) -> dict:
    scenario = SCENARIOS / request.param
    run_dir = tmp_path_factory.mktemp(scenario.stem)
    _, summary = scenario_run(run_dir, stdlib_dataset_dir, scenario, SEED)
    return {**summary, "scenario_file": str(scenario)}


def _coasters(summary: dict) -> dict[int, float]:
    """uid -> pages a coaster trains per window on average over the run."""
    _, miners = expand(load_scenario(Path(summary["scenario_file"])))
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
    assert len(out) == sum(m.behaviour == "coast" for m in miners)
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
    earns nothing), so its rating falls within coasting windows longer than the memory
    (coast.toml's 12). A burst's 5 are half the memory: there the burst is held to the
    per-page rate over the run instead (seed 1: its 1-page burst ended at 0.136 against
    an honest 3-page miner at 0.041 after a poor last window of that miner)."""
    _, miners = expand(load_scenario(Path(coast_run["scenario_file"])))
    memory = ScoringConfig().rating_memory
    if any(m.args["coast_windows"] <= memory for m in miners if m.behaviour == "coast"):
        pytest.skip("coasting stretches no longer than the rating's memory")
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
