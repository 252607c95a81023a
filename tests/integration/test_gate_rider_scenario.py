"""Members that ride the lead's member check (scenarios/gate-rider.toml): two hotkeys mine
honestly for 4 windows, then add the strongest ascent on general data that their own copy
of the check passes. The same scenario with both of them honest is the reference.

The riders must really ride (their copy of the check passes an ascent in at least a third
of their windows), must earn no more per page than honest miners, and the model must end
close to the all-honest reference: an ascent on general data raises the loss on the rider's
own pages too, so what passes the check is a small part of an honest update. Two research runs (about 4 minutes on 2 cores): -m research runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from integration_helpers import incentives, miner_behaviours, scenario_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.research]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "gate-rider.toml"
TOLERANCE = 0.15  # relative: one run's incentive shares are noisy at the 10-20% level
# Nats of final validation loss the riders may cost: over three seeds they cost -0.028 to
# +0.037 (about one window's progress late in the run; docs/runs.md, "Gate-rider run").
MAX_HARM = 0.06


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    honest = tmp_path_factory.mktemp("gate-rider-reference") / "honest.toml"
    text = SCENARIO.read_text()
    text = text.replace('behaviour = "gate-rider"', 'behaviour = "honest"')
    honest.write_text(re.sub(r"(?m)^args = \{ honest_windows.*\n", "", text))
    out = {}
    for name, scenario in (("attack", SCENARIO), ("honest", honest)):
        run, summary = scenario_run(
            tmp_path_factory.mktemp(f"gate-rider-{name}"), stdlib_dataset_dir, scenario, None,
            timeout=900,
        )  # fmt: skip
        out[name] = {"run": run, "summary": summary}
    return out


def test_riders_pass_an_ascent_through_their_copy_of_the_check(runs) -> None:
    run, summary = runs["attack"]["run"], runs["attack"]["summary"]
    riders = [u for u, b in miner_behaviours(summary).items() if b == "gate-rider"]
    assert len(riders) == 2
    for log in sorted((run / "logs").glob("miner*.log")):
        text = log.read_text()
        if "gate-rider:" not in text:
            continue
        rode = len(re.findall(r"gate-rider: window \d+, ascent [\d.]+ passes", text))
        tried = len(re.findall(r"gate-rider: window \d+, ", text))
        assert tried >= 6 and rode >= tried / 3, (log.name, rode, tried)


def test_riders_earn_no_more_per_page_than_honest_miners(runs) -> None:
    summary = runs["attack"]["summary"]
    behaviours, budgets = miner_behaviours(summary), summary["budgets"]
    paid = incentives(summary, late=True)
    total = sum(paid.get(u, 0.0) for u in behaviours) or 1.0
    per_page = {u: paid.get(u, 0.0) / total / float(budgets[str(u)]) for u in behaviours}
    honest = max(per_page[u] for u, b in behaviours.items() if b == "honest")
    for u, b in behaviours.items():
        if b == "gate-rider":
            assert per_page[u] <= honest * (1 + TOLERANCE), per_page


def test_the_model_ends_close_to_the_all_honest_reference(runs) -> None:
    attack = runs["attack"]["summary"]["validation_loss_last"]
    honest = runs["honest"]["summary"]["validation_loss_last"]
    start = runs["honest"]["summary"]["validation_loss_first"]
    assert attack < start - 2.0, (start, attack)  # it trained
    assert attack <= honest + MAX_HARM, (attack, honest)
