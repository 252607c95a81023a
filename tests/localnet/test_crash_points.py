"""Aimed crash injection: the variable is checked, the point kills, the schedule restarts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gauntlet.config.loader import load_config
from gauntlet.localnet.faults import AimedCrashes, FaultError
from gauntlet.localnet.processes import ProcessGroup
from gauntlet.node.crash_points import CRASH_ENV, VALIDATOR_POINTS, CrashPointError, armed_point


def test_a_misspelt_crash_point_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "journaled")
    with pytest.raises(CrashPointError, match="journalled"):
        armed_point()
    monkeypatch.setenv(CRASH_ENV, "journalled")
    assert armed_point() == "journalled"
    monkeypatch.delenv(CRASH_ENV)
    assert armed_point() is None


def test_the_crash_variable_is_not_mistaken_for_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "start")
    load_config(environ={CRASH_ENV: "start"})  # any other unknown GAUNTLET_* is an error
    with pytest.raises(Exception, match="GAUNTLET_CRASH_ATX"):
        load_config(environ={"GAUNTLET_CRASH_ATX": "start"})


def test_a_crash_point_kills_the_process_with_sigkill_only_when_armed() -> None:
    code = "from gauntlet.node.crash_points import crash_point; crash_point('stepped'); print('passed')"
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    missed = subprocess.run([sys.executable, "-c", code], env={**env, CRASH_ENV: "advanced"},
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert missed.stdout.strip() == "passed"
    hit = subprocess.run([sys.executable, "-c", code], env={**env, CRASH_ENV: "stepped"},
                         capture_output=True, text=True)  # fmt: skip
    assert hit.returncode == -9 and "passed" not in hit.stdout
    assert "crash point stepped: SIGKILL" in hit.stderr


def test_the_schedule_restarts_the_victim_armed_with_each_point_in_turn(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="unknown crash points"):
        AimedCrashes.parse("v1", "start,nowhere")
    crashes = AimedCrashes.parse("v1", " start, stepped ")
    assert crashes.points == ["start", "stepped"] and set(crashes.points) <= set(VALIDATOR_POINTS)
    group = ProcessGroup(tmp_path)
    die = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    child = group.start("v1", die, env={**os.environ, **crashes.env()})
    child.process.wait()
    assert child.env is not None and child.env[CRASH_ENV] == "start"
    again = crashes.restart(group, child, reported=3)
    again.process.wait()
    assert again.env is not None and again.env[CRASH_ENV] == "stepped"
    assert crashes.fired == ["start"] and crashes.armed_at == 3
    assert crashes.overdue(3 + 4) is None
    assert crashes.overdue(3 + 5) == "crash point 'stepped'"
    last = crashes.restart(group, again, reported=5)
    assert last.env is not None and CRASH_ENV not in last.env  # all fired: unarmed from now on
    last.process.wait()
    with pytest.raises(FaultError, match="exited"):  # no point armed: a SIGKILL is a failure
        crashes.restart(group, last, reported=6)
    group.stop_all()


def test_the_schedule_is_done_only_once_the_victim_journalled_after_its_last_crash(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "validator-h.jsonl"
    journal.write_text('{"window": 0}\n')
    crashes = AimedCrashes.parse("v1", "stepped", journal=journal)
    assert not crashes.done()  # a point is still pending
    group = ProcessGroup(tmp_path)
    die = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    child = group.start("v1", die, env={**os.environ, **crashes.env()})
    child.process.wait()
    crashes.restart(group, child, reported=2).process.wait()
    assert crashes.points == [] and crashes.journalled_at_restart == 1
    assert not crashes.done()  # fired, but the restarted victim has not finished a window
    assert crashes.overdue(2 + 5) == "a journalled window after crash point 'stepped'"
    with journal.open("a") as out:
        out.write('{"window": 1}\n')
    assert crashes.done() and crashes.overdue(2 + 5) is None
    assert AimedCrashes.parse("v1", "", journal=journal).done()  # no schedule: nothing to wait for
    group.stop_all()
