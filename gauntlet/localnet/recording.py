"""A localnet run's measurements, recorded once and re-scored in a second under other rules.

A run's validators journal a window report per window (``state/validator-*.jsonl``): per
uid its outcome and, when it was evaluated, its losses and own-page advantage. Those are
everything scoring reads, so :func:`record_run` keeps them (with each miner's behaviour
and declared pages, and the scoring settings the scenario changed), and :func:`replay`
feeds them through :func:`gauntlet.score.window.advance_window` under any scoring
overrides: the weights each window would have had. A rule change is then judged on real
measurements of honest and adversarial miners without rerunning the localnet (minutes),
and a recording that showed a failure stays a regression test (tests/score).

Two inputs are not in the reports. A window's sync observation (the report holds the
moving average): a replay takes it as 1, or 0 for a ``desynced`` outcome, which is what
the localnet's in-sync miners measure. And the pages a miner declared (its manifest):
a replay takes its pages per window from the run's results, which is what every localnet
miner declares (behaviours change what they train on, never the count they declare).

Every localnet run writes its recording to ``report/recording.json`` (:func:`write_recording`);
``record`` makes one from a run directory again:

    python -m gauntlet.localnet.recording replay runs/localnet/STAMP/report/recording.json
    python -m gauntlet.localnet.recording replay run.json --set weight_power=1
    python -m gauntlet.localnet.recording record runs/localnet/STAMP --label "seed 0" > run.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gauntlet.localnet.results import RunResults
from gauntlet.node.validator_state import journal_report
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window
from protocol.schemas import WindowReport

FIELDS = (
    "peers: [uid, status] or, when evaluated, [uid, status, loss_before, loss_after, "
    "random_improvement, own_advantage] (improvement and advantage relative)"
)
MAX_JOURNAL_BYTES = 64 * 2**20  # a 20-window run's journal is about 100 kB


def record_run(run: Path, label: str | None = None) -> dict[str, Any]:
    """The replayable record of the localnet run in ``run`` (a directory holding
    ``report/results.json``, ``node-config.json`` and ``state/validator-*.jsonl``): one
    journal per validator, each a list of windows of cut-down peer rows (:data:`FIELDS`).
    ``label`` defaults to the run's scenario, seed and directory name."""
    results = RunResults.load(run / "report" / "results.json")
    if label is None:
        label = f"{results.meta.scenario}, seed {results.meta.seed}, {run.name}"
    config = json.loads((run / "node-config.json").read_text())
    scoring = ScoringConfig.model_validate(config.get("scoring", {}))
    defaults = ScoringConfig().model_dump()
    changed = {k: v for k, v in scoring.model_dump().items() if v != defaults[k]}
    if not scoring.relative_improvement:
        raise ValueError("the recording keeps relative improvements; this run used absolute")
    miners = results.miners()
    journals = [_journal(path) for path in sorted((run / "state").glob("validator-*.jsonl"))]
    return {
        "label": label,
        "scenario": results.meta.scenario,
        "seed": results.meta.seed,
        "fields": FIELDS,
        "scoring": changed,
        "behaviours": {str(m.uid): m.behaviour for m in miners},
        "declared_pages": {str(m.uid): m.pages or 1 for m in miners},
        "journals": journals,
    }


def write_recording(run: Path) -> Path | None:
    """Write ``run/report/recording.json`` (the run's :func:`record_run`, labelled with its
    scenario and seed) at the end of a localnet run; None, with one line saying why, when
    the run cannot be recorded (no report, no journal line, absolute improvements)."""
    try:
        record = record_run(run)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"localnet: no recording of this run: {exc}", flush=True)
        return None
    out = run / "report" / "recording.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, separators=(",", ":")))
    tmp.replace(out)
    return out


def _journal(path: Path) -> list[dict[str, Any]]:
    """One validator's journal as recorded windows, in window order. A window journalled
    again after a crash counts once, by its last line (as for the validator itself); a torn
    line (a crash mid-write) is skipped."""
    if path.stat().st_size > MAX_JOURNAL_BYTES:
        raise ValueError(f"{path} is over {MAX_JOURNAL_BYTES} bytes")
    reports: dict[int, WindowReport] = {}
    for line in path.read_text().splitlines():
        try:
            report = journal_report(line)
        except ValueError:
            continue
        reports[report.window] = report
    windows = []
    for window, report in sorted(reports.items()):
        peers: list[list[Any]] = []
        for p in report.peers:
            row: list[Any] = [p.uid, p.status]
            if p.evaluated and p.status == "ok":
                row += [p.loss_before, p.loss_after, p.random_improvement, p.own_advantage]
            peers.append(row)
        windows.append({"window": window, "peers": peers})
    return windows


