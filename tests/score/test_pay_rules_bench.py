"""bench/pay_rules.py replays recorded runs under a pay rule that counts pages: today's rule
gives back the recording's own shares, and paying per page makes a split of equal-score
hotkeys earn what the whole earns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.pay_rules import pay, report, shares  # noqa: E402
from gauntlet.localnet.recording import replay, run_share  # noqa: E402
from gauntlet.score.weights import power_weights  # noqa: E402

RECORDS = json.loads((ROOT / "tests" / "score" / "data" / "adaptive_journals.json").read_text())


def test_pages_to_the_power_zero_is_todays_power_normalisation() -> None:
    scores = {1: 3.0, 2: 1.5, 3: 0.0, 4: -2.0}
    assert pay(scores, {1: 9, 2: 1}, (0.0, 2.0)) == power_weights(scores, 2.0)


def test_paid_per_page_a_split_of_equal_scores_earns_what_the_whole_earns() -> None:
    whole = pay({1: 5.0, 2: 3.0, 3: 0.0}, {1: 16, 2: 4, 3: 2}, (1.0, 1.0))
    split = pay({1: 5.0, 4: 5.0, 2: 3.0, 3: 0.0}, {1: 8, 4: 8, 2: 4, 3: 2}, (1.0, 1.0))
    assert split[1] + split[4] == pytest.approx(whole[1]) and split[2] == pytest.approx(whole[2])
    assert whole[3] == split[3] == 0.0  # no score, no pay, whatever the pages
    # under today's rule the same split gains: the top rank is paid per hotkey (50/59 of the
    # weights against 25/34)
    today = power_weights({1: 5.0, 4: 5.0, 2: 3.0}, 2.0)
    assert today[1] + today[4] > 1.15 * power_weights({1: 5.0, 2: 3.0}, 2.0)[1]


def test_todays_rule_gives_back_the_recordings_own_shares() -> None:
    record = RECORDS[0]
    journal = record["journals"][0]
    weights = replay(record, journal)
    replayed = shares(record, journal, [(0.0, 2.0)], since=0)[(0.0, 2.0)]
    for uid in map(int, record["behaviours"]):
        assert replayed.get(uid, 0.0) == pytest.approx(run_share(weights, uid), abs=1e-9)


def test_the_report_lists_every_miner_under_every_rule() -> None:
    out = report(RECORDS[0], [(1.0, 1.0)], since=10)
    assert out["today"] == "pages^0 score^2"
    assert set(out["miners"]) == set(RECORDS[0]["behaviours"])
    for miner in out["miners"].values():
        assert set(miner["share"]) == {"pages^0 score^2", "pages^1 score^1"}
        assert all(len(v) == len(RECORDS[0]["journals"]) for v in miner["share"].values())
    for rule in ("pages^0 score^2", "pages^1 score^1"):  # each validator's shares sum to 1
        total = sum(m["share"][rule][0] for m in out["miners"].values())
        assert total == pytest.approx(1.0, abs=1e-3)
