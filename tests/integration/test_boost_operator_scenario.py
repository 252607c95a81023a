"""One operator against the alignment limit: six new `boost` hotkeys, enough to make the
window's median alignment theirs, and three `sleeper-boost` hotkeys that first earn a score
by mining 3 pages honestly for 8 windows, then train one page and boost, against five
honest miners with 1-5 pages; two validators. Two versions of the operator, each its own
run: scenarios/boost-operator.toml makes the last aggregate 0.85 of every upload (20
windows), scenarios/boost-operator-limit.toml only 0.3, just above the limit, which keeps
more of its trained page through the codec (40 windows: late in a run one-page work earns
about the honest rate per page, and this operator about what nine honest one-page hotkeys
would). The per-page check compares with the honest median per page processed, a proxy: the
bound's own baseline, the same nine pages mined by one honest hotkey, is
scenarios/nine-page-miner.toml, a separate run (docs/scoring.md, "Against the same compute on
one hotkey").

The limit is the lower of the median alignment and the median weighted by what each
validator pays (its weights; docs/scoring.md, "What is new", "Weighted by pay"), so neither
the hotkeys nor the pay the sleepers earned should buy the free part. The seed comes from GAUNTLET_BOOST_OPERATOR_SEED (default
0), and GAUNTLET_BOOST_OPERATOR_WINDOWS overrides the scenarios' window counts;
docs/runs.md records the runs.
"""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path

import pytest
from integration_helpers import incentives, miner_behaviours, scenario_run

# About 4 and 8 minutes on 2 cores (226 s and about 450 s a run): research runs, outside
# the default suite; `make test ARGS="-m research"` runs them.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = ("boost-operator.toml", "boost-operator-limit.toml")
SEED = os.environ.get("GAUNTLET_BOOST_OPERATOR_SEED", "0")
WINDOWS = os.environ.get("GAUNTLET_BOOST_OPERATOR_WINDOWS")  # None: the scenario's
# Pages each operator hotkey trains per window once boosting (or fewer, where it processed
# fewer): the sleepers' earlier honest work is not counted, so what they earn at the end is
# set against what they now do.
COMPUTE = {"boost": 1.0, "sleeper-boost": 1.0}
SLEEP = 8  # the scenario's honest_windows
# The limit-knowing operator's pay per page processed, as a multiple of the honest median,
# above which its open row is worse than measured: 0.92-1.24x by weight shares in six runs,
# 0.99-1.15x over windows 20-39 in six (docs/runs.md, "At two passes a peer").
OPEN_LIMIT_CEILING = 1.25
LIMIT_LINE = re.compile(r"window (\d+): alignment with the last aggregate, limit ([0-9.]+)")


@pytest.fixture(scope="module", params=FILES)
def operator_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stdlib_dataset_dir: Path,
) -> dict:
    run_dir = tmp_path_factory.mktemp("boost-operator")
    flags = () if WINDOWS is None else ("--localnet.windows", WINDOWS)
    scenario = SCENARIOS / request.param
    run, summary = scenario_run(run_dir, stdlib_dataset_dir, scenario, SEED, flags=flags)
    return {"summary": summary, "run": run, "scenario": request.param}


def test_the_operator_earns_less_per_page_than_honest_mining(operator_run) -> None:
    """Per page processed per window: on 2 cores the localnet's miners share the CPU and
    finish fewer pages than their budgets (the 5-page honest miner 1.9-4.5 a window over
    40 windows, docs/runs.md), so a budget is not what a miner computed."""
    summary = operator_run["summary"]
    incentive, miners = incentives(summary, late=True), miner_behaviours(summary)
    windows = len(summary["windows"])
    processed = {u: summary["pages_processed"].get(str(u), 0) / windows for u in miners}
    honest = [
        incentive.get(u, 0.0) / processed[u]
        for u, b in miners.items()
        if b == "honest" and processed[u] > 0
    ]
    operator = {u: b for u, b in miners.items() if b in COMPUTE}
    assert len(operator) == 9
    earned = sum(incentive.get(u, 0.0) for u in operator)
    compute = sum(min(COMPUTE[b], processed[u]) for u, b in operator.items())
    assert compute > 0 and honest
    ratio = earned / compute / statistics.median(honest)
    details = (earned, compute, honest, incentive)
    if operator_run["scenario"] == "boost-operator-limit.toml":
        # Open at the honest rate (docs/scoring.md, threat model): over windows 20-39 this
        # operator was paid 0.99-1.15x the honest median per page processed in six runs at
        # seed 0 on 2026-12-05 (0.99-1.10x measuring on 8 batches, 1.08-1.15x on 4). Pay
        # beyond the measured range fails.
        assert ratio < OPEN_LIMIT_CEILING, (ratio, *details)
        if ratio >= 1:
            pytest.xfail(f"open: the limit-knowing operator paid {ratio:.2f}x honest mining")
    assert ratio < 1, (ratio, *details)


def test_neither_the_hotkeys_nor_the_sleepers_score_lift_the_limit(operator_run) -> None:
    """From the window after the sleepers switch, every validator's limit stays under the
    boosters' alignment (0.6-0.75 where measured), at the honest miners' level. Only for the
    heavy boosters: those of boost-operator-limit.toml stay under 0.55 themselves."""
    if operator_run["scenario"] != "boost-operator.toml":
        pytest.skip("the boosters of this scenario sit just above the limit, under 0.55")
    run = operator_run["run"]
    first = min(operator_run["summary"]["windows"])
    for log in sorted((run / "logs").glob("validator*.log")):
        limits = {int(w): float(v) for w, v in LIMIT_LINE.findall(log.read_text())}
        late = [v for w, v in limits.items() if w > first + SLEEP]
        assert late and max(late) < 0.55, (log.name, limits)


def test_honest_miners_with_more_pages_out_earn_those_with_fewer(operator_run) -> None:
    summary = operator_run["summary"]
    incentive = incentives(summary, late=True)
    honest = sorted(
        (float(summary["budgets"][str(u)]), incentive.get(u, 0.0))
        for u, b in miner_behaviours(summary).items()
        if b == "honest"
    )
    assert honest[-1][1] > honest[0][1], honest


def test_the_model_trains(operator_run) -> None:
    summary = operator_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"]
