"""The adversarial-mix scenario: real miner processes with every behaviour, two validators,
a bucket directory per node, the simulated chain.

The buckets are directories, not one S3 server per node: on two cores, 17 rclone servers
answering two validators' polls took the CPU the honest miners train with, and the 5-page
miner missed half its windows ("training outlasted the window"), so incentive no longer
followed compute (CI, 2026-12-03). Exchange through real per-node S3 servers is
test_localnet_s3.py's subject.

Honest miners must out-earn every adversary, each adversary must end under 1% of the weight
and incentive, each must have been caught by the check meant for it, and the model must
still train. One run serves every test here (it takes a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from integration_helpers import alive, run_localnet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "adversarial.toml"

# The status each adversary must have received at least once from the lead validator.
CAUGHT_AS = {
    # Sealed uploads open only after the observation closes: a copy or a mix of others'
    # current updates can only be uploaded after it.
    "copycat": {"late"},
    "crowd-mix": {"late"},
    "replay": {"replay"},
    "freerider": {"replay"},
    "scaled": {"outlier"},
    "malformed": {"invalid"},
    "late": {"late", "missing"},
    "desync": {"desynced"},
    "offline": {"missing"},
}


# The same scenario with a Token-Superposition phase (docs/tst.md) in its first half must
# pass the same assertions: behaviours and checks hold in both phases and across the switch.
# A second run of several minutes, so outside the default suite: -m research runs it.
SWITCH = 6  # the tst run's first plain window
PHASES = {
    "plain": (),
    "tst": ("--train.superposition_bag", "4", "--train.superposition_until", str(SWITCH)),
}
# The first window each run trains on the plain objective: page by page the benches measure
# the plain loss, which says little of what a superposition window trained.
PLAIN_FROM = {"plain": 0, "tst": SWITCH}


@pytest.fixture(scope="module", params=["plain", pytest.param("tst", marks=pytest.mark.research)])
def adversarial_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stdlib_dataset_dir: Path,
) -> dict:
    run_dir = tmp_path_factory.mktemp(f"adversarial-{request.param}")
    completed = run_localnet(
        run_dir,
        stdlib_dataset_dir,
        "--localnet.scenario",
        str(SCENARIO),
        *PHASES[request.param],
        timeout=900,
    )
    (run,) = run_dir.iterdir()
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-8000:]
    summary = json.loads((run / "summary.json").read_text())
    results = json.loads((run / "report" / "results.json").read_text())
    journal = run / "state" / f"validator-{_hotkey(run, 'validator0')}.jsonl"  # the lead's
    reports = [json.loads(line) for line in journal.read_text().splitlines()]
    return {
        "summary": summary,
        "results": results,
        "reports": reports,
        "run": run,
        "stdout": completed.stdout,
        "plain_from": PLAIN_FROM[request.param],
    }


def _hotkey(run: Path, name: str) -> str:
    from bittensor import Wallet

    return Wallet(name=name, path=str(run / "wallets")).hotkey.ss58_address


def _by_behaviour(summary: dict) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for uid, behaviour in summary["behaviours"].items():
        if behaviour != "validator":
            out.setdefault(behaviour, []).append(int(uid))
    return out


def test_every_behaviour_ran(adversarial_run: dict) -> None:
    behaviours = _by_behaviour(adversarial_run["summary"])
    assert len(behaviours.pop("honest")) == 3
    assert set(behaviours) == set(CAUGHT_AS) | {"wrongdata", "noise", "weak-control"}
    assert adversarial_run["summary"]["completed"]


def test_each_adversary_is_caught_by_its_check(adversarial_run: dict) -> None:
    """Caught, and caught again: an attack tried once proves little. (Behaviours that wait
    for others once counted their waits as upload time, trained 0 steps from the second
    window on and were `late` once in 12.)"""
    behaviours = _by_behaviour(adversarial_run["summary"])
    reports = adversarial_run["reports"][1:]  # every miner is `missing` in the first
    for behaviour, statuses in CAUGHT_AS.items():
        (uid,) = behaviours[behaviour]
        seen = [p["status"] for r in reports for p in r["peers"] if p["uid"] == uid]
        caught = sum(status in statuses for status in seen)
        assert caught >= len(reports) / 3, (
            f"{behaviour} (uid {uid}) was {statuses} {caught} times: {seen}"
        )


def test_honest_miners_outearn_every_adversary(adversarial_run: dict) -> None:
    summary = adversarial_run["summary"]
    incentive = {int(u): v for u, v in summary["incentive"].items()}
    weights = {int(u): v for u, v in summary["chain_weights"].items()}
    behaviours = _by_behaviour(summary)
    honest = behaviours.pop("honest")
    adversaries = [uid for uids in behaviours.values() for uid in uids]
    assert min(incentive[u] for u in honest) > max(incentive[u] for u in adversaries), incentive
    for uid in adversaries:
        assert weights.get(uid, 0.0) < 0.01, (uid, summary["behaviours"][str(uid)], weights)
        assert incentive[uid] < 0.01, (uid, summary["behaviours"][str(uid)], incentive)


def test_more_compute_earns_more_among_honest_miners(adversarial_run: dict) -> None:
    """The honest miners have budgets of 2, 3 and 5 pages per window, and train what of it
    fits before each window's end (a prefix of their pages, declared as such). The largest
    budget must have processed more pages than the smallest, earned more over the run, and
    still earn at the end (the summary reports the rank correlation). Before miners trained
    to the deadline, the 5-page miner on a slow CI host finished training after 7 of 12
    windows had closed, uploaded nothing in them, and earned 0.041 against the 2-page
    miner's 0.330; in another run it earned 0.000. The run's mean, not the last sample: one
    sample ranks by luck (seen once: 0.11 against the 2-page miner's 0.42 at the end)."""
    summary = adversarial_run["summary"]
    incentive = {int(u): v for u, v in summary["incentive"].items()}
    budgets: dict[int, int] = {
        u: summary["budgets"][str(u)] for u in _by_behaviour(summary)["honest"]
    }
    smallest = min(budgets, key=lambda u: budgets[u])
    largest = max(budgets, key=lambda u: budgets[u])
    assert budgets[largest] > budgets[smallest]
    processed = {int(u): v for u, v in summary["pages_processed"].items()}
    assert processed[largest] > processed[smallest], (budgets, processed)
    earned = {int(u): v for u, v in summary["incentive_mean"].items()}  # over the whole run
    assert earned[largest] > earned[smallest], (budgets, processed, earned)
    assert incentive[largest] > 0.05, (budgets, incentive)
    assert "compute/incentive rank correlation" in adversarial_run["stdout"]


def test_adversarial_share_of_incentive_is_below_five_percent(adversarial_run: dict) -> None:
    summary = adversarial_run["summary"]
    behaviours = {int(u): b for u, b in summary["behaviours"].items() if b != "validator"}
    for measure in ("incentive", "incentive_late"):  # at the end, and over the second half
        incentive = {int(u): v for u, v in summary[measure].items()}
        total = sum(incentive.get(u, 0.0) for u in behaviours)
        adversarial = sum(incentive.get(u, 0.0) for u, b in behaviours.items() if b != "honest")
        assert total > 0 and adversarial / total < 0.05, (measure, incentive)


# Caught only statistically (own pages no better than random ones, measured on a few pages):
# its score can rise above zero for a window now and then, so it may enter a set, rarely.
STATISTICAL = {"wrongdata"}


def test_the_lead_aggregates_only_its_peer_set_of_honest_miners(adversarial_run: dict) -> None:
    from protocol.envelope import open_envelope
    from protocol.schemas import AggregationRecord, PeerSet

    run, lead = adversarial_run["run"], _hotkey(adversarial_run["run"], "validator0")
    from gauntlet.node.runtime import default_bucket

    bucket = run / "stores" / default_bucket(lead)
    behaviours = _by_behaviour(adversarial_run["summary"])
    honest = set(behaviours["honest"])
    statistical = {uid for name in STATISTICAL for uid in behaviours[name]}
    records = sorted(bucket.rglob("aggregations/*/*.json"))  # keys sort in window order
    last = open_envelope(records[-1].read_bytes(), AggregationRecord, expected_signer=lead)
    assert last.peer_set_window > 0, "no peer set was in force at the end of the run"
    published = [
        open_envelope(path.read_bytes(), PeerSet, expected_signer=lead)
        for path in sorted(bucket.rglob("peer-sets/*/*.json"))
    ]
    sets = {ps.window: {p.uid for p in ps.peers} for ps in published}
    aggregated = {c.uid for c in last.contributions}
    assert aggregated <= sets[last.peer_set_window], (aggregated, sets)
    # Every adversary a check catches outright is out of the model at the end of the run...
    assert aggregated <= honest | statistical, last.contributions
    newest = sets[max(sets)]
    assert newest and newest <= honest | statistical, sets
    # ...and the statistically caught one is kept out of most of the late sets.
    late = [sets[window] for window in sorted(sets)][len(sets) // 2 :]
    assert sum(bool(uids & statistical) for uids in late) < len(late) / 2, sets


def test_the_model_still_trains(adversarial_run: dict) -> None:
    summary = adversarial_run["summary"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"]


def test_report_and_no_process_survives(adversarial_run: dict) -> None:
    run = adversarial_run["run"]
    html = (run / "report" / "index.html").read_text()
    assert "<svg" in html and "copycat" in html
    assert adversarial_run["results"]["windows"]
    pids = adversarial_run["summary"]["pids"]
    nodes = len(adversarial_run["summary"]["behaviours"])  # 2 validators and the miners
    assert nodes == 17
    assert len(pids) == 1 + nodes  # the chain, the nodes
    assert not [pid for pid in pids if alive(pid)]


def test_the_runs_uploads_measure_again_at_the_rebuilt_model(adversarial_run: dict) -> None:
    """bench/recorded_updates.py opens every sealed upload with its revealed key and steps
    the initial model through the lead's records: the model it rebuilds is the run's (the
    validation loss the run reported after each window, exactly), and its variants measure
    as they say (the limit leaves an update at or under it as sent, and nothing along the
    last aggregate is another update), at each step asked for, to first order too (``--linear``,
    linear in the step); an honest upload's top share is near the window's median."""
    run, summary = adversarial_run["run"], adversarial_run["summary"]
    honest = [u for u, b in summary["behaviours"].items() if b == "honest"]
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "bench" / "recorded_updates.py"), str(run),
         "--uids", ",".join(honest), "--from", "2", "--variants", "sent,limit,novel",
         "--random-pages", "4", "--batches", "2", "--steps", "1,0.5", "--linear"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "recorded_updates" and report["machine"]["device"] == "cpu"
    assert len(report["validation_loss"]) >= len(adversarial_run["results"]["windows"]) - 1
    assert report["rebuilt_loss_gap"] <= 1e-4, report["validation_loss"]
    measured = [row for row in report["windows"] if row["gains"]]
    assert measured, report
    same_at_half = []  # half the step gave the full step's gain, to the report's 5 digits
    for row in measured:
        for uid, gains in row["gains"].items():
            assert all(math.isfinite(g) for g in gains.values()), (row["window"], uid)
            assert 0.5 < gains["top_share"] < 2, (row["window"], uid)  # honest: near the median
            if gains["limit@0.5"] == gains["limit"]:
                same_at_half.append((row["window"], uid))
            # first order is linear in the step: half the step, half the gain (5-digit rounding)
            assert abs(gains["limit@0.5~lin"] - gains["limit~lin"] / 2) <= 1e-5, (row, uid)
            if row["cosines"][uid] <= row["limits"]["limit"]:
                assert gains["limit"] == gains["sent"], (row["window"], uid)
                assert gains["limit@0.5"] == gains["sent@0.5"], (row["window"], uid)
            elif row["cosines"][uid] > 0.05:
                assert gains["novel"] != gains["sent"], (row["window"], uid)
    # Half the step is measured, not the full one again: its gain differs nearly everywhere.
    # Not everywhere: where the loss along an update bottoms out between the two steps they
    # can gain the same (CI, 2026-12-05: 0.02376 at both, one of 30 rows).
    rows = sum(len(row["gains"]) for row in measured)
    assert len(same_at_half) <= rows // 10, (same_at_half, rows)


def test_page_by_page_the_wrong_data_miners_declared_pages_gain_least(
    adversarial_run: dict,
) -> None:
    """bench/page_advantages.py measures each declared page's own advantage on the rebuilt
    model: the honest miners' pages gain more from their own update than from the other
    honest ones', and the wrong-data miner, which trained on none of the pages it declared,
    shows less on them than any honest miner shows on its own."""
    run, summary = adversarial_run["run"], adversarial_run["summary"]
    honest = [u for u, b in summary["behaviours"].items() if b == "honest"]
    (wrong,) = [u for u, b in summary["behaviours"].items() if b == "wrongdata"]
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "bench" / "page_advantages.py"), str(run),
         "--uids", ",".join([*honest, wrong]), "--controls", ",".join(honest),
         "--from", str(max(4, adversarial_run["plain_from"])), "--max-batches", "2"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "page_advantages" and report["machine"]["device"] == "cpu"
    per_uid = report["per_uid"]
    assert set(per_uid) == {*honest, wrong}, per_uid
    mean = {
        uid: sum(a for w in report["windows"] for a in w["advantages"].get(uid, []))
        / sum(len(w["advantages"].get(uid, [])) for w in report["windows"])
        for uid in per_uid
    }
    assert all(mean[u] > 0 for u in honest), mean
    assert mean[wrong] < min(mean[u] for u in honest), mean
    assert per_uid[wrong]["below"]["0.01"]["mean"] > max(
        per_uid[u]["below"]["0.01"]["mean"] for u in honest
    ), per_uid


def test_the_leads_evaluation_measures_again_from_its_secret(adversarial_run: dict) -> None:
    """bench/replay_evaluation.py rebuilds each window's model from the run's uploads and the
    lead's records and runs evaluation again with the lead's secret: every loss and score
    the lead journalled comes back (to float rounding across thread counts), so a
    validator's scores can be audited by whoever it shows its secret, and a rule can be
    tried on what a run measured."""
    run = adversarial_run["run"]
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "bench" / "replay_evaluation.py"), str(run),
         "--validator", "0", "--from", "2", "--typical", "0.1"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "replay_evaluation" and report["validator"] == "validator0"
    evaluated = [p for w in report["windows"] for p in w["peers"].values()]
    assert len(evaluated) >= 20, report["windows"]
    assert report["windows_without_a_logged_limit"] == [], report
    assert all(v <= 1e-3 for v in report["largest_difference"].values()), report
    assert all("typical_floor_advantage" in p for p in evaluated)
