"""The per-window table a validator logs: every figure of the report, the work column
(declared pages times own-page advantage, the rating match's second rank) included."""

from __future__ import annotations

from gauntlet.node.report_table import window_table, work_shown
from protocol.schemas import PeerResult, WindowReport

HOTKEY = "5" + "F" * 47


def _peer(uid: int, **fields: object) -> PeerResult:
    return PeerResult(uid=uid, hotkey=HOTKEY, **fields)  # type: ignore[arg-type]


def test_the_work_column_is_declared_pages_times_the_own_page_advantage() -> None:
    measured = _peer(1, status="ok", evaluated=True, own_improvement=0.0121,
                     random_improvement=0.0064, own_advantage=0.0041, declared_pages=3,
                     uniqueness=0.62, rating=18.4, score=6.903, weight=0.412)  # fmt: skip
    no_control = _peer(2, status="ok", evaluated=True, own_advantage=None, declared_pages=2)
    late = _peer(3, status="late", reason="412.3s after the deadline")
    assert work_shown(measured) == 3 * 0.0041
    assert work_shown(no_control) is None and work_shown(late) is None
    # a declaration of 0 pages counts as one, as scoring counts it
    assert work_shown(_peer(4, status="ok", own_advantage=0.01, declared_pages=0)) == 0.01
    report = WindowReport(window=41, hotkey=HOTKEY, validation_loss_before=4.8123,
                          validation_loss_after=4.799, peers=[late, no_control, measured])  # fmt: skip
    lines = window_table(report).splitlines()
    header = lines[1].split()
    assert header[header.index("random") + 1] == "work"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    # uid, status, sync (none observed here), own, random, work, uniq
    assert rows["1"][:7] == ["1", "ok", "-", "0.0121", "0.0064", "0.0123", "0.62"]
    assert rows["2"][5] == "-" and rows["3"][5] == "-"  # no control; not evaluated
    assert rows["1"][-1] == "0.412*"  # evaluated this window
