"""The localnet follows the lead validator's reports in window order, past any it never
published, and says where it stalled."""

from __future__ import annotations

from pathlib import Path

from gauntlet.localnet.orchestrator import log_tail
from gauntlet.localnet.report import RunSummary, next_report
from gauntlet.storage.filesystem import FilesystemStore
from protocol.keys import window_report_key
from protocol.schemas import WindowReport

LEAD, OTHER = "5Lead", "5Other"


def publish(store: FilesystemStore, window: int, hotkey: str = LEAD) -> WindowReport:
    report = WindowReport(
        window=window, hotkey=hotkey, validation_loss_before=5.0 - window,
        validation_loss_after=4.9 - window, peers=[],
    )  # fmt: skip
    path = store.base / window_report_key(window, hotkey)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json())
    return report


def follow(store: FilesystemStore, summary: RunSummary) -> list[int]:
    shown = []
    while (report := next_report(store, LEAD, summary)) is not None:
        summary.add(report)
        shown.append(report.window)
    return shown


def test_reports_are_followed_in_window_order_from_the_first_present(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    summary = RunSummary()
    assert next_report(store, LEAD, summary) is None
    for window in (4, 2, 3):
        publish(store, window)
    assert follow(store, summary) == [2, 3, 4]
    assert next_report(store, LEAD, summary) is None  # nothing new: wait
    publish(store, 5)
    assert follow(store, summary) == [5]


def test_a_report_never_published_does_not_stall_the_run(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    summary = RunSummary()
    publish(store, 0)
    assert follow(store, summary) == [0]
    publish(store, 2)  # window 1's report was lost: a later one moves the run on
    assert follow(store, summary) == [2]
    assert summary.windows == [0, 2]


def test_another_validators_reports_are_not_the_leads(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    summary = RunSummary()
    publish(store, 0, OTHER)
    publish(store, 1, OTHER)
    publish(store, 1)
    assert follow(store, summary) == [1]


def test_a_stalled_run_quotes_the_end_of_the_leads_log(tmp_path: Path) -> None:
    log = tmp_path / "validator0.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert log_tail(log, 3) == "line 9997\nline 9998\nline 9999"
    assert log_tail(tmp_path / "gone.log").startswith("(unreadable:")
