"""The walking skeleton end to end: chain, validator and 3 miners as real processes."""

from __future__ import annotations

import json

import pytest
from integration_helpers import HONEST_WINDOWS, HonestRun, alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A newcomer gets no benefit of the doubt (uniqueness starts at 0): an honest miner earns
# once its own pages have shown they gain more than random ones, which in the first
# windows of training (everything improves alike) takes a few windows.
WINDOWS = HONEST_WINDOWS


@pytest.fixture(scope="module")
def localnet_run(honest_run: HonestRun) -> dict:
    summary = json.loads((honest_run.run / "summary.json").read_text())
    summary["stdout"] = honest_run.completed.stdout
    summary["returncode"] = honest_run.completed.returncode
    summary["run_dir"] = honest_run.run.parent
    return summary


def test_localnet_runs_its_windows_and_prints_a_table_per_window(localnet_run: dict) -> None:
    assert localnet_run["completed"]
    assert len(localnet_run["windows"]) == WINDOWS
    assert localnet_run["stdout"].count("validation loss") >= WINDOWS
    for header in ("uid", "status", "sync", "own", "random", "rating", "final", "weight"):
        assert header in localnet_run["stdout"]


def test_global_validation_loss_decreases(localnet_run: dict) -> None:
    assert localnet_run["validation_loss_last"] < localnet_run["validation_loss_first"]


def test_the_weight_on_chain_goes_to_honest_miners_whose_updates_are_all_valid(
    localnet_run: dict,
) -> None:
    """Any weight the validator set is on the three honest miners, and each of them
    passed every check in the last window. (Not every one of them need have weight yet: a
    newcomer earns once its own pages have shown a gain over random ones, which in the
    first windows of training is noise; one CI run of 5 windows left two at 0.)"""
    miners = [int(uid) for uid, role in localnet_run["roles"].items() if role.startswith("miner")]
    assert len(miners) == 3
    weights = {int(uid): w for uid, w in localnet_run["chain_weights"].items()}
    assert sum(weights.get(uid, 0.0) for uid in miners) == pytest.approx(sum(weights.values()))
    (results_path,) = localnet_run["run_dir"].glob("*/report/results.json")
    last = json.loads(results_path.read_text())["windows"][-1]["peers"]
    assert all(last[str(uid)]["status"] == "ok" for uid in miners), last


def test_no_process_survives_the_run(localnet_run: dict) -> None:
    assert localnet_run["pids"], "the run recorded no child PIDs"
    assert not [pid for pid in localnet_run["pids"] if alive(pid)]


def test_the_run_is_recorded_and_its_replay_gives_the_validators_scores(
    localnet_run: dict,
) -> None:
    """report/recording.json re-scored offline (gauntlet.localnet.recording) gives back every
    uid's uniqueness, rating, final score and weight in every window the validator
    journalled. (Ratings, not only weights: a 5-window run may pay no one yet, see above,
    and then weights alone would agree whatever the replay did.)"""
    from gauntlet.localnet.recording import replay_states

    (run,) = localnet_run["run_dir"].glob("*/report/recording.json")
    record = json.loads(run.read_text())
    assert record["behaviours"] == {uid: "honest" for uid in record["behaviours"]}
    assert len(record["behaviours"]) == 3
    assert record["assumed"] == {"sync": 0, "pages": 0}  # the journal holds every input
    (journal,) = record["journals"]
    assert len(journal) >= WINDOWS
    (journal_path,) = run.parents[1].glob("state/validator-*.jsonl")
    reported = {}
    for line in journal_path.read_text().splitlines():
        report = json.loads(line)
        reported[report["window"]] = {p["uid"]: p for p in report["peers"]}
    ratings = set()
    for recorded, (config, state) in zip(journal, replay_states(record, journal), strict=True):
        window = recorded["window"]
        want, weights = reported[window], state.weights(config.weight_power)
        assert weights.keys() <= want.keys()
        for uid, peer in want.items():
            replayed = state.peers.get(uid)
            if replayed is None:
                assert peer["rating"] is None and peer["weight"] == 0.0
                continue
            got = {
                "uniqueness": replayed.uniqueness,
                "rating": replayed.rating.ordinal(config.ordinal_z),
                "score": replayed.score,
                "weight": weights.get(uid, 0.0),
            }
            assert got == pytest.approx({k: peer[k] for k in got}, abs=1e-9), (window, uid)
            ratings.add(round(peer["rating"], 9))
    assert len(ratings) > 2  # evaluations moved the ratings, and the replay followed them


def test_the_lead_mirrors_what_it_records_and_the_miners_step_by_every_record(
    localnet_run: dict,
) -> None:
    """Each payload a record names has the lead's copy beside the record, the very bytes it
    names (gauntlet/node/mirrors.py), and every miner applied every record it waited for."""
    import hashlib

    from protocol.envelope import open_envelope
    from protocol.keys import mirror_key
    from protocol.schemas import AggregationRecord

    (run,) = localnet_run["run_dir"].iterdir()
    records = sorted(run.glob("stores/*/gauntlet/v*/aggregations/*/*.json"))
    named = 0
    for path in records:
        record = open_envelope(path.read_bytes(), AggregationRecord)
        bucket = path.parents[4]
        for c in record.contributions:
            copy = bucket / mirror_key(record.window, c.hotkey)
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == c.sha256
            named += 1
    assert named >= 3
    for log in run.glob("logs/miner*.log"):
        text = log.read_text()
        assert "cannot apply the lead's record" not in text and "diverged" not in text, log
