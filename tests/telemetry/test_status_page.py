"""The validator's status page: leaderboard, history, escaping, empty state, journal, HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry
from telemetry_helpers import VALIDATOR, peer, report

from gauntlet.node.status_page import StatusBoard, render_html, status_routes
from gauntlet.node.validator_state import ValidatorFiles
from gauntlet.telemetry import TelemetryServer


def test_an_empty_board_says_nothing_is_scored_yet() -> None:
    board = StatusBoard(history=5)
    snapshot = board.snapshot()
    assert snapshot.window is None and snapshot.leaderboard == []
    page = render_html(snapshot)
    assert "No window scored yet" in page
    assert "<table" not in page


def test_the_leaderboard_shows_the_latest_window_best_score_first() -> None:
    board = StatusBoard(history=5)
    board.add(report(1, peer(1, score=0.9), peer(2, score=0.1)))
    board.add(report(2, peer(1, score=0.2, weight=0.3), peer(2, score=0.6, weight=0.7)))
    snapshot = board.snapshot()
    assert snapshot.window == 2
    assert [p.uid for p in snapshot.leaderboard] == [2, 1]
    page = render_html(snapshot)
    assert page.index("<td>1</td><td>2</td>") < page.index("<td>2</td><td>1</td>")  # rank, uid


def test_history_keeps_the_last_windows_per_uid() -> None:
    board = StatusBoard(history=2)
    for window in range(5):
        board.add(report(window, peer(1, score=window / 10, weight=1.0)))
    board.add(report(5, peer(1, score=0.5), peer(7, score=0.05, weight=0.1)))
    snapshot = board.snapshot()
    assert snapshot.windows == [4, 5]
    assert [p.window for p in snapshot.history[1]] == [4, 5]
    assert [(p.window, p.weight) for p in snapshot.history[7]] == [(5, 0.1)]
    page = render_html(snapshot)
    assert "<th>w4</th><th>w5</th>" in page
    assert "<td>7</td><td>-</td><td>0.050 / 0.100</td>" in page  # uid 7 absent in window 4


def test_strings_from_the_network_are_escaped() -> None:
    board = StatusBoard(history=3)
    board.add(report(3, peer(1, status="<b>x</b>", reason='<script>alert("x")</script>')))
    page = render_html(board.snapshot())
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_page_needs_no_script_and_no_external_asset() -> None:
    board = StatusBoard(history=3)
    board.add(report(3, peer(1), peer(2)))
    page = render_html(board.snapshot())
    assert "<script" not in page and "src=" not in page
    assert "http://" not in page and "https://" not in page


def test_the_board_is_seeded_from_the_journal_tail_skipping_a_torn_line(tmp_path: Path) -> None:
    files = ValidatorFiles(tmp_path, VALIDATOR)
    for window in range(6):
        files.append_journal(report(window, peer(1, score=float(window))), "0" * 64)
    with open(files.journal, "a") as fh:
        fh.write('{"window": 6, "hotk')  # the validator was killed mid-write
    board = StatusBoard(history=4)
    board.load_journal(files.journal)
    assert board.snapshot().windows == [3, 4, 5]
    assert board.snapshot().leaderboard[0].score == 5.0


def test_a_missing_journal_leaves_the_board_empty(tmp_path: Path) -> None:
    board = StatusBoard(history=4)
    board.load_journal(tmp_path / "absent.jsonl")
    assert board.snapshot().window is None


def test_the_page_and_its_json_are_served_over_http() -> None:
    board = StatusBoard(history=3)
    board.add(report(9, peer(4, score=0.4, weight=1.0)))
    server = TelemetryServer("127.0.0.1", 0, CollectorRegistry(), status_routes(board))

    async def fetch() -> dict[str, tuple[str, str]]:
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                pages = {}
                for path in ("/", "/status", "/status.json", "/metrics"):
                    async with session.get(server.url + path) as resp:
                        assert resp.status == 200, path
                        pages[path] = (resp.headers["Content-Type"], await resp.text())
                return pages
        finally:
            await server.close()

    pages = asyncio.run(fetch())
    assert pages["/"][0].startswith("text/html") and "<td>4</td>" in pages["/"][1]
    assert pages["/status"] == pages["/"]
    data = json.loads(pages["/status.json"][1])
    assert data["window"] == 9 and data["leaderboard"][0]["uid"] == 4
    assert data["history"]["4"][0] == {"window": 9, "status": "ok", "score": 0.4, "weight": 1.0}


def test_the_reason_is_shown_whole_and_left_aligned() -> None:
    reason = "signature does not verify for netuid 1, window 3: " + "r" * 150
    board = StatusBoard(history=5)
    board.add(report(3, peer(1, status="invalid", reason=reason)))
    page = render_html(board.snapshot())
    assert reason in page
    assert "#leaderboard td:last-child{text-align:left}" in page


def test_the_page_says_whether_and_when_weights_reached_the_chain() -> None:
    from gauntlet.node.status_page import WeightsAttempt

    board = StatusBoard(history=5)
    board.add(report(1, peer(1, score=0.9)))
    assert "not attempted since this validator started" in render_html(board.snapshot())
    board.add(report(2, peer(1)), WeightsAttempt(window=2, block=25, result="set", detail="3 uids"))
    page = render_html(board.snapshot())
    assert "Weights on chain: set after window 2 at block 25 (3 uids)" in page
    failed = WeightsAttempt(window=3, block=35, result="failed", detail="rate_limited: <too soon>")
    board.add(report(3, peer(1)), failed)
    snapshot = board.snapshot()
    page = render_html(snapshot)
    assert "after window 3 at block 35, failed: rate_limited: &lt;too soon&gt;" in page
    assert "Last set after window 2 at block 25." in page
    as_json = json.loads(snapshot.model_dump_json())
    assert as_json["weights"]["result"] == "failed" and as_json["weights_last_set"]["block"] == 25


def test_the_leaderboard_shows_the_work_the_match_ranks_beside_the_random_pages() -> None:
    board = StatusBoard(history=5)
    measured = peer(1, score=0.5, random_improvement=0.0064, own_advantage=0.004, declared_pages=3)
    board.add(report(1, measured, peer(2, score=0.1)))
    page = render_html(board.snapshot())
    assert "<th>random</th><th>work</th><th>uniq</th>" in page
    assert "<td>0.0064</td><td>0.0120</td>" in page  # 3 pages x 0.004
    assert "<td>-</td><td>-</td><td>-</td>" in page  # uid 2: not measured
