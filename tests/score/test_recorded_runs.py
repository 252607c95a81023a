"""Scoring replayed on what validators measured in real runs of the adversarial scenario.

``data/adversarial_journals.json`` holds, for each recorded run, every window report of both
validators cut down to what scoring reads (outcome, and for an evaluated peer its losses and
own-page advantage). Replayed (:func:`gauntlet.localnet.recording.replay`) they reproduce
the run's weights to three digits under the rules they ran with (the failed CI run's 0.0115
for the wrong-data miner; these journals predate ``sync_observed``, so sync is taken as 1
for every miner in sync, the one input they lack: the file's ``assumed``), so a change to
the scoring rules can be judged here, on real measurements, in a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gauntlet.localnet.recording import replay, run_share

RECORDS = json.loads((Path(__file__).parent / "data" / "adversarial_journals.json").read_text())


def _uids(record: dict, behaviour: str) -> list[int]:
    return [int(u) for u, b in record["behaviours"].items() if b == behaviour]


def _adversaries(record: dict) -> list[int]:
    return [int(u) for u, b in record["behaviours"].items() if b != "honest"]


# The rules the recorded runs were scored with: no floor, paid from the first evaluation,
# ratings that never forget, the match ranked by the random pages alone.
AS_RUN = {
    "uniqueness_floor": 0.0,
    "pay_min_evaluations": 1,
    "rating_memory": 0.0,
    "match_work": False,
}
CASES = [(r, j) for r in RECORDS for j in range(len(r["journals"]))]
IDS = [f"{r['label'][:28]}-v{j}" for r, j in CASES]


@pytest.mark.parametrize(("record", "validator"), CASES, ids=IDS)
def test_no_adversary_keeps_weight_at_the_end_or_one_percent_over_the_run(
    record: dict, validator: int
) -> None:
    weights = replay(record, record["journals"][validator])
    assert all(weights[-1].get(u, 0.0) > 0 for u in _uids(record, "honest")), weights[-1]
    for uid in _adversaries(record):
        assert weights[-1].get(uid, 0.0) == 0.0, (record["label"], uid, weights[-1])
        assert run_share(weights, uid) < 0.01, (record["label"], uid)


@pytest.mark.parametrize(("record", "validator"), CASES, ids=IDS)
def test_the_wrong_data_miner_never_holds_a_large_share_of_a_window(
    record: dict, validator: int
) -> None:
    """What is left: windows where its measurements look honest. In a network's first
    windows every update improves every page and the own-page advantage cannot tell a
    wrong-data update from an honest one (it is as useful: it trains as much), and later a
    few windows running can come out positive; the recordings still pay it 0.050 of a
    validator in one early window and 0.036 in one late one."""
    (wrong,) = _uids(record, "wrongdata")
    weights = replay(record, record["journals"][validator])
    assert max(w.get(wrong, 0.0) for w in weights) < 0.06, record["label"]


def test_under_the_old_rules_the_recordings_show_the_failure() -> None:
    """The recordings are the failure, not lucky draws: under the rules they ran with the
    failed CI run ends with the wrong-data miner above 1% of the second validator's weights
    (as the run did), and in every recording some adversary holds over 3% of a validator's
    weights over the run."""
    failed = RECORDS[0]
    (wrong,) = _uids(failed, "wrongdata")
    last = replay(failed, failed["journals"][1], **AS_RUN)[-1]
    assert last[wrong] == pytest.approx(0.011515, rel=1e-3)  # the run gave it 0.011515
    for record in RECORDS:
        shares = [
            run_share(replay(record, journal, **AS_RUN), uid)
            for journal in record["journals"]
            for uid in _adversaries(record)
        ]
        assert max(shares) > 0.03, record["label"]


BESIDE = json.loads(
    (Path(__file__).parent / "data" / "adversarial_journal_beside.json").read_text()
)


def test_a_wrong_data_miner_that_trained_beside_its_pages_is_paid_as_it_trained() -> None:
    """A CI run of 2026-12-05 at the rules of its day (``scoring_as_run`` in the file), whose
    wrong-data miner ended at 0.0625 of the lead's last weights. Measured again
    (bench/replay_evaluation.py, docs/scoring.md's threat row) the controls were sound and the
    attack was not: half the dataset from each own page had landed beside another own page
    in windows 8, 10 and 11 (1 and 2 pages away in the last two), so the miner trained on its
    own files there, its own-page advantage came out positive (+0.013 to +0.022 a page) and
    its uniqueness rose from -0.10 at window 7 to 0.37 at window 11. The replay pays it what
    the run did, and no other adversary anything: scoring paid for training its pages'
    files, the one thing this miner did that an honest one does. ``far_pages`` no longer
    lands there (tests/localnet/test_behaviours.py)."""
    (wrong,) = _uids(BESIDE, "wrongdata")
    weights = replay(BESIDE, BESIDE["journals"][0])
    assert weights[-1][wrong] == pytest.approx(0.0625, rel=1e-2)
    assert run_share(weights, wrong) < 0.01  # over the run it kept under 1%
    for uid in _adversaries(BESIDE):
        if uid != wrong:
            assert weights[-1].get(uid, 0.0) == 0.0, (uid, weights[-1])
