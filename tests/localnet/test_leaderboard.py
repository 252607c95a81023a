"""The live leaderboard: plain tables without a terminal, a rich table with one."""

from __future__ import annotations

import io
import re

import pytest
from localnet_helpers import peer, report, small_run
from rich.console import Console

from gauntlet.localnet.leaderboard import (
    Leaderboard,
    leaderboard_rows,
    plain_table,
    rich_table,
)
from gauntlet.localnet.results import RunResults


def _lines_of_uid(text: str, uid: int) -> list[str]:
    """Table rows ("  rank uid name ...") of ``uid``."""
    return [line for line in text.splitlines() if re.match(rf"\s+\d+\s+{uid}\s", line)]


def test_without_a_terminal_each_update_prints_one_plain_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = small_run()
    with Leaderboard(results) as board:  # pytest's captured stdout is not a terminal
        assert not board.live
        board.update(3)
        board.update()
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no escape codes in a log
    assert out.count("validation loss") == 2
    assert "window 3 (1/2): validation loss 5.5800 -> 4.0000" in out
    assert "window 4 (2/2): validation loss 4.0000 -> 3.2100, honest incentive 90.0%" in out
    for uid, name, behaviour in [(1, "miner1", "honest"), (4, "miner4", "copycat")]:
        rows = _lines_of_uid(out, uid)
        assert len(rows) == 2 and all(name in r and behaviour in r for r in rows)


def test_plain_table_has_the_report_table_columns_plus_behaviour_and_incentive() -> None:
    text = plain_table(small_run())
    header = text.splitlines()[1].split()
    assert header == [
        "#", "uid", "name", "behaviour", "status", "sync", "own", "random", "work", "uniq",
        "rating", "final", "weight", "incentive", "reason",
    ]  # fmt: skip
    assert len(text.splitlines()) == 2 + 4  # validators are not on the board
    (copycat,) = _lines_of_uid(text, 4)
    assert copycat.split() == [
        "4", "4", "miner4", "copycat", "copy", "0.90", "0.0500", "0.0400", "0.0300", "0.50", "0.00",
        "0.000", "0.000", "0.1000", "copy", "of", "another", "miner",
    ]  # fmt: skip


def test_miners_are_ranked_by_weight() -> None:
    rows = leaderboard_rows(small_run())
    assert [(r.rank, r.uid) for r in rows] == [(1, 3), (2, 2), (3, 1), (4, 4)]


def test_missing_incentive_and_a_miner_absent_from_the_report_show_dashes() -> None:
    results = RunResults()
    results.add_node("miner1", 1, "miner")
    results.add_node("miner2", 2, "miner", "offline")
    results.add_report(report(0, 5.0, 4.9, [peer(1, 1.0)]))
    (m1,) = _lines_of_uid(plain_table(results), 1)
    (m2,) = _lines_of_uid(plain_table(results), 2)
    assert m1.split()[-1] == "-"  # no incentive sampled yet
    assert m2.split()[4:] == ["-"] * 10  # status, 8 report numbers, incentive


def test_a_name_with_newlines_cannot_break_the_plain_table() -> None:
    results = small_run()
    results.add_node("evil\nname", 4, "miner", "copycat")
    text = plain_table(results)
    assert len(text.splitlines()) == 6
    assert "evil?name" in text


def test_nothing_reported_yet_shows_a_waiting_title() -> None:
    results = RunResults()
    results.add_node("miner1", 1, "miner")
    assert plain_table(results).splitlines()[0] == "waiting for the first window"


def test_on_a_terminal_the_rich_table_shows_uids_behaviours_and_literal_names() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160, color_system=None)
    results = small_run()
    results.add_node("[bold]m4[/bold]", 4, "miner", "copycat")
    with Leaderboard(results, console) as board:
        assert board.live
        board.update()
    out = buffer.getvalue()
    assert "copycat" in out and "honest" in out and "miner3" in out
    assert "[bold]m4[/bold]" in out  # markup in a name is shown, not interpreted
    assert "honest incentive 90.0%" in out


@pytest.mark.parametrize("width", [130, 160])
def test_each_miner_stays_on_one_line_of_the_rich_table_with_a_long_reason(width: int) -> None:
    results = small_run()
    long = "replays uid 7 of window 3 (explains 100.0%) and the aggregate of window 2 " * 3
    results.add_report(
        report(5, 3.21, 3.0, [peer(1, 0.5), peer(4, 0.0, status="replay").model_copy(
            update={"reason": long})])
    )  # fmt: skip
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system=None)
    console.print(rich_table(results))
    lines = buffer.getvalue().splitlines()
    row = [i for i, line in enumerate(lines) if re.search(r"\breplay\b", line)]
    assert len(row) == 1, lines  # the replay row appears once
    assert "replays uid 7" in lines[row[0]]
    following = lines[row[0] + 1]
    assert "replays" not in following and "aggregate" not in following  # nothing wrapped
