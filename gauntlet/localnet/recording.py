"""A localnet run's measurements, recorded once and re-scored in a second under other rules.

A run's validators journal a window report per window (``state/validator-*.jsonl``): per
uid its hotkey, outcome, sync observation and, when it was evaluated, its declared pages,
losses and own-page advantage. Those are everything scoring reads, so :func:`record_run`
keeps them (:func:`gauntlet.node.journal_replay.read_journal`), with each miner's behaviour
and pages and the scoring settings (those the scenario changed, and all of them as the run
had them), and :func:`replay` feeds them through :func:`gauntlet.score.window.advance_window`
under any scoring overrides: the weights each window would have had. By default a replay
takes the scenario's changes over today's defaults, so a recording judges the rules of the
code that replays it; ``--as-run`` takes every setting as the run had it, which gives back
its weights after a default has changed (``scoring.match_work`` since 2026-12-05). A rule
change is then judged on real measurements of honest and adversarial miners without
rerunning the localnet (minutes), and a recording that showed a failure stays a regression
test (tests/score). (A validator's own journal
replays the same way: ``gauntlet rescore``.)

Every localnet run writes its recording to ``report/recording.json`` (:func:`write_recording`);
``record`` makes one from a run directory again:

    python -m gauntlet.localnet.recording replay runs/localnet/STAMP/report/recording.json
    python -m gauntlet.localnet.recording replay run.json --set weight_power=1
    python -m gauntlet.localnet.recording replay run.json --from 20   # windows 20 on
    python -m gauntlet.localnet.recording replay run.json --as-run    # the run's own rules
    python -m gauntlet.localnet.recording ranks run.json --from 20    # the match's two ranks
    python -m gauntlet.localnet.recording record runs/localnet/STAMP --label "seed 0" > run.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gauntlet.localnet.results import RunResults
from gauntlet.node import journal_replay
from gauntlet.node.journal_replay import ROW, mean_random_gain, read_journal, run_share
from gauntlet.score.config import ScoringConfig
from gauntlet.score.ratings import match_ranks, mean_rank_scores
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import match_measures

__all__ = [
    "mean_random_gain",
    "mean_ranks",
    "record_run",
    "replay",
    "replay_states",
    "run_share",
]
FORMAT = 2  # 2: rows carry the sync observation and declared pages, windows the new hotkeys
# A recording made before it kept ``scoring_as_run`` cannot say which defaults it ran with.
NO_FULL_SETTINGS = (
    "this recording keeps only the settings its scenario changed (it was made before "
    "2026-12-05): replay it without --as-run, with --set for each default changed since "
    "the run (match_work=false for a run before 2026-12-05)"
)


def record_run(run: Path, label: str | None = None) -> dict[str, Any]:
    """The replayable record of the localnet run in ``run`` (a directory holding
    ``report/results.json``, ``node-config.json`` and ``state/validator-*.jsonl``): one
    journal per validator, each a list of windows of compact peer rows
    (:data:`gauntlet.node.journal_replay.ROW`). ``label`` defaults to the run's scenario,
    seed and directory name."""
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
    pages = {m.uid: m.pages or 1 for m in miners}  # for journals from before they held them
    journals, assumed = [], {"sync": 0, "pages": 0}
    for path in sorted((run / "state").glob("validator-*.jsonl")):
        journal = read_journal(path, pages)
        journals.append(journal.windows)
        assumed = {k: assumed[k] + journal.assumed[k] for k in assumed}
    return {
        "format": FORMAT,
        "label": label,
        "scenario": results.meta.scenario,
        "seed": results.meta.seed,
        "fields": ROW,
        "assumed": assumed,
        "scoring": changed,
        "scoring_as_run": scoring.model_dump(mode="json"),
        "behaviours": {str(m.uid): m.behaviour for m in miners},
        "declared_pages": {str(uid): n for uid, n in pages.items()},
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
    tmp.write_text(json.dumps(record, separators=(",", ":"), allow_nan=False))
    tmp.replace(out)
    return out


def scoring(record: Mapping[str, Any], as_run: bool = False, **overrides: Any) -> ScoringConfig:
    """The settings a recording is replayed with and ``overrides`` (ScoringConfig fields):
    the scenario's changes over today's defaults, or with ``as_run`` every setting as the run
    had it. ``ValueError`` for a recording of another format, one that predates
    ``scoring_as_run`` when ``as_run`` is asked, or bad overrides."""
    if record.get("format") != FORMAT:
        raise ValueError(
            f"recording format {record.get('format', 1)}, not {FORMAT}: make it again "
            "(python -m gauntlet.localnet.recording record RUN)"
        )
    if as_run and "scoring_as_run" not in record:
        raise ValueError(NO_FULL_SETTINGS)
    settings = record["scoring_as_run"] if as_run else record["scoring"]
    return ScoringConfig(**{**settings, **overrides})


def replay_states(
    record: Mapping[str, Any],
    journal: list[dict[str, Any]],
    as_run: bool = False,
    **overrides: Any,
) -> Iterator[tuple[ScoringConfig, ValidatorScores]]:
    """The scoring state after each window of one validator's ``journal``, scored with the
    recording's settings and ``overrides`` (:func:`scoring`)."""
    config = scoring(record, as_run, **overrides)
    for state in journal_replay.replay_states(journal, config):
        yield config, state


