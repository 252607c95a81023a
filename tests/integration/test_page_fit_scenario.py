"""The attack on `scoring.match_work` (scenarios/page-fit.toml): with the rating's match
ranked by the random pages and by the work an update shows on its own pages, two `page-fit`
miners train one declared page three times in a row (three pages of compute), bare and
buried in twice its norm of noise, beside five honest miners with 1-5 pages and a page
buried in 2x noise; two validators, 40 windows.

The measure: per page of compute neither earns more than the median honest miner, and
honest miners stay ranked by their pages. Seed 0 paid them 0.48x and 0.52x the honest
median per page (docs/runs.md, "Ranking by the work too"). The seed comes from
GAUNTLET_PAGE_FIT_SEED (default 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from integration_helpers import (
    honest_median_per_page,
    honest_pages_and_pay,
    pay_per_page,
    scenario_run,
)

from gauntlet.localnet.results import spearman

# About 8 minutes on 2 cores: a research run, outside the default suite;
# `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "page-fit.toml"
SEED = os.environ.get("GAUNTLET_PAGE_FIT_SEED", "0")


@pytest.fixture(scope="module")
def page_fit_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("page-fit")
    run, summary = scenario_run(run_dir, stdlib_dataset_dir, SCENARIO, SEED)
    return {"summary": summary, "run": run}


def test_fitting_one_page_earns_no_more_per_page_of_compute_than_honest_mining(
    page_fit_run,
) -> None:
    summary = page_fit_run["summary"]
    median = honest_median_per_page(summary, late=True)
    # budget: trained x repeat pages of compute
    fitted = pay_per_page(summary, "page-fit", late=True)
    assert len(fitted) == 2
    assert all(per_page <= median for per_page in fitted.values()), (median, fitted)


def test_honest_miners_are_ranked_by_the_pages_they_process(page_fit_run) -> None:
    pages, earned = honest_pages_and_pay(page_fit_run["summary"], late=True)
    assert (spearman(pages, earned) or 0.0) >= 0.8, (pages, earned)
