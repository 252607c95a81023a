"""The validator's read-only status page: leaderboard and per-uid history from its window reports.

Served next to ``/metrics`` (``/`` and ``/status`` as HTML, ``/status.json`` as
JSON). Plain HTML with inline style: no scripts, no external assets; every value
that came from the network (hotkeys, reasons) is escaped. The page reloads itself
through a ``<meta refresh>``.
"""

from __future__ import annotations

import html
import logging
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel

from gauntlet.node.report_table import work_shown
from gauntlet.node.validator_state import journal_report
from protocol.schemas import PeerResult, WindowReport

log = logging.getLogger(__name__)

REFRESH_SECONDS = 15
HOTKEY_PREFIX = 10  # characters of a hotkey shown in tables


class HistoryPoint(BaseModel):
    window: int
    status: str
    score: float
    weight: float


class WeightsAttempt(BaseModel):
    """The validator's latest attempt to set weights on chain: whether they reached it."""

    window: int  # the window after which it set them
    block: int | None  # chain head at the attempt (None: the chain did not answer)
    result: str  # "set", "failed" or "skipped"
    detail: str = ""  # uids set, or why not


class StatusSnapshot(BaseModel):
    """What ``/status.json`` returns and the HTML page shows."""

    validator: str = ""  # hotkey
    weights: WeightsAttempt | None = None  # latest attempt to set weights on chain
    weights_last_set: WeightsAttempt | None = None  # latest one that reached the chain
    window: int | None = None  # latest scored window
    validation_loss_before: float | None = None
    validation_loss_after: float | None = None
    leaderboard: list[PeerResult] = []  # latest window, best final score first
    windows: list[int] = []  # windows in the history, oldest first
    history: dict[int, list[HistoryPoint]] = {}  # uid -> its points, oldest first


