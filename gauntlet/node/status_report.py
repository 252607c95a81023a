"""``gauntlet status``: why a uid scores what it scores, as pure functions.

Input: the metagraph (stake, permits, incentive, the weights each validator set on chain)
and the public window reports read from each validator's bucket. Output: one
:class:`UidStatus` (JSON for tools) and its text table (for people). The I/O that gathers
the input is :mod:`gauntlet.node.status_fetch`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.node.report_table import work_shown
from protocol.schemas import PeerResult, WindowReport


class ReportRow(BaseModel):
    """One validator's verdict on the uid in one window."""

    window: int
    validator_uid: int
    validator_hotkey: str
    result: PeerResult | None  # None: the validator published no entry for this uid


class ChainWeight(BaseModel):
    """The weight one validator holds on chain for the uid (its row, normalised to sum 1)."""

    validator_uid: int
    validator_hotkey: str
    stake: float
    weight: float | None  # None: this validator has no weights on chain at all
    last_update: int  # block of the validator's last weights (its registration if never)


class UidStatus(BaseModel):
    netuid: int
    block: int
    uid: int
    hotkey: str
    incentive: float
    windows: list[int]
    rows: list[ReportRow]
    chain_weights: list[ChainWeight]
    notes: list[str]  # validators whose reports could not be read, and why


def validators(metagraph: Metagraph) -> list[Neuron]:
    """Neurons with a validator permit, by uid: the ones whose reports and weights count."""
    return sorted((n for n in metagraph.neurons if n.validator_permit), key=lambda n: n.uid)


def last_windows(reports: Mapping[int, Mapping[int, WindowReport]], count: int) -> list[int]:
    """The ``count`` windows up to the newest any validator reported, oldest first."""
    newest = max((w for by_window in reports.values() for w in by_window), default=None)
    if newest is None:
        return []
    return list(range(max(0, newest - count + 1), newest + 1))


def uid_status(
    metagraph: Metagraph,
    target: Neuron,
    reports: Mapping[int, Mapping[int, WindowReport]],
    *,
    windows: int,
    notes: list[str],
) -> UidStatus:
    """``target``'s status from ``reports[validator uid][window]`` over the last ``windows``.

    An entry for the uid under another hotkey (the uid was re-registered) is not the
    target's and counts as no entry.
    """
    shown = last_windows(reports, windows)
    rows = []
    for window in shown:
        for v in validators(metagraph):
            report = reports.get(v.uid, {}).get(window)
            if report is None:
                continue
            entry = next(
                (p for p in report.peers if p.uid == target.uid and p.hotkey == target.hotkey),
                None,
            )
            rows.append(
                ReportRow(
                    window=window, validator_uid=v.uid, validator_hotkey=v.hotkey, result=entry
                )
            )
    weights = [
        ChainWeight(
            validator_uid=v.uid,
            validator_hotkey=v.hotkey,
            stake=v.stake,
            weight=metagraph.weights[v.uid].get(target.uid, 0.0)
            if v.uid in metagraph.weights
            else None,
            last_update=v.last_update,
        )
        for v in validators(metagraph)
    ]
    return UidStatus(
        netuid=metagraph.netuid,
        block=metagraph.block,
        uid=target.uid,
        hotkey=target.hotkey,
        incentive=target.incentive,
        windows=shown,
        rows=rows,
        chain_weights=weights,
        notes=notes,
    )


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


_COLUMNS = ("window", "validator", "status", "eval", "own", "random", "work", "sync", "rating", "score", "weight", "reason")  # fmt: skip


def _cells(row: ReportRow) -> tuple[str, ...]:
    r = row.result
    who = f"{row.validator_uid} ({row.validator_hotkey[:8]})"
    if r is None:
        return (str(row.window), who, "not listed", "-", "-", "-", "-", "-", "-", "-", "-", "")
    return (
        str(row.window), who, r.status, "yes" if r.evaluated else "no",
        _num(r.own_improvement), _num(r.random_improvement), _num(work_shown(r)), _num(r.sync, 3),
        _num(r.rating, 3), _num(r.score), _num(r.weight), r.reason,
    )  # fmt: skip


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    # Every column but the last is padded; the reason stays whole, left-aligned, at the end.
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in rows
    ]


def format_status(status: UidStatus) -> str:
    """The status as text: a header, one line per (window, validator), weights on chain."""
    lines = [
        f"uid {status.uid}  hotkey {status.hotkey}  netuid {status.netuid}  block {status.block}  "
        f"incentive {status.incentive:.4f}"
    ]
    if status.rows:
        lines += [
            "",
            "validators' window reports (own/random: loss improvement on the uid's own / random "
            "pages; work: its pages times its own-page advantage over the controls):",
        ]
        lines += _table([_COLUMNS, *(_cells(r) for r in status.rows)])
    else:
        lines += ["", "no window reports found from any validator"]
    lines += ["", "weights on chain (this uid's share of each validator's row):"]
    if not status.chain_weights:
        lines.append("  no validator holds a permit")
    for w in status.chain_weights:
        who = f"  validator {w.validator_uid} ({w.validator_hotkey[:8]}, stake {w.stake:g})"
        if w.weight is None:
            lines.append(f"{who}: no weights on chain")
        else:
            ago = status.block - w.last_update
            lines.append(f"{who}: {w.weight:.4f}, set at block {w.last_update} ({ago} blocks ago)")
    lines += [f"note: {n}" for n in status.notes]
    return "\n".join(lines)
