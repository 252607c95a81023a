"""A live leaderboard of the localnet's miners, redrawn after every window.

On a terminal it is a ``rich`` table updated in place; when stdout is not a
terminal (tests, CI, a pipe to a file) each update prints a plain text table,
so the log keeps one table per window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import TracebackType

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gauntlet.localnet.results import HONEST, RunResults, WindowResult, incentive_shares
from gauntlet.node.report_table import work_shown

_STATUS_STYLE = {"ok": "green", "missing": "yellow", "late": "yellow", "-": "dim"}


@dataclass(frozen=True)
class Row:
    rank: int
    uid: int
    name: str
    behaviour: str
    status: str
    sync: float | None
    own: float | None
    random: float | None
    work: float | None
    uniqueness: float | None
    rating: float | None
    score: float | None
    weight: float | None
    incentive: float | None
    reason: str


def _printable(text: str) -> str:
    """Control characters (newlines, escapes) in a name would break the table's layout."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _window(results: RunResults, window: int | None) -> WindowResult | None:
    if window is None:
        return results.windows[-1] if results.windows else None
    return results.window(window)


def leaderboard_rows(results: RunResults, window: int | None = None) -> list[Row]:
    """Every miner (and any uid the report names) ranked by weight, then score, then uid.

    ``window`` defaults to the last reported one.
    """
    w = _window(results, window)
    peers = w.peers if w else {}
    incentive = w.incentive if w else None
    uids = sorted({n.uid for n in results.miners()} | set(peers))
    rows = []
    for uid in uids:
        node, peer = results.node(uid), peers.get(uid)
        rows.append(
            Row(
                rank=0,
                uid=uid,
                name=_printable(node.name) if node else "?",
                behaviour=_printable(node.behaviour) if node else "?",
                status=_printable(peer.status) if peer else "-",
                sync=peer.sync if peer else None,
                own=peer.own_improvement if peer else None,
                random=peer.random_improvement if peer else None,
                work=work_shown(peer) if peer else None,
                uniqueness=peer.uniqueness if peer else None,
                rating=peer.rating if peer else None,
                score=peer.score if peer else None,
                weight=peer.weight if peer else None,
                incentive=incentive.get(uid, 0.0) if incentive is not None else None,
                reason=_printable(peer.reason) if peer else "",
            )
        )
    rows.sort(key=lambda r: (-(r.weight or 0.0), -(r.score or 0.0), r.uid))
    return [replace(r, rank=i + 1) for i, r in enumerate(rows)]


def leaderboard_title(results: RunResults, window: int | None = None) -> str:
    w = _window(results, window)
    if w is None:
        return "waiting for the first window"
    done = sum(1 for r in results.windows if r.window <= w.window)
    asked = f"/{results.meta.windows}" if results.meta.windows else ""
    title = (
        f"window {w.window} ({done}{asked}): validation loss "
        f"{w.validation_loss_before:.4f} -> {w.validation_loss_after:.4f}"
    )
    shares = incentive_shares(w.incentive, results.behaviours()) if w.incentive else None
    if shares:
        title += f", honest incentive {shares[0] * 100:.1f}%"
    return title


# (header, width, Row attribute, format); "final" is the final score, as in report_table.
_NUMBERS = (
    ("sync", 5, "sync", ".2f"),
    ("own", 8, "own", ".4f"),
    ("random", 8, "random", ".4f"),
    ("work", 8, "work", ".4f"),
    ("uniq", 5, "uniqueness", ".2f"),
    ("rating", 7, "rating", ".2f"),
    ("final", 7, "score", ".3f"),
    ("weight", 6, "weight", ".3f"),
    ("incentive", 9, "incentive", ".4f"),
)


def plain_table(results: RunResults, window: int | None = None) -> str:
    """The leaderboard as fixed-width text (what non-terminal output shows)."""
    numbers = " ".join(f"{h:>{w}}" for h, w, _, _ in _NUMBERS)
    lines = [
        leaderboard_title(results, window),
        f"  {'#':>3} {'uid':>4} {'name':<16} {'behaviour':<10} {'status':<11} {numbers}  reason",
    ]
    for r in leaderboard_rows(results, window):
        values = " ".join(f"{_fmt(getattr(r, a), f):>{w}}" for _, w, a, f in _NUMBERS)
        lines.append(
            f"  {r.rank:>3} {r.uid:>4} {r.name[:16]:<16} {r.behaviour[:10]:<10} "
            f"{r.status[:11]:<11} {values}  {r.reason[:60]}".rstrip()
        )
    return "\n".join(lines)


def rich_table(results: RunResults, window: int | None = None) -> Table:
    """The leaderboard as a rich Table; names are Text, never parsed as markup."""
    table = Table(
        expand=True,
        box=box.SIMPLE_HEAD,  # no column rules, one space between columns: the reason keeps room
        collapse_padding=True,
        show_edge=False,
        title=Text(leaderboard_title(results, window)),
        caption=Text(results.summary_line()) if results.windows else None,
    )
    # One line per miner whatever the terminal: the figures keep their width and the reason
    # takes what is left, cut with an ellipsis (a wrapped reason was 5-8 lines at 130
    # columns, issue 16); the report and the status page have it in full. Without column
    # rules the reason keeps about 30 characters at 130 columns.
    for header in ("#", "uid"):
        table.add_column(header, justify="right", no_wrap=True)
    for header in ("name", "behaviour", "status"):
        table.add_column(header, no_wrap=True)
    for header, _, _, _ in _NUMBERS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("reason", overflow="ellipsis", no_wrap=True, ratio=1, min_width=8)
    for r in leaderboard_rows(results, window):
        table.add_row(
            str(r.rank),
            str(r.uid),
            Text(r.name),
            Text(r.behaviour, style="green" if r.behaviour == HONEST else "red"),
            Text(r.status, style=_STATUS_STYLE.get(r.status, "red")),
            *(_fmt(getattr(r, a), f) for _, _, a, f in _NUMBERS),
            Text(r.reason, style="dim"),
        )
    return table


class Leaderboard:
    """Shows ``results`` after each window: ``with Leaderboard(results) as board: board.update()``.

    ``live`` defaults to whether ``console`` (default: stdout) is a terminal.
    Call :meth:`update` once per window, after its report and incentive are in
    ``results``; without a terminal each call prints one plain table.
    """

    def __init__(
        self, results: RunResults, console: Console | None = None, *, live: bool | None = None
    ) -> None:
        self.results = results
        self.console = console or Console()
        self.live = self.console.is_terminal if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> Leaderboard:
        if self.live:
            self._live = Live(rich_table(self.results), console=self.console, auto_refresh=False)
            self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, window: int | None = None) -> None:
        """Show ``window`` (default: the last reported one)."""
        if self._live is not None:
            self._live.update(rich_table(self.results, window), refresh=True)
        elif self.live:
            self.console.print(rich_table(self.results, window))
        else:
            self.console.out(plain_table(self.results, window), highlight=False)
