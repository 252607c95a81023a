"""A validator's evaluation of recorded windows, measured again: does the run's data and the
validator's secret give back every loss it journalled, and what would a different control
floor have given?

A validator's scores are reproducible by whoever holds its secret: the model is rebuilt from
the run's uploads and the lead's records (bench/recorded_run.py), each window's evaluated
uploads are opened, scaled as the aggregate scales them and measured at the alignment limit
the validator logged for that window (``alignment with the last aggregate, limit ...``: it
depends on what the validator paid then, which the run does not otherwise keep), and
``gauntlet.node.evaluation.evaluate_peers`` runs with the validator's secret from the run's
state directory. Every evaluated peer's journal row (loss before and after on its own pages,
random-page improvement, own advantage) is printed beside the replayed one, with the largest
difference of each. A window whose limit the log does not give (a log cut short, or rotated)
is measured as sent and listed in ``windows_without_a_logged_limit``: its rows may differ.

``--typical F`` replays a second time with the control floor's median taken over only the
helpful updates whose random-page gain is at least ``F`` of the window's largest, a floor
that near-zero gains cannot pull down (the lead the adversarial run of 2026-12-05 was
reconstructed to, docs/scoring.md), and prints each peer's advantage under it.
``--batches N`` measures every replayed evaluation on its first ``N`` batches instead of
the run's, and ``--pay`` scores the journal as journalled and with the replayed rows (the
run's scoring settings) and prints each miner's final weight and run share under both: on
the same uploads, what a different measurement would have paid (docs/validator.md,
*Measured again on the same uploads*).

    .venv/bin/python bench/replay_evaluation.py RUN_DIR --validator 0 --from 4 --to 11
    .venv/bin/python bench/replay_evaluation.py RUN_DIR --from 1 --batches 4 --pay
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import torch  # noqa: E402

import gauntlet.node.evaluation as evaluation  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.recorded_run import RecordedRun, open_run  # noqa: E402
from gauntlet.config.schema import ScoringConfig  # noqa: E402
from gauntlet.localnet.recording import record_run, replay, run_share  # noqa: E402
from gauntlet.node.checks import measure_updates  # noqa: E402
from gauntlet.node.journal_replay import read_journal  # noqa: E402
from gauntlet.node.measured_update import measured_update  # noqa: E402
from gauntlet.node.window_report import measured  # noqa: E402
from gauntlet.score.control import MIN_CONTROL_STRENGTH  # noqa: E402
from gauntlet.score.loss import Evaluation  # noqa: E402
from gauntlet.train.outer import apply_delta  # noqa: E402

LIMIT_LINE = re.compile(
    r"window (\d+): alignment with the last aggregate, limit ([-0-9.]+); measured at it: (.*)$"
)
FIELDS = ("loss_before", "loss_after", "random_improvement", "own_advantage")


def logged_limits(log: Path) -> dict[int, tuple[float, list[int]]]:
    """window -> (the alignment limit, the uids measured at it), from a validator's log. A
    window logged twice (the lead's member check, then its evaluation) keeps the last."""
    out = {}
    for line in log.read_text().splitlines():
        if match := LIMIT_LINE.search(line):
            above = match.group(3).strip()
            uids = [] if above == "none" else list(ast.literal_eval(above))
            out[int(match.group(1))] = (float(match.group(2)), uids)
    return out


def typical_floor(fraction: float) -> Callable[[Mapping[int, float]], list[int]]:
    """:func:`gauntlet.score.control.strong_controls` with its median over only the helpful
    gains at least ``fraction`` of the largest."""

    def strong(gains: Mapping[int, float]) -> list[int]:
        helpful = {uid: g for uid, g in gains.items() if g > 0}
        if not helpful:
            return []
        top = max(helpful.values())
        floor = MIN_CONTROL_STRENGTH * statistics.median(
            g for g in helpful.values() if g >= fraction * top
        )
        return sorted(uid for uid, g in helpful.items() if g >= floor)

    return strong


@contextmanager
def control_rule(rule: Callable[[Mapping[int, float]], list[int]] | None) -> Iterator[None]:
    """Evaluation with ``rule`` choosing the strong controls (None: the node's)."""
    node_rule = evaluation.strong_controls
    if rule is not None:
        evaluation.strong_controls = rule
    try:
        yield
    finally:
        evaluation.strong_controls = node_rule


def journal_row(ev: Evaluation, scoring: ScoringConfig) -> list[float | None]:
    """``ev`` as a journal row's measured fields (:data:`FIELDS`), as the validator's window
    report writes them (:func:`gauntlet.node.window_report.measured`)."""
    fields = measured(ev, scoring)
    return [fields[name] for name in FIELDS]  # type: ignore[misc]


def replay_window(
    recorded: RecordedRun,
    window: int,
    secret: bytes,
    uids: list[int],
    passed: list[int],
    last: dict[str, torch.Tensor] | None,
    limit: tuple[float, list[int]] | None,
    batches: int | None = None,
) -> dict[int, Evaluation]:
    """The validator's evaluation of ``uids`` in ``window`` (``passed``: the uploads that
    passed its checks, whose norms the aggregate's scales come from), the model at
    θ_window."""
    config = recorded.config
    contributions = [recorded.uploads[(window, uid)] for uid in uids]
    norms, _ = measure_updates(
        [recorded.uploads[(window, uid)] for uid in passed], recorded.decoder, config.scoring
    )
    scales = evaluation.aggregate_scales(
        norms, config.compress.normalise, config.compress.clip_norm
    )
    limits = dict.fromkeys(limit[1], limit[0]) if limit is not None and last is not None else {}
    updates: dict[int, tuple[list[int], evaluation.Update]] = {
        c.uid: (
            evaluation.own_sample(
                secret, window, c.uid, list(c.manifest.page_ids), config.validator.own_pages  # type: ignore[union-attr]
            ),
            functools.partial(
                measured_update, c, recorded.decoder, scales[c.uid] * config.validator.own_step,
                last, limits.get(c.uid), config.validator.measure_thin,
            ),
        )
        for c in contributions
    }  # fmt: skip
    node = SimpleNamespace(
        config=config, dataset=recorded.dataset, model=recorded.model, device=torch.device("cpu")
    )
    random_step = config.validator.random_step / config.validator.own_step
    return evaluation.evaluate_peers(
        node,  # type: ignore[arg-type]
        window,
        secret,
        updates,
        batches=batches,
        random_step=random_step,
    )


def with_replayed_rows(
    journal: list[dict[str, Any]], windows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``journal`` (compact rows) with each replayed peer's measured fields replaced by the
    replay's (``windows``: the replayed entries); the rest as journalled."""
    replayed = {
        (entry["window"], int(uid)): peer["replayed"]
        for entry in windows
        for uid, peer in entry["peers"].items()
    }
    out = []
    for window in journal:
        peers = [
            [*row[:4], *replayed[(window["window"], row[0])]]
            if (window["window"], row[0]) in replayed
            else row
            for row in window["peers"]
        ]
        out.append({**window, "peers": peers})
    return out


def pay_of(
    run: Path, journal: list[dict[str, Any]], windows: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per miner, its final weight and its share of the run's weights when the journal is
    scored as journalled and with the replayed rows, at the run's own settings."""
    record = record_run(run)
    scored = {
        "journal": replay(record, journal, as_run=True),
        "replayed": replay(record, with_replayed_rows(journal, windows), as_run=True),
    }
    return {
        f"{uid} {behaviour}": {
            name: {
                "final_weight": round(weights[-1].get(int(uid), 0.0), 4),
                "run_share": round(run_share(weights, int(uid)), 4),
            }
            for name, weights in scored.items()
        }
        for uid, behaviour in sorted(record["behaviours"].items(), key=lambda kv: int(kv[0]))
    }


def _rounded(row: list[float | None]) -> list[float | None]:
    return [None if v is None else round(v, 6) for v in row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a localnet run directory")
    parser.add_argument("--validator", type=int, default=0, help="which validator (its name's N)")
    parser.add_argument("--from", dest="first", type=int, default=1, help="first window")
    parser.add_argument("--to", dest="last", type=int, default=None, help="last window")
    parser.add_argument("--typical", type=float, default=None, help="also replay this floor")
    parser.add_argument(
        "--dataset-dir", type=Path, default=None, help="the run's dataset, if it has moved"
    )
    parser.add_argument(
        "--batches", type=int, default=None, help="batches a measurement (default: the run's)"
    )
    parser.add_argument("--pay", action="store_true", help="score the replayed rows too")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    from bittensor import Wallet

    name = f"validator{args.validator}"
    hotkey = Wallet(name=name, path=str(args.run / "wallets")).hotkey.ss58_address
    state = args.run / "state"
    secret = bytes.fromhex((state / f"validator-{hotkey}.secret").read_text().strip())
    journal = {w["window"]: w for w in read_journal(state / f"validator-{hotkey}.jsonl").windows}
    limits = logged_limits(args.run / "logs" / f"{name}.log")

    recorded = open_run(args.run, args.dataset_dir)
    last_window = max(journal) if args.last is None else args.last
    start = recorded.start(args.first)
    last = recorded.aggregate(start - 1) if start > 0 else None
    windows: list[dict[str, Any]] = []
    largest = dict.fromkeys(FIELDS, 0.0)
    unlogged: list[int] = []  # windows whose alignment limit the log does not give
    for window in range(start, last_window + 1):
        peers = journal.get(window, {}).get("peers", [])
        rows = {row[0]: row for row in peers if len(row) > 3}  # the evaluated ones
        uids = sorted(u for u in rows if (window, u) in recorded.uploads)
        passed = sorted(r[0] for r in peers if r[1] == "ok" and (window, r[0]) in recorded.uploads)
        if window >= args.first and uids:
            replayed = replay_window(
                recorded, window, secret, uids, passed, last, limits.get(window), args.batches
            )
            logged_limit = limits.get(window)
            entry: dict[str, Any] = {"window": window, "limit": logged_limit, "peers": {}}
            if recorded.config.validator.measure_novel and last is not None and not logged_limit:
                unlogged.append(window)  # measured as sent: differences are expected here
            for uid, ev in replayed.items():
                again, logged = journal_row(ev, recorded.config.scoring), rows[uid][4:8]
                for field, a, b in zip(FIELDS, again, logged, strict=True):
                    if a is not None and b is not None:
                        largest[field] = max(largest[field], abs(a - b))
                entry["peers"][str(uid)] = {
                    "journal": _rounded(logged),
                    "replayed": _rounded(again),
                }
            if args.typical is not None:
                with control_rule(typical_floor(args.typical)):
                    other = replay_window(
                        recorded,
                        window,
                        secret,
                        uids,
                        passed,
                        last,
                        limits.get(window),
                        args.batches,
                    )
                for uid, ev in other.items():
                    advantage = ev.own_advantage(relative=True)
                    entry["peers"][str(uid)]["typical_floor_advantage"] = (
                        None if advantage is None else round(advantage, 6)
                    )
            windows.append(entry)
        aggregate = recorded.aggregate(window)
        if aggregate is not None:
            apply_delta(recorded.model, aggregate, recorded.config.train.outer_lr)
            last = aggregate
    print(
        json.dumps(
            {
                "bench": "replay_evaluation",
                "run": str(args.run),
                "validator": name,
                "fields": FIELDS,
                "largest_difference": largest,
                "windows_without_a_logged_limit": unlogged,
                "batches": args.batches or recorded.config.validator.eval_batches,
                "pay": pay_of(args.run, list(journal.values()), windows) if args.pay else None,
                "windows": windows,
                "machine": machine_info("cpu"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
