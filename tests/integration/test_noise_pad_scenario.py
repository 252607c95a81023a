"""Burying one page in noise (scenarios/noise-pad.toml): three `weak-control` miners train one
page on their own account and add Gaussian noise of 1, 2 and 3 times its norm, beside five
honest miners with 1-5 pages; two validators, 40 windows.

The noise keeps an honest norm while the real part steps 1/sqrt(1 + noise^2) as far at the
window's median norm; late in a run, where every update applied alone overshoots, the
shorter real step measures better on the random pages (docs/scoring.md, "bury a small
update in noise"). The measure of the mechanism is that none of them is paid more per page
than the median honest miner, pay being the chain's incentive averaged over the run's
second half (``incentive_late``: the rate once the network has settled, not one window's
draw). It does not hold at the default seed: on the suite's 4096-token pages the 2x miner
was paid 1.15x the honest median per page over windows 20-39 at seed 0, and the buried
pages 0.41-0.79x at seed 1 (with the match ranked by the work too: `scoring.match_work`,
the default; at the end of the run they stood at 1.2-2.1x, and by the random pages alone
4.0-7.3x; docs/runs.md, "Burying on purpose", "Ranking by the work too", "Pay over the
second half"), so the assertion is an expected failure. It is not strict: at two passes a
peer (the scenario's `eval_batches` 4, 2026-12-05) two runs at seed 0 went both ways, the 3x
page paid 1.20x in one and every buried page 0.55-0.87x in the other, so one passing run
says nothing; the marker goes when a change makes it hold across seeds and runs.

The seed comes from GAUNTLET_NOISE_PAD_SEED (default 0); GAUNTLET_NOISE_PAD_PAGE_TOKENS runs
on a 2M-token corpus cut into pages of that many tokens (default: the suite's dataset).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_helpers import (
    dataset_of_pages,
    honest_median_per_page,
    honest_pages_and_pay,
    pay_per_page,
    scenario_run,
)

from gauntlet.localnet.results import spearman

# About 7 minutes on 2 cores (411 s): a research run, outside the default suite;
# `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "noise-pad.toml"
SEED = os.environ.get("GAUNTLET_NOISE_PAD_SEED", "0")
PAGE_TOKENS = os.environ.get("GAUNTLET_NOISE_PAD_PAGE_TOKENS")
BURIED = "weak-control"  # each trains one page (its compute) and uploads it under noise


@pytest.fixture(scope="module")
def noise_pad_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("noise-pad")
    dataset, flags = dataset_of_pages(tmp_path_factory, stdlib_dataset_dir, PAGE_TOKENS)
    run, summary = scenario_run(run_dir, dataset, SCENARIO, SEED, flags=flags)
    return {"summary": summary, "run": run}


# Not strict: at the default seed it failed in one run and held in another, the same code and
# settings (docs/runs.md, "At two passes a peer").
@pytest.mark.xfail(
    strict=False,
    reason="open: a page buried in 2-3x its norm of noise out-earns honest mining per page "
    "late in a run (docs/scoring.md, 'bury a small update in noise')",
)
def test_a_buried_page_earns_no_more_per_page_than_honest_mining(noise_pad_run) -> None:
    summary = noise_pad_run["summary"]
    median = honest_median_per_page(summary, late=True)
    buried = pay_per_page(summary, BURIED, late=True)  # one page each: per page is its pay
    assert len(buried) == 3
    assert all(earned <= median for earned in buried.values()), (median, buried)


def test_honest_miners_are_ranked_by_the_pages_they_process(noise_pad_run) -> None:
    pages, earned = honest_pages_and_pay(noise_pad_run["summary"], late=True)
    assert (spearman(pages, earned) or 0.0) >= 0.8, (pages, earned)


def test_the_model_trains(noise_pad_run) -> None:
    summary = noise_pad_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"]
