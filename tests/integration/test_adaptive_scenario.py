"""The adaptive scenario: miners that know the scoring code against five honest miners with
1-5 pages of compute per window, two validators, 20 windows (scenarios/adaptive.toml).

The measure of the mechanism: adversaries that do no useful training end under 1% of the
incentive, no adversary earns more incentive per unit of compute than the median honest
miner, honest miners are ranked by the data they process, the useless adversaries never
reach the model after the warm-up, and the model trains. Pay is the chain's incentive
averaged over the run's second half (``incentive_late``): the rate each strategy is paid
once the network has settled; the last sample alone is one window's draw. One run serves every test; the
seed comes from GAUNTLET_ADAPTIVE_SEED (default 0; docs/runs.md records three), the
number of windows from GAUNTLET_ADAPTIVE_WINDOWS (default: the scenario's 20), the page
size from GAUNTLET_ADAPTIVE_PAGE_TOKENS (default: the suite's dataset, 4096-token pages).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest
from integration_helpers import (
    dataset_of_pages,
    honest_median_per_page,
    honest_pages_and_pay,
    incentives,
    miner_behaviours,
    scenario_run,
)

from gauntlet.localnet.results import spearman

# About 4.5 minutes on 2 cores: a research run, outside the default suite (which must stay
# under 15 minutes); `make test ARGS="-m research"` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "adaptive.toml"
SEED = os.environ.get("GAUNTLET_ADAPTIVE_SEED", "0")
# The scenario's 20 windows unless set: at 40, `boost` is paid 1.7-1.9x the honest median
# per page over windows 20-39 (seeds 0 and 1; `weak-control` 0.55-0.58x; docs/runs.md, "Pay
# over the second half"), so the per-compute assertion fails there; the long run is how that
# open problem is measured.
WINDOWS = os.environ.get("GAUNTLET_ADAPTIVE_WINDOWS")
# The suite's dataset unless set; if set, a 2M-token stdlib corpus cut into pages of that
# many tokens (integration_helpers.dataset_of_pages). With 2048 (a page a smaller share of
# what the tiny model can learn, as a page is of a real model's) the 40-window run paid
# `weak-control` and `boost` (almost) nothing at three seeds, by their uniqueness averages
# rising more slowly rather than by their ratings (at 60 windows `boost` earned 0.188):
# docs/runs.md, "With smaller pages".
PAGE_TOKENS = os.environ.get("GAUNTLET_ADAPTIVE_PAGE_TOKENS")
# Pages each adversary actually trains on per window (its compute), from the scenario:
# a part-timer works one window in four on 3 pages and trains 1 page otherwise.
COMPUTE = {"sybil": 1.0, "shrink": 3.0, "lazy": 1.0, "part-timer": 1.5, "mix-previous": 1.0,
           "sign-flip": 3.0, "weak-control": 1.0, "wrongdata-part": 3.0, "boost": 1.0}  # fmt: skip
USELESS = {"sybil", "mix-previous", "sign-flip"}  # nothing they upload helps the model
WARM_UP = 6  # windows after the first scored one before the records must be clean
TOLERANCE = 0.15  # relative: one run's incentive shares are noisy at the 10-20% level


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    run_dir = tmp_path_factory.mktemp("adaptive")
    flags = () if WINDOWS is None else ("--localnet.windows", WINDOWS)
    dataset, page_flags = dataset_of_pages(tmp_path_factory, stdlib_dataset_dir, PAGE_TOKENS)
    flags += page_flags
    run, summary = scenario_run(run_dir, dataset, SCENARIO, SEED, flags=flags)
    return {"summary": summary, "run": run}


def test_adversaries_that_train_nothing_useful_earn_under_one_percent(adaptive_run) -> None:
    summary = adaptive_run["summary"]
    incentive = incentives(summary, late=True)
    for uid, behaviour in miner_behaviours(summary).items():
        if behaviour in USELESS:
            assert incentive.get(uid, 0.0) < 0.01, (uid, behaviour, incentive)


def test_no_adversary_earns_more_per_unit_of_compute_than_honest_mining(adaptive_run) -> None:
    """Per page trained, no adversary out-earns the median honest miner or, where it did
    real work, honest mining at its compute: the least-squares line of honest incentive
    against pages, at the adversary's pages (within TOLERANCE). A single honest twin is too
    noisy a baseline: a shrunk update is an honest one once normalised, and in seed 1 it
    earned 17% more than the honest miner of its budget, and 9% less than the line."""
    summary = adaptive_run["summary"]
    incentive, miners = incentives(summary, late=True), miner_behaviours(summary)
    honest = list(zip(*honest_pages_and_pay(summary, late=True), strict=True))
    median = honest_median_per_page(summary, late=True)
    for uid, behaviour in miners.items():
        if behaviour != "honest":
            compute = COMPUTE[behaviour]
            per_compute = incentive.get(uid, 0.0) / compute
            trend = _line_at(honest, compute) / compute
            bound = max(median, trend) * (1 + TOLERANCE)
            assert per_compute <= bound, (uid, behaviour, per_compute, median, trend, incentive)


def _line_at(points: list[tuple[float, float]], x: float) -> float:
    """The least-squares line through ``points`` (x, y), evaluated at ``x``."""
    mean_x = statistics.mean(p[0] for p in points)
    mean_y = statistics.mean(p[1] for p in points)
    var = sum((p[0] - mean_x) ** 2 for p in points)
    slope = sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / var if var else 0.0
    return mean_y + slope * (x - mean_x)


def test_honest_miners_are_ranked_by_the_pages_they_process(adaptive_run) -> None:
    pages, earned = honest_pages_and_pay(adaptive_run["summary"], late=True)
    assert (spearman(pages, earned) or 0.0) >= 0.8, (pages, earned)


def test_after_the_warm_up_no_useless_adversary_is_aggregated(adaptive_run) -> None:
    from bittensor import Wallet

    from protocol.envelope import open_envelope
    from protocol.schemas import AggregationRecord

    run, summary = adaptive_run["run"], adaptive_run["summary"]
    lead = Wallet(name="validator0", path=str(run / "wallets")).hotkey.ss58_address
    records = [
        open_envelope(p.read_bytes(), AggregationRecord, expected_signer=lead)
        for p in sorted(run.rglob(f"aggregations/*/{lead}.json"))
    ]
    assert records
    useless = {u for u, b in miner_behaviours(summary).items() if b in USELESS}
    first = min(summary["windows"])
    late = [r for r in records if r.window >= first + WARM_UP]
    assert late and all(not ({c.uid for c in r.contributions} & useless) for r in late), [
        (r.window, [c.uid for c in r.contributions]) for r in late
    ]


def test_the_model_trains(adaptive_run) -> None:
    summary = adaptive_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"]
