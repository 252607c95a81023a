"""A run's recording replays to the weights its validator set, window for window.

The journal here is written the validator's way (``window_report`` of a real scoring state,
appended by ``ValidatorFiles.append_journal``) from scoring driven by known evaluations,
so the replay must give back exactly the weights each report holds.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from gauntlet.config.schema import GauntletConfig
from gauntlet.localnet.recording import main as recording_main
from gauntlet.localnet.recording import (
    mean_random_gain,
    mean_ranks,
    record_run,
    replay,
    run_share,
    shares_by_miner,
    write_recording,
)
from gauntlet.localnet.results import RunMeta, RunResults
from gauntlet.node.checks import Verdict
from gauntlet.node.validator_state import ValidatorFiles
from gauntlet.node.window_report import window_report
from gauntlet.score.loss import Evaluation
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window

PAGES = {1: 1, 2: 3, 3: 5, 4: 3, 5: 2}  # uid -> declared pages
BEHAVIOURS = {1: "honest", 2: "honest", 3: "honest", 4: "wrongdata", 5: "desync"}
WINDOWS = range(3, 15)
SCORING = {"eval_budget": 3, "indicator_margin": 0.02}  # eval_budget < miners: some wait


def _evaluation(rng: random.Random, uid: int, pages: int) -> Evaluation:
    """Losses whose random gain grows with the pages, and an own-page advantage that is
    positive for honest miners and about 0 for the wrong-data one."""
    before = rng.uniform(2.0, 4.0)
    gain = 0.004 * pages - 0.006 + rng.gauss(0, 0.004)
    after = before * (1 - gain - 0.02)
    advantage = rng.gauss(0, 0.01) + (0.0 if BEHAVIOURS[uid] == "wrongdata" else 0.03)
    return Evaluation(
        before, after, 3.0, 3.0 * (1 - gain), declared_pages=pages,
        control_after=after + advantage * before,
    )  # fmt: skip


def _outcome(uid: int, window: int, rng: random.Random) -> str:
    if BEHAVIOURS[uid] == "desync":
        return "desynced" if window % 3 == 0 else "ok"
    return "missing" if rng.random() < 0.1 else "ok"


def _seen(uid: int, window: int, outcome: str, varied: bool) -> tuple[str, float, int]:
    """(hotkey, sync observation, declared pages) of ``uid`` in ``window``. ``varied``: as
    on a real network, uid 4 changes hands at window 9, sync is partial at times and uid 2
    declares a different number of pages every other window; else what a localnet run
    sees (and what a journal without those fields is replayed with)."""
    if outcome == "desynced":
        sync = 0.0
    else:
        sync = 0.6 + 0.1 * (window % 4) if varied and uid == 3 else 1.0
    hotkey = f"miner{uid}" + ("new" if varied and uid == 4 and window >= 9 else "")
    pages = PAGES[uid] + (window % 2 if varied and uid == 2 else 0)
    return hotkey, sync, pages


def _write_run(
    run: Path, seed: int, varied: bool = True, scoring: dict | None = None
) -> list[list[dict[int, float]]]:
    """A run directory of two validators scored with ``scoring`` (default ``SCORING``);
    returns the weights each reported per window."""
    results = RunResults(meta=RunMeta(scenario="recording-test", seed=seed))
    results.add_node("validator0", 0, "validator")
    results.add_node("validator1", 6, "validator")
    for uid, behaviour in BEHAVIOURS.items():
        results.add_node(f"miner{uid}", uid, "miner", behaviour, pages=PAGES[uid])
    (run / "report").mkdir(parents=True)
    results.write(run / "report" / "results.json")
    config = GauntletConfig.model_validate({"scoring": SCORING if scoring is None else scoring})
    (run / "node-config.json").write_text(config.model_dump_json())
    (run / "state").mkdir()
    reported = []
    for v, hotkey in enumerate(("5ValidatorZero", "5ValidatorOne")):
        rng = random.Random(seed * 10 + v)
        files, state, weights = ValidatorFiles(run / "state", hotkey), ValidatorScores(), []
        for window in WINDOWS:
            verdicts, observations, evaluations = {}, {}, {}
            for uid in BEHAVIOURS:
                outcome = _outcome(uid, window, rng)
                miner, sync, pages = _seen(uid, window, outcome, varied)
                verdicts[uid] = Verdict(uid, miner, outcome, sync)
                evaluation = _evaluation(rng, uid, pages) if outcome == "ok" else None
                if evaluation and varied and uid == 4 and window in (7, 8):
                    # its update blows the model up: the journal holds null, scoring a penalty
                    evaluation = replace(evaluation, own_after=math.inf)
                if evaluation and rng.random() < 0.6:  # evaluated this window
                    evaluations[uid] = evaluation
                observations[uid] = PeerWindow(miner, outcome, sync, evaluations.get(uid))
            state = advance_window(state, window, observations, config.scoring)
            report = window_report(
                window, hotkey, 1, verdicts, evaluations, state, config.scoring, (3.0, 2.9)
            )
            files.append_journal(report, "0" * 64)
            weights.append({p.uid: p.weight for p in report.peers})
        reported.append(weights)
    return reported


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_recording_replays_to_the_weights_its_validators_reported(
    tmp_path: Path, seed: int
) -> None:
    reported = _write_run(tmp_path, seed)
    record = record_run(tmp_path, "test run")
    assert record["scoring"] == SCORING  # only what the run changed from the defaults
    assert record["declared_pages"] == {str(u): p for u, p in PAGES.items()}
    assert len(record["journals"]) == 2
    # journals come in file-name order: validator-5ValidatorOne before validator-5ValidatorZero
    for journal, weights in zip(record["journals"], reported[::-1], strict=True):
        replayed = replay(record, journal)
        assert [w["window"] for w in journal] == list(WINDOWS)
        assert len(replayed) == len(weights)
        for got, want in zip(replayed, weights, strict=True):
            assert got == pytest.approx({u: want.get(u, 0.0) for u in got}, abs=1e-12)
        assert any(w.get(3, 0.0) > 0 for w in weights)  # the run paid someone
    assert record["assumed"] == {"sync": 0, "pages": 0}


def test_a_window_journalled_again_counts_once_and_a_torn_line_is_skipped(
    tmp_path: Path,
) -> None:
    reported = _write_run(tmp_path, 0)
    (journal_path,) = [p for p in (tmp_path / "state").glob("*.jsonl") if "Zero" in p.name]
    lines = journal_path.read_text().splitlines()
    # a crash after window 5's line: the validator journals window 5 again, then dies mid-line
    window_5 = next(line for line in lines if json.loads(line)["window"] == 5)
    lines.insert(lines.index(window_5) + 1, window_5)
    journal_path.write_text("\n".join(lines) + "\n" + lines[-1][: len(lines[-1]) // 2])
    record = record_run(tmp_path, "crashed")
    journal = record["journals"][1]  # ...One sorts before ...Zero
    assert [w["window"] for w in journal] == list(WINDOWS)
    replayed = replay(record, journal)
    assert replayed[-1] == pytest.approx({u: reported[0][-1].get(u, 0.0) for u in replayed[-1]})


def test_overrides_change_the_replay_and_shares_are_per_miner(tmp_path: Path) -> None:
    _write_run(tmp_path, 1)
    record = record_run(tmp_path, "test run")
    journal = record["journals"][0]
    as_run = replay(record, journal)
    flat = replay(record, journal, weight_power=1.0)
    assert as_run != flat
    shares = shares_by_miner(record)
    assert set(shares) == {f"{u} {b} {PAGES[u]}" for u, b in BEHAVIOURS.items()}
    assert shares["3 honest 5"]["run_share"][0] == round(run_share(as_run, 3), 4)
    five_pages, one_page = (mean_random_gain(journal, uid, from_window=6) for uid in (3, 1))
    assert five_pages is not None and one_page is not None and five_pages > one_page
    assert mean_random_gain(journal, 3, from_window=99) is None


def test_shares_and_pages_can_be_taken_from_a_later_window(tmp_path: Path) -> None:
    """``--from``: a long run's late windows alone. The share is the mean of those windows'
    replayed weights; the pages are what the miner declared in its evaluated updates there
    per window (uid 2 declares 3 and 4 pages in turn; a window it was not evaluated counts
    0), so at most its largest declaration and at least 0."""
    _write_run(tmp_path, 3)
    record = record_run(tmp_path, "late windows")
    journal = record["journals"][0]
    weights = replay(record, journal)
    late = [w for window, w in zip(journal, weights, strict=True) if window["window"] >= 9]
    shares = shares_by_miner(record, from_window=9)
    assert shares["3 honest 5"]["run_share"][0] == round(run_share(late, 3), 4)
    assert (
        shares["3 honest 5"]["run_share"][0]
        != shares_by_miner(record)["3 honest 5"]["run_share"][0]
    )
    evaluated = [
        row[3] for window in journal if window["window"] >= 9 for row in window["peers"]
        if row[0] == 2 and len(row) > 3
    ]  # fmt: skip
    assert evaluated and set(evaluated) <= {3, 4}
    assert shares["2 honest 3"]["pages_per_window"][0] == round(sum(evaluated) / len(late), 2)
    assert shares["5 desync 2"]["pages_per_window"][0] < 2  # desynced windows count 0
    with pytest.raises(ValueError, match="no window from 99"):
        shares_by_miner(record, from_window=99)


def test_the_command_records_and_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_run(tmp_path / "run", 2)
    assert recording_main(["record", str(tmp_path / "run"), "--label", "seed 2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["label"] == "seed 2" and record["seed"] == 2
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert recording_main(["replay", str(tmp_path / "record.json"), "--set", "weight_power=1"]) == 0
    shares = json.loads(capsys.readouterr().out)
    assert shares == shares_by_miner(record, weight_power=1)
    assert (
        recording_main(["replay", str(tmp_path / "record.json"), "--set", "sync_shape=linear"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == shares_by_miner(record, sync_shape="linear")
    assert recording_main(["replay", str(tmp_path / "record.json"), "--from", "9"]) == 0
    assert json.loads(capsys.readouterr().out) == shares_by_miner(record, 9)
    with pytest.raises(SystemExit):
        recording_main(["replay", str(tmp_path / "record.json"), "--from", "99"])
    for bad in ("no_such_field=1", "weight_power=-1", "weight_power"):
        with pytest.raises(SystemExit):
            recording_main(["replay", str(tmp_path / "record.json"), "--set", bad])
    (tmp_path / "old.json").write_text(json.dumps({**record, "format": 1}))
    with pytest.raises(SystemExit):
        recording_main(["replay", str(tmp_path / "old.json")])
    assert "recording format 1, not 2: make it again" in capsys.readouterr().err


def test_after_a_default_changes_as_run_replays_the_runs_own_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording keeps the settings its scenario changed (a replay judges today's rules
    with them) and every setting as the run had it (``--as-run``). Recorded while
    weight_power 1 was the default, a run scored with 1 lists no change; replayed after the
    default became 2 it takes the new one, and ``as_run`` gives back its own weights."""
    import gauntlet.localnet.recording as recording
    from gauntlet.score.config import ScoringConfig

    run_rules = {**SCORING, "weight_power": 1.0}
    reported = _write_run(tmp_path / "run", 4, scoring=run_rules)

    class OldDefaults(ScoringConfig):
        weight_power: float = 1.0

    with monkeypatch.context() as patch:
        patch.setattr(recording, "ScoringConfig", OldDefaults)
        record = record_run(tmp_path / "run", "old defaults")
    assert record["scoring"] == SCORING  # weight_power was the default then
    assert record["scoring_as_run"]["weight_power"] == 1.0
    assert recording.scoring(record, as_run=True) == ScoringConfig(**run_rules)
    journal, weights = record["journals"][0], reported[1]  # ...One sorts before ...Zero
    by_today = replay(record, journal)
    as_run = replay(record, journal, as_run=True)
    for got, want in zip(as_run, weights, strict=True):
        assert got == pytest.approx({u: want.get(u, 0.0) for u in got}, abs=1e-12)
    assert by_today[-1] != pytest.approx(as_run[-1])
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert recording_main(["replay", str(tmp_path / "record.json"), "--as-run"]) == 0
    assert json.loads(capsys.readouterr().out) == shares_by_miner(record, as_run=True)
    # a recording made before the full settings were kept says so instead of guessing
    del record["scoring_as_run"]
    (tmp_path / "older.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="keeps only the settings its scenario changed"):
        replay(record, journal, as_run=True)
    with pytest.raises(SystemExit):
        recording_main(["replay", str(tmp_path / "older.json"), "--as-run"])
    assert "replay it without --as-run" in capsys.readouterr().err
    assert replay(record, journal) == by_today


def test_ranks_are_the_matchs_two_measures_ranked_per_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ranks``: per miner and validator, its mean rank (1 best) by the random pages, by
    the work on its own pages and by the match, over the windows it was measured in. Here
    recomputed from the recording's rows: the work is pages times advantage (the run's
    every measured update has a control or falls back, as scoring does)."""
    _write_run(tmp_path / "run", 5)
    record = record_run(tmp_path / "run", "ranks")
    ranks = mean_ranks(record, from_window=6)
    journal = record["journals"][0]
    measured = [
        {row[0]: row for row in window["peers"] if row[1] == "ok" and len(row) > 3}
        for window in journal
        if window["window"] >= 6
    ]
    for uid, behaviour in BEHAVIOURS.items():
        mine = ranks[f"{uid} {behaviour} {PAGES[uid]}"]
        windows = [rows for rows in measured if uid in rows]
        assert mine["windows"][0] == len(windows)
        if not windows:
            assert mine["random"][0] is None
            continue
        by_random = [1 + sum(r[6] > rows[uid][6] for r in rows.values()) for rows in windows]
        assert mine["random"][0] == round(sum(by_random) / len(by_random), 2)
        for name in ("random", "work", "match"):
            assert 1 <= mine[name][0] <= max(len(rows) for rows in windows)
    assert any(r["windows"][0] for r in ranks.values())
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert recording_main(["ranks", str(tmp_path / "record.json"), "--from", "6"]) == 0
    assert json.loads(capsys.readouterr().out) == ranks


def test_a_run_writes_its_recording_or_says_in_one_line_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_run(tmp_path / "run", 0)
    path = write_recording(tmp_path / "run")
    assert path == tmp_path / "run" / "report" / "recording.json"
    written = json.loads(path.read_text())
    assert written["label"] == "recording-test, seed 0, run"
    assert written["journals"] == record_run(tmp_path / "run", "")["journals"]
    (tmp_path / "empty").mkdir()
    assert write_recording(tmp_path / "empty") is None
    assert capsys.readouterr().out.count("localnet: no recording of this run:") == 1


def test_a_journal_from_before_sync_and_pages_were_kept_replays_on_what_it_assumes(
    tmp_path: Path,
) -> None:
    """Lines without ``sync_observed`` and ``declared_pages`` replay with sync 1 (0 when
    desynced) and the run's pages, and the recording counts what it assumed."""
    reported = _write_run(tmp_path, 0, varied=False)
    for path in (tmp_path / "state").glob("*.jsonl"):
        lines = []
        for line in path.read_text().splitlines():
            report = json.loads(line)
            for peer in report["peers"]:
                del peer["sync_observed"], peer["declared_pages"]
            lines.append(json.dumps(report))
        path.write_text("\n".join(lines) + "\n")
    record = record_run(tmp_path, "old journal")
    assert record["assumed"]["sync"] > 0 and record["assumed"]["pages"] > 0
    for journal, weights in zip(record["journals"], reported[::-1], strict=True):
        for got, want in zip(replay(record, journal), weights, strict=True):
            assert got == pytest.approx({u: want.get(u, 0.0) for u in got}, abs=1e-12)


