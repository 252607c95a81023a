"""Validator files survive SIGKILL and disk damage: torn journal, leftover temps, broken state."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from gauntlet.node.validator_state import STALE_TEMP_SECONDS, ValidatorFiles, journal_report
from gauntlet.score.state import ValidatorScores
from gauntlet.storage.atomic_file import write_atomically
from protocol.schemas import WindowReport

HOTKEY = "5Validator" + "x" * 38


def report(window: int) -> WindowReport:
    return WindowReport(
        window=window,
        hotkey=HOTKEY,
        validation_loss_before=5.0,
        validation_loss_after=4.9,
        peers=[],
    )


def journal_windows(files: ValidatorFiles) -> list[int]:
    """Windows of the journal's records; fails if any line is not a whole JSON record."""
    return [json.loads(line)["window"] for line in files.journal.read_text().splitlines()]


@pytest.fixture
def files(tmp_path: Path) -> ValidatorFiles:
    return ValidatorFiles(tmp_path, HOTKEY)


# --- journal -------------------------------------------------------------------------------------


def test_torn_last_journal_line_is_cut_at_start(files: ValidatorFiles) -> None:
    files.commit_window(ValidatorScores(last_window=1), report(1))
    files.commit_window(ValidatorScores(last_window=2), report(2))
    with open(files.journal, "ab") as fh:  # SIGKILL in the middle of the third record
        fh.write(b'{"hotkey":"5Val')
    files.load_state()
    files.commit_window(ValidatorScores(last_window=3), report(3))
    assert journal_windows(files) == [1, 2, 3]


def test_a_record_is_never_glued_onto_a_torn_line(files: ValidatorFiles) -> None:
    files.append_journal(report(1), "0" * 64)
    with open(files.journal, "ab") as fh:
        fh.write(b'{"torn')
    files.append_journal(report(2), "0" * 64)
    lines = files.journal.read_text().splitlines()
    assert json.loads(lines[-1])["window"] == 2 and lines[1] == '{"torn'


def test_a_journal_line_reads_back_as_the_report_it_was_written_from(
    files: ValidatorFiles,
) -> None:
    files.append_journal(report(3), "a" * 64)
    (line,) = files.journal.read_text().splitlines()
    assert json.loads(line)["state_sha256"] == "a" * 64
    assert journal_report(line) == report(3)
    for bad in (line[: len(line) // 2], "[]", '{"window": 3}', ""):
        with pytest.raises(ValueError):
            journal_report(bad)


def test_journal_without_a_torn_line_is_left_alone(files: ValidatorFiles) -> None:
    files.commit_window(ValidatorScores(last_window=1), report(1))
    before = files.journal.read_bytes()
    assert files.repair_journal() == 0 and files.journal.read_bytes() == before


def test_journal_record_is_on_disk_before_the_state_moves_on(files: ValidatorFiles) -> None:
    files.commit_window(ValidatorScores(last_window=1), report(1))
    # The state write fails (here: its path became a directory): the journal already
    # holds the window, the state file still holds the previous one.
    files.state.unlink()
    files.state.mkdir()
    with pytest.raises(OSError):
        files.commit_window(ValidatorScores(last_window=2), report(2))
    assert journal_windows(files) == [1, 2]


def test_commit_window_journals_the_digest_of_the_state_it_writes(files: ValidatorFiles) -> None:
    state = ValidatorScores(last_window=7)
    digest = files.commit_window(state, report(7))
    line = json.loads(files.journal.read_text())
    assert line["state_sha256"] == digest
    assert files.load_state() == state


# --- temp files ----------------------------------------------------------------------------------


def test_own_and_stale_temp_files_are_removed_at_start(files: ValidatorFiles) -> None:
    directory = files.state.parent
    ours = directory / f".tmp-{files.state.name}.k3j2"
    stale = directory / ".tmp-abandoned"
    live = directory / ".tmp-miner-state.json.x9"  # another node's write in progress
    for path in (ours, stale, live):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    files.load_state()
    assert not ours.exists() and not stale.exists() and live.exists()


def test_write_atomically_names_its_temp_file_after_the_destination(tmp_path: Path) -> None:
    seen: list[str] = []
    write_atomically(tmp_path / "state.json", lambda fh: seen.extend(os.listdir(tmp_path)))
    assert len(seen) == 1 and seen[0].startswith(".tmp-state.json.")


# --- a damaged state file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"\x00" * len(data),  # zeroed blocks
        lambda data: b"[]",  # valid JSON, wrong shape
        lambda data: b'{"peers": 5, "sketches": [], "last_window": 3}',
        lambda data: b"\xff\xfe" + data,  # not UTF-8
    ],
    ids=["truncated", "zeroed", "list", "wrong-types", "not-utf8"],
)
def test_damaged_state_is_moved_aside_and_the_journal_gives_the_window(
    files: ValidatorFiles, damage, caplog: pytest.LogCaptureFixture
) -> None:
    for window in (4, 5):
        files.commit_window(ValidatorScores(last_window=window), report(window))
    files.state.write_bytes(damage(files.state.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="gauntlet.node.validator_state"):
        state = files.load_state()
    assert state == ValidatorScores(last_window=5)
    assert not files.state.exists()
    aside = list(files.state.parent.glob(f"{files.state.name}.corrupt-*"))
    assert len(aside) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "lost" in warnings[0] and aside[0].name in warnings[0] and "window 5" in warnings[0]


def test_damaged_state_without_a_journal_starts_fresh(files: ValidatorFiles) -> None:
    files.state.write_bytes(b'{"peers": {')
    assert files.load_state() == ValidatorScores()
    files.save_state(ValidatorScores(last_window=1))  # the validator carries on writing
    assert files.load_state() == ValidatorScores(last_window=1)
