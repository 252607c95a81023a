"""What the localnet prints: one table per window, and the end-of-run summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import reports_prefix, window_of_key, window_report_key
from protocol.schemas import WindowReport


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


@dataclass
class RunSummary:
    scenario: str = ""
    windows: list[int] = field(default_factory=list)
    validation_loss_first: float | None = None  # θ before the first reported window
    validation_loss_last: float | None = None  # θ after the last reported window
    chain_weights: dict[int, float] = field(
        default_factory=dict
    )  # first validator's weights on chain
    incentive: dict[int, float] = field(default_factory=dict)  # at the end of the run
    incentive_mean: dict[int, float] = field(default_factory=dict)  # over the run's samples
    incentive_late: dict[int, float] = field(default_factory=dict)  # over its second half's
    roles: dict[int, str] = field(default_factory=dict)  # uid -> node name
    behaviours: dict[int, str] = field(default_factory=dict)  # uid -> behaviour or "validator"
    budgets: dict[int, int] = field(default_factory=dict)  # miner uid -> pages trained per window
    # miner uid -> pages its accepted ("ok") contributions declared over the run, as the lead
    # reported them: the data it processed (a budget that does not fit a window is cut)
    pages_processed: dict[int, int] = field(default_factory=dict)
    completed: bool = False
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0  # all processes of the run together, sampled once per poll

    def add(self, report: WindowReport) -> None:
        if self.validation_loss_first is None:
            self.validation_loss_first = report.validation_loss_before
        self.validation_loss_last = report.validation_loss_after
        self.windows.append(report.window)

    def render(self) -> str:
        lines = [
            f"localnet: {len(self.windows)} windows, validation loss "
            f"{_fmt(self.validation_loss_first)} -> {_fmt(self.validation_loss_last)}",
            f"  {'uid':>4} {'role':<10} {'behaviour':<10} {'chain weight':>12} {'incentive':>10}"
            f" {'2nd half':>9}",
        ]
        for uid in sorted(self.roles):
            lines.append(
                f"  {uid:>4} {self.roles[uid]:<10} {self.behaviours.get(uid, '?'):<10} "
                f"{self.chain_weights.get(uid, 0.0):>12.4f} {self.incentive.get(uid, 0.0):>10.4f}"
                f" {self.incentive_late.get(uid, 0.0):>9.4f}"
            )
        return "\n".join(lines)


def next_report(store: FilesystemStore, hotkey: str, summary: RunSummary) -> WindowReport | None:
    """Validator ``hotkey``'s next window report in ``store``, if it is there yet: the
    earliest one after the last one ``summary`` shows (the first of all before that).

    A validator publishes its reports in window order, but one it could not publish (a
    store fault, or a crash between committing the window and publishing) never comes
    later: waiting for it would stall the run, so a later report skips the gap.
    """
    last = summary.windows[-1] if summary.windows else -1
    found = (
        window_of_key(p.relative_to(store.base).as_posix())
        for p in (store.base / reports_prefix()).rglob("*.json")
    )
    for window in sorted({w for w in found if w is not None and w > last}):
        path = store.base / window_report_key(window, hotkey)
        if path.is_file():
            return WindowReport.model_validate_json(path.read_text())
    return None