class StatusBoard:
    """The latest ``history`` window reports, newest last."""

    def __init__(self, history: int) -> None:
        self.reports: deque[WindowReport] = deque(maxlen=history)
        self.weights: WeightsAttempt | None = None
        self.weights_last_set: WeightsAttempt | None = None

    def add(self, report: WindowReport, weights: WeightsAttempt | None = None) -> None:
        self.reports.append(report)
        if weights is not None:
            self.weights = weights
            if weights.result == "set":
                self.weights_last_set = weights

    def load_journal(self, path: Path) -> None:
        """Seed from the validator's journal (one JSON report per line) after a restart."""
        if not path.is_file():
            return
        with open(path) as fh:
            tail = deque(fh, maxlen=self.reports.maxlen)  # only the last lines are parsed
        for line in tail:
            try:
                self.add(journal_report(line))
            except ValueError as exc:  # a torn last line after a crash
                log.warning("status page: skipping a journal line of %s: %s", path, exc)

    def snapshot(self) -> StatusSnapshot:
        if not self.reports:
            return StatusSnapshot(weights=self.weights, weights_last_set=self.weights_last_set)
        latest = self.reports[-1]
        history: dict[int, list[HistoryPoint]] = {}
        for report in self.reports:
            for p in report.peers:
                history.setdefault(p.uid, []).append(
                    HistoryPoint(
                        window=report.window, status=p.status, score=p.score, weight=p.weight
                    )
                )
        return StatusSnapshot(
            validator=latest.hotkey,
            weights=self.weights,
            weights_last_set=self.weights_last_set,
            window=latest.window,
            validation_loss_before=latest.validation_loss_before,
            validation_loss_after=latest.validation_loss_after,
            leaderboard=sorted(latest.peers, key=lambda p: (-p.score, -p.weight, p.uid)),
            windows=[r.window for r in self.reports],
            history=dict(sorted(history.items())),
        )


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(cells: Iterable[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _short(hotkey: str) -> str:
    short = hotkey[:HOTKEY_PREFIX] + ("…" if len(hotkey) > HOTKEY_PREFIX else "")
    return f'<span title="{html.escape(hotkey)}">{html.escape(short)}</span>'


def _leaderboard(peers: list[PeerResult]) -> str:
    head = _row(
        ["rank", "uid", "hotkey", "status", "sync", "own", "random", "work", "uniq",
         "rating", "final", "weight", "reason"],
        "th",
    )  # fmt: skip
    rows = [
        _row(
            [
                str(rank),
                str(p.uid),
                _short(p.hotkey),
                html.escape(p.status) + (" *" if p.evaluated else ""),
                _num(p.sync, 2),
                _num(p.own_improvement),
                _num(p.random_improvement),
                _num(work_shown(p)),
                _num(p.uniqueness, 2),
                _num(p.rating, 2),
                _num(p.score, 3),
                _num(p.weight, 3),
                html.escape(p.reason),  # whole (a report keeps 256 characters)
            ]
        )
        for rank, p in enumerate(peers, 1)
    ]
    return f'<table id="leaderboard">{head}{"".join(rows)}</table>'


def _history(snapshot: StatusSnapshot) -> str:
    head = _row(["uid", *(f"w{w}" for w in snapshot.windows)], "th")
    rows = []
    for uid, points in snapshot.history.items():
        by_window = {p.window: p for p in points}
        cells = [
            f"{_num(p.score, 3)} / {_num(p.weight, 3)}" if (p := by_window.get(w)) else "-"
            for w in snapshot.windows
        ]
        rows.append(_row([str(uid), *cells]))
    return f'<table id="history">{head}{"".join(rows)}</table>'


def _weights(snapshot: StatusSnapshot) -> str:
    """Whether this validator's weights reached the chain, and when."""
    last, done = snapshot.weights, snapshot.weights_last_set
    if last is None:
        return "Weights on chain: not attempted since this validator started."
    at = "" if last.block is None else f" at block {last.block}"
    if last.result == "set":
        return f"Weights on chain: set after window {last.window}{at} ({html.escape(last.detail)})."
    text = f"Weights on chain: the latest attempt, after window {last.window}{at}, {last.result}: "
    text += html.escape(last.detail) + "."
    if done is not None:
        text += f" Last set after window {done.window}" + (
            f" at block {done.block}." if done.block is not None else "."
        )
    return text


STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#eee}caption{text-align:left;font-weight:bold;padding:.3em 0}"
    "#leaderboard td:last-child{text-align:left}"
)


def render_html(snapshot: StatusSnapshot) -> str:
    """The whole page; strings from the network are escaped, numbers are formatted."""
    if snapshot.window is None:
        body = "<p>No window scored yet. This page reloads itself.</p>"
    else:
        body = (
            f"<p>Validator {_short(snapshot.validator)}, window {snapshot.window}: validation loss "
            f"{_num(snapshot.validation_loss_before)} &rarr; {_num(snapshot.validation_loss_after)}. "
            "* = evaluated this window.</p>"
            f'<p id="weights">{_weights(snapshot)}</p>'
            f"<h2>Leaderboard</h2>{_leaderboard(snapshot.leaderboard)}"
            f"<h2>History (final score / weight per window)</h2>{_history(snapshot)}"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>Gauntlet validator status</title><style>{STYLE}</style></head>"
        f'<body><h1>Gauntlet validator status</h1>{body}<p><a href="/status.json">JSON</a> '
        '&middot; <a href="/metrics">metrics</a></p></body></html>'
    )


def status_routes(board: StatusBoard) -> list[web.RouteDef]:
    """``/`` and ``/status`` (HTML), ``/status.json``, for :class:`TelemetryServer`."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render_html(board.snapshot()), content_type="text/html")

    async def as_json(request: web.Request) -> web.Response:
        return web.Response(
            text=board.snapshot().model_dump_json(), content_type="application/json"
        )

    return [web.get("/", page), web.get("/status", page), web.get("/status.json", as_json)]
