"""The per-window table a validator prints (and the localnet shows), from its report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gauntlet.score.window import work_on_own_pages
from protocol.schemas import WindowReport


class _Measured(Protocol):
    @property
    def own_advantage(self) -> float | None: ...

    @property
    def declared_pages(self) -> int | None: ...


def work_shown(peer: _Measured) -> float | None:
    """The work an evaluated update shows on its own pages: its declared pages times its
    own-page advantage, what the uniqueness indicator reads and the rating match ranks
    beside the random pages (``scoring.match_work``); None where either is missing (a report
    has no advantage where no other update helped, and scoring then compares with the random
    pages)."""
    if peer.own_advantage is None or peer.declared_pages is None:
        return None
    return work_on_own_pages(peer.declared_pages, peer.own_advantage)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def window_table(report: WindowReport, roles: Mapping[int, str] | None = None) -> str:
    used = sum(1 for p in report.peers if p.status == "ok")
    header = (
        f"  {'uid':>4} {'role':<10} {'status':<11} {'sync':>5} {'own':>8} {'random':>8} "
        f"{'work':>8} {'uniq':>5} {'rating':>7} {'final':>7} {'weight':>6}  reason"
    )
    lines = [
        f"window {report.window}: validation loss {report.validation_loss_before:.4f} -> "
        f"{report.validation_loss_after:.4f}   ({used}/{len(report.peers)} contributions ok)",
        header,
    ]
    for p in sorted(report.peers, key=lambda p: p.uid):
        role = (roles or {}).get(p.uid, "")
        evaluated = "*" if p.evaluated else " "
        lines.append(
            f"  {p.uid:>4} {role:<10} {p.status:<11} {_fmt(p.sync, '.2f'):>5} "
            f"{_fmt(p.own_improvement):>8} {_fmt(p.random_improvement):>8} "
            f"{_fmt(work_shown(p)):>8} {_fmt(p.uniqueness, '.2f'):>5} "
            f"{_fmt(p.rating, '.2f'):>7} {p.score:>7.3f} {p.weight:>6.3f}{evaluated} {p.reason[:60]}"
        )
    return "\n".join(lines)