def test_rescore_replays_a_validators_journal_under_its_settings_and_under_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``gauntlet rescore JOURNAL --config CONFIG``: the validator's own settings give back
    every weight it reported (a uid that changed hands, partial sync and varying declared
    pages included); ``--scoring.*`` flags replay it under others."""
    from gauntlet.cli import main as cli_main

    reported = _write_run(tmp_path, 1)
    journal = tmp_path / "state" / "validator-5ValidatorZero.jsonl"
    config = str(tmp_path / "node-config.json")
    assert cli_main(["rescore", str(journal), "--config", config, "--json"]) == 0
    as_run = json.loads(capsys.readouterr().out)
    assert as_run["largest_weight_difference"] < 1e-12
    assert as_run["windows"] == [WINDOWS[0], WINDOWS[-1]]
    assert as_run["assumed"] == {"sync": 0, "pages": 0}
    assert as_run["miners"]["4"]["hotkey"] == "miner4new"  # the uid's owner at the end
    for uid in BEHAVIOURS:
        shares = as_run["miners"][str(uid)]["run_share"]
        assert shares["replayed"] == shares["reported"] == round(run_share(reported[0], uid), 4)
    argv = ["rescore", str(journal), "--config", config, "--scoring.weight_power", "1"]
    assert cli_main([*argv, "--json"]) == 0
    flat = json.loads(capsys.readouterr().out)
    assert flat["largest_weight_difference"] > 0.01
    assert (
        flat["miners"]["3"]["run_share"]["replayed"]
        < as_run["miners"]["3"]["run_share"]["replayed"]
    )
    assert cli_main(argv) == 0  # the table
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"{journal}: windows 3-14, largest weight difference " + format(
        flat["largest_weight_difference"], ".6f"
    )
    share = flat["miners"]["3"]["run_share"]
    row = next(line.split() for line in table[3:] if line.split()[0] == "3")
    assert row[:4] == ["3", "miner3", f"{share['reported']:.4f}", f"{share['replayed']:.4f}"]
    assert len(table) == 3 + len(BEHAVIOURS)
    assert cli_main(["rescore", str(tmp_path / "missing.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("gauntlet rescore: ")


def test_non_finite_losses_written_as_null_replay_the_same(tmp_path: Path) -> None:
    """The journal keeps an update that blew the model up as ``Infinity``; a report as the
    bucket serves it (strict JSON) has ``null``. Both replay to the reported weights."""
    reported = _write_run(tmp_path, 0)
    nulls = 0
    for path in (tmp_path / "state").glob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for line in lines:
            for peer in line["peers"]:
                for key, value in peer.items():
                    if isinstance(value, float) and not math.isfinite(value):
                        peer[key], nulls = None, nulls + 1
        path.write_text("".join(json.dumps(line, allow_nan=False) + "\n" for line in lines))
    assert nulls > 0
    record = record_run(tmp_path, "strict JSON")
    for journal, weights in zip(record["journals"], reported[::-1], strict=True):
        for got, want in zip(replay(record, journal), weights, strict=True):
            assert got == pytest.approx({u: want.get(u, 0.0) for u in got}, abs=1e-12)