def observations(window: Mapping[str, Any], pages: Mapping[str, int]) -> dict[int, PeerWindow]:
    """One recorded window as what scoring reads: an evaluation whose relative random
    improvement and own-page advantage are the recorded ones."""
    seen = {}
    for uid, status, *measured in window["peers"]:
        evaluation = None
        if measured:
            before, after, random_gain, advantage = measured
            evaluation = Evaluation(
                before,
                after,
                1.0,  # relative random improvement = 1 - random_after / 1
                1.0 - random_gain,
                declared_pages=pages[str(uid)],
                # relative advantage = (control_after - after) / before
                control_after=None if advantage is None else after + advantage * before,
            )
        sync = 0.0 if status == "desynced" else 1.0
        seen[uid] = PeerWindow(f"uid-{uid}", status, sync, evaluation)
    return seen


def replay_states(
    record: Mapping[str, Any], journal: list[dict[str, Any]], **overrides: Any
) -> Iterator[tuple[ScoringConfig, ValidatorScores]]:
    """The scoring state after each window of one validator's ``journal``, scored with the
    run's settings and ``overrides`` (ScoringConfig fields)."""
    config = ScoringConfig(**{**record["scoring"], **overrides})
    state = ValidatorScores()
    for window in journal:
        state = advance_window(
            state, window["window"], observations(window, record["declared_pages"]), config
        )
        yield config, state


def replay(
    record: Mapping[str, Any], journal: list[dict[str, Any]], **overrides: Any
) -> list[dict[int, float]]:
    """Each window's weights of one validator's ``journal`` (see :func:`replay_states`)."""
    return [
        state.weights(config.weight_power)
        for config, state in replay_states(record, journal, **overrides)
    ]


def run_share(weights: list[dict[int, float]], uid: int) -> float:
    """``uid``'s share of one validator's weights over the run (each window weighs alike)."""
    return sum(w.get(uid, 0.0) for w in weights) / len(weights)


def mean_random_gain(journal: list[dict[str, Any]], uid: int, from_window: int) -> float | None:
    """The mean relative random-page improvement of ``uid``'s evaluated updates from
    ``from_window`` on (what its updates did for general text at the aggregate's scale);
    None if it was not evaluated then."""
    gains = [
        measured[2]
        for window in journal
        if window["window"] >= from_window
        for uid_, _, *measured in window["peers"]
        if uid_ == uid and measured
    ]
    return sum(gains) / len(gains) if gains else None


def shares_by_miner(record: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Per miner (``"uid behaviour pages"``), its run share at each validator and its final
    weight there, under the run's settings and ``overrides``."""
    miners = sorted(record["behaviours"].items(), key=lambda kv: int(kv[0]))
    keys = {int(uid): f"{uid} {b} {record['declared_pages'][uid]}" for uid, b in miners}
    out: dict[str, Any] = {key: {"run_share": [], "final_weight": []} for key in keys.values()}
    for journal in record["journals"]:
        weights = replay(record, journal, **overrides)
        for uid, key in keys.items():
            out[key]["run_share"].append(round(run_share(weights, uid), 4))
            out[key]["final_weight"].append(round(weights[-1].get(uid, 0.0), 4))
    return out


def _override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` of ScoringConfig; VALUE is read as JSON (numbers, true, objects), else
    taken as a string (``sync_shape=linear``)."""
    name, sep, value = text.partition("=")
    if not sep or name not in ScoringConfig.model_fields:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE of ScoringConfig, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="print a run's replayable record as JSON")
    rec.add_argument("run", type=Path, help="a localnet run directory (runs/<stamp>)")
    rec.add_argument("--label", help="what the run was (default: its scenario, seed, directory)")
    rep = sub.add_parser("replay", help="per miner, its run share and final weight")
    rep.add_argument("record", type=Path)
    rep.add_argument("--set", type=_override, action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args(argv)
    if args.command == "record":
        json.dump(record_run(args.run, args.label), sys.stdout, separators=(",", ":"))
    else:
        record = json.loads(args.record.read_text())
        try:  # a bad override is one line, not a traceback from the first replay
            ScoringConfig(**{**record["scoring"], **dict(args.set)})
        except ValidationError as exc:
            parser.error(f"--set: {exc}")
        json.dump(shares_by_miner(record, **dict(args.set)), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