def replay(
    record: Mapping[str, Any],
    journal: list[dict[str, Any]],
    as_run: bool = False,
    **overrides: Any,
) -> list[dict[int, float]]:
    """Each window's weights of one validator's ``journal`` (see :func:`replay_states`)."""
    return journal_replay.replay(journal, scoring(record, as_run, **overrides))


def _miner_keys(record: Mapping[str, Any]) -> dict[int, str]:
    """uid -> ``"uid behaviour pages"``, in uid order: how the per-miner outputs are keyed."""
    miners = sorted(record["behaviours"].items(), key=lambda kv: int(kv[0]))
    return {int(uid): f"{uid} {b} {record['declared_pages'][uid]}" for uid, b in miners}


def shares_by_miner(
    record: Mapping[str, Any],
    from_window: int | None = None,
    as_run: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Per miner (``"uid behaviour pages"``), at each validator: its run share, its final
    weight, and the pages it declared per window in its evaluated updates (a window it was
    not evaluated in counts 0), under the run's settings and ``overrides``. With
    ``from_window`` the share and the pages are over that window and the later ones only
    (the whole run is still scored: a late window's weights rest on the earlier ones)."""
    keys = _miner_keys(record)
    out: dict[str, Any] = {
        key: {"run_share": [], "final_weight": [], "pages_per_window": []} for key in keys.values()
    }
    for journal in record["journals"]:
        weights = replay(record, journal, as_run, **overrides)
        kept = [
            (window, w)
            for window, w in zip(journal, weights, strict=True)
            if from_window is None or window["window"] >= from_window
        ]
        if not kept:
            raise ValueError(f"no window from {from_window} on in this recording")
        for uid, key in keys.items():
            out[key]["run_share"].append(round(run_share([w for _, w in kept], uid), 4))
            out[key]["final_weight"].append(round(weights[-1].get(uid, 0.0), 4))
            pages = sum(
                row[3]
                for window, _ in kept
                for row in window["peers"]
                if row[0] == uid and len(row) > 3
            )
            out[key]["pages_per_window"].append(round(pages / len(kept), 2))
    return out


def mean_ranks(
    record: Mapping[str, Any],
    from_window: int | None = None,
    as_run: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Per miner (``"uid behaviour pages"``), at each validator: its mean rank (1 best) among
    each window's measured updates by the two measures the rating match ranks (``random``:
    the random-page improvement; ``work``: declared pages times own-page advantage) and by
    the match itself as ``scoring.match_work`` plays it (``match``: the mean of the two), and
    in how many windows it was measured (``windows``; a miner never measured has ``None``
    ranks). With ``from_window``, that window and the later ones only."""
    config = scoring(record, as_run, **overrides)
    keys = _miner_keys(record)
    names = ("random", "work", "match")
    out: dict[str, Any] = {key: {n: [] for n in (*names, "windows")} for key in keys.values()}
    for journal in record["journals"]:
        ranks: dict[int, dict[str, list[int]]] = {u: {n: [] for n in names} for u in keys}
        for window, observed in journal_replay.observed_windows(journal):
            if from_window is not None and window < from_window:
                continue
            random, work = match_measures(observed, config)
            by = {
                "random": match_ranks(random),
                "work": match_ranks(work),
                "match": match_ranks(mean_rank_scores(random, work)),
            }
            for uid in random:
                for name in names:
                    ranks.setdefault(uid, {n: [] for n in names})[name].append(by[name][uid] + 1)
        for uid, key in keys.items():
            seen = ranks[uid]
            for name in names:
                mean = sum(seen[name]) / len(seen[name]) if seen[name] else None
                out[key][name].append(None if mean is None else round(mean, 2))
            out[key]["windows"].append(len(seen["random"]))
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
    rep = sub.add_parser(
        "replay", help="per miner, its run share, final weight and pages declared per window"
    )
    ranks = sub.add_parser(
        "ranks",
        help="per miner, its mean rank by the random pages, by the work and by the rating match",
    )
    for replaying in (rep, ranks):
        replaying.add_argument("record", type=Path)
        replaying.add_argument(
            "--set", type=_override, action="append", default=[], metavar="FIELD=VALUE"
        )
        replaying.add_argument(
            "--from",
            dest="from_window",
            type=int,
            metavar="WINDOW",
            help="from this window on (the late windows of a long run)",
        )
        replaying.add_argument(
            "--as-run",
            action="store_true",
            help="every scoring setting as the run had it (default: the scenario's changes "
            "over today's defaults)",
        )
    args = parser.parse_args(argv)
    if args.command == "record":
        json.dump(
            record_run(args.run, args.label), sys.stdout, separators=(",", ":"), allow_nan=False
        )
    else:
        record = json.loads(args.record.read_text())
        measure = shares_by_miner if args.command == "replay" else mean_ranks
        try:  # a bad override, an old recording or no such window is one line
            shares = measure(record, args.from_window, args.as_run, **dict(args.set))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            parser.error(str(exc))
        json.dump(shares, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
