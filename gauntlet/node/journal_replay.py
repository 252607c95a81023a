"""A validator's journal re-scored under other scoring settings: what its weights would
have been.

Every window a validator journals its report (``state/validator-H.jsonl``; protocol/SPEC.md
8.4 and 8.5): per uid its hotkey, outcome, this window's sync observation and, when it was
evaluated, the pages it declared, its losses, random-page improvement and own-page
advantage. That is everything scoring reads, so the journal can be fed through the
validator's own :func:`~gauntlet.score.window.advance_window` again under any
:class:`~gauntlet.score.config.ScoringConfig`, and under the settings it ran with gives back
every weight it reported. A rule change is then judged on a validator's real measurements,
in a second, before it is deployed (``gauntlet rescore``, docs/validator.md); the localnet
keeps a run's journals the same way (:mod:`gauntlet.localnet.recording`).

Journals written before 2026-12-02 lack two inputs, which :func:`read_journal` then
assumes and counts: the sync observation (1, or 0 for a ``desynced`` outcome, which is what
in-sync miners measure) and the declared pages (``pages`` given, else 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gauntlet.node.validator_state import journal_report
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.state import ValidatorScores
from gauntlet.score.window import NO_FINGERPRINT, PeerWindow, advance_window
from protocol.schemas import PeerResult

ROW = (
    "peers: [uid, status, sync] or, when evaluated, [uid, status, sync, pages, loss_before, "
    "loss_after, random_improvement, own_advantage] (sync: the window's observation, null "
    "without a fingerprint; improvement and advantage relative); hotkeys: the uids whose "
    "hotkey is new in this window"
)


@dataclass(frozen=True)
class Journal:
    """One validator's journal as a replay reads it."""

    windows: list[dict[str, Any]]  # in window order: window, hotkeys (the new ones), peers
    reported: list[dict[int, float]]  # per window, the weights its report gave
    assumed: dict[str, int]  # values taken by assumption: {"sync": n, "pages": n}
    hotkeys: dict[int, str]  # each uid's hotkey at the journal's end


def read_journal(path: Path, pages: Mapping[int, int] | None = None) -> Journal:
    """The journal at ``path`` as compact rows (:data:`ROW`), read a line at a time (a
    journal grows by one report per window; only its rows are kept). A window journalled
    again after a crash counts once, by its last line (as for the validator itself); a
    torn line (a crash mid-write) is skipped. ``pages``: uid -> the pages to assume for
    lines from before ``declared_pages`` was journalled (else 1)."""
    assumed = {"sync": 0, "pages": 0}
    by_window: dict[int, tuple[list[tuple[str, list[Any]]], dict[int, float], dict[str, int]]] = {}
    with path.open() as lines:
        for line in lines:
            try:
                report = journal_report(line)
            except ValueError:
                continue
            guessed = {"sync": 0, "pages": 0}
            rows = [(p.hotkey, _row(p, pages or {}, guessed)) for p in report.peers]
            by_window[report.window] = (rows, {p.uid: p.weight for p in report.peers}, guessed)
    hotkeys: dict[int, str] = {}
    windows, reported = [], []
    for window, (rows, weights, guessed) in sorted(by_window.items()):
        new = {row[0]: hotkey for hotkey, row in rows if hotkeys.get(row[0]) != hotkey}
        hotkeys.update(new)
        windows.append(
            {
                "window": window,
                "hotkeys": {str(uid): hotkey for uid, hotkey in new.items()},
                "peers": [row for _, row in rows],
            }
        )
        reported.append(weights)
        assumed = {k: assumed[k] + guessed[k] for k in assumed}
    return Journal(windows, reported, assumed, hotkeys)


def _row(peer: PeerResult, pages: Mapping[int, int], assumed: dict[str, int]) -> list[Any]:
    sync = peer.sync_observed
    if sync is None and peer.status not in NO_FINGERPRINT:  # a line from before it was kept
        sync = 0.0 if peer.status == "desynced" else 1.0
        assumed["sync"] += 1
    row: list[Any] = [peer.uid, peer.status, sync]
    if peer.evaluated and peer.status == "ok":
        declared = peer.declared_pages
        if declared is None:
            declared = pages.get(peer.uid, 1)
            assumed["pages"] += 1
        measured = (peer.loss_before, peer.loss_after, peer.random_improvement, peer.own_advantage)
        row += [declared, *(_finite(x) for x in measured)]
    return row


def _finite(value: float | None) -> float | None:
    """A recording is strict JSON: a non-finite loss (the journal's ``Infinity``) is null,
    as in the report the bucket serves; scoring treats both alike."""
    return value if value is None or math.isfinite(value) else None


def observations(window: Mapping[str, Any], hotkeys: Mapping[str, str]) -> dict[int, PeerWindow]:
    """One journalled window as what scoring reads (``hotkeys``: each uid's hotkey then): an
    evaluation whose relative random improvement and own-page advantage are the journalled
    ones."""
    seen = {}
    for uid, status, sync, *measured in window["peers"]:
        evaluation = None
        if measured:
            pages, before, after, random_gain, advantage = measured
            if random_gain is None:
                raise ValueError(f"window {window['window']}: uid {uid} evaluated without gain")
            # a non-finite loss is journalled as null: the validator's own measurement
            # failing (before), or the update blowing the model up (after: a penalty)
            before = math.nan if before is None else before
            after = math.inf if after is None else after
            control = None
            if advantage is not None:  # relative advantage = (control - after) / before
                control = after + advantage * before if math.isfinite(after) else before
            evaluation = Evaluation(
                before,
                after,
                1.0,  # relative random improvement = 1 - random_after / 1
                1.0 - random_gain,
                declared_pages=pages,
                control_after=control,
            )
        sync = 1.0 if sync is None else sync  # no fingerprint: scoring leaves sync alone
        seen[uid] = PeerWindow(hotkeys[str(uid)], status, sync, evaluation)
    return seen


def observed_windows(
    journal: list[dict[str, Any]],
) -> Iterator[tuple[int, dict[int, PeerWindow]]]:
    """Each window of ``journal`` (:func:`read_journal`) and what scoring reads of it, each
    uid under the hotkey it had then."""
    hotkeys: dict[str, str] = {}
    for window in journal:
        hotkeys.update(window.get("hotkeys", {}))
        yield window["window"], observations(window, hotkeys)


def replay_states(
    journal: list[dict[str, Any]], config: ScoringConfig
) -> Iterator[ValidatorScores]:
    """The scoring state after each window of ``journal`` (:func:`read_journal`), scored
    under ``config``, which must measure improvements relatively, as the journal does."""
    if not config.relative_improvement:
        raise ValueError("a journal is replayed with relative improvements")
    state = ValidatorScores()
    for window, seen in observed_windows(journal):
        state = advance_window(state, window, seen, config)
        yield state


def replay(journal: list[dict[str, Any]], config: ScoringConfig) -> list[dict[int, float]]:
    """Each window's weights of ``journal`` under ``config``."""
    return [state.weights(config.weight_power) for state in replay_states(journal, config)]


def run_share(weights: list[dict[int, float]], uid: int) -> float:
    """``uid``'s share of one validator's weights over the run (each window weighs alike)."""
    return sum(w.get(uid, 0.0) for w in weights) / len(weights)


def mean_random_gain(journal: list[dict[str, Any]], uid: int, from_window: int) -> float | None:
    """The mean relative random-page improvement of ``uid``'s evaluated updates from
    ``from_window`` on (what its updates did for general text at the aggregate's scale);
    None if it was not evaluated then."""
    gains = [
        measured[3]
        for window in journal
        if window["window"] >= from_window
        for uid_, _, _, *measured in window["peers"]
        if uid_ == uid and measured
    ]
    return sum(gains) / len(gains) if gains else None


def rescore(path: Path, config: ScoringConfig) -> dict[str, Any]:
    """``gauntlet rescore``: per uid of the journal at ``path``, its share of the weights
    over the journal and its final weight, as reported and as replayed under ``config``;
    with the largest difference between a replayed and a reported weight (0 when
    ``config`` is what the validator ran with) and the assumed inputs."""
    read = read_journal(path)
    if not read.windows:
        raise ValueError(f"{path} holds no window report")
    journal, reported = read.windows, read.reported
    replayed = replay(journal, config)
    uids = sorted(read.hotkeys)
    pairs = zip(reported, replayed, strict=True)
    largest = max((abs(r.get(u, 0.0) - p.get(u, 0.0)) for r, p in pairs for u in uids), default=0.0)
    return {
        "journal": str(path),
        "windows": [journal[0]["window"], journal[-1]["window"]],
        "assumed": read.assumed,
        "largest_weight_difference": largest,
        "miners": {
            str(u): {
                "hotkey": read.hotkeys[u],
                "run_share": {
                    "reported": round(run_share(reported, u), 4),
                    "replayed": round(run_share(replayed, u), 4),
                },
                "final_weight": {
                    "reported": round(reported[-1].get(u, 0.0), 4),
                    "replayed": round(replayed[-1].get(u, 0.0), 4),
                },
            }
            for u in uids
        },
    }


def rescore_table(result: Mapping[str, Any]) -> str:
    """:func:`rescore`'s result as the text ``gauntlet rescore`` prints."""
    first, last = result["windows"]
    assumed = result["assumed"]
    lines = [
        f"{result['journal']}: windows {first}-{last}, largest weight difference "
        f"{result['largest_weight_difference']:.6f}"
        + (
            f" (assumed: sync {assumed['sync']}, pages {assumed['pages']})"
            if any(assumed.values())
            else ""
        ),
        f"{'':18} {'run share':^19} {'final weight':^19}",
        f"{'uid':>5} {'hotkey':<12} {'reported':>9} {'replayed':>9} {'reported':>9} {'replayed':>9}",
    ]
    for uid, miner in result["miners"].items():
        share, final = miner["run_share"], miner["final_weight"]
        lines.append(
            f"{uid:>5} {miner['hotkey'][:12]:<12} {share['reported']:>9.4f} "
            f"{share['replayed']:>9.4f} {final['reported']:>9.4f} {final['replayed']:>9.4f}"
        )
    return "\n".join(line.rstrip() for line in lines)
