"""Commands the localnet starts as forks of itself: each a process of its own (session,
environment, log, exit status) that behaves as the executed command would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gauntlet.localnet.forked import ForkedProcess, fork_command, is_gauntlet_command
from gauntlet.localnet.processes import ProcessGroup


def gauntlet(*args: str) -> list[str]:
    return [sys.executable, "-m", "gauntlet.cli", *args]


def test_only_this_interpreters_gauntlet_commands_are_forked() -> None:
    assert is_gauntlet_command(gauntlet("validator"))
    assert not is_gauntlet_command(["torchrun", "-m", "gauntlet.cli", "miner"])
    assert not is_gauntlet_command(["/usr/bin/python3", "-m", "gauntlet.cli", "miner"])


def test_a_forked_command_logs_and_exits_as_the_executed_one(tmp_path: Path) -> None:
    argv = gauntlet("validator", "--chain.blocks_per_window", "-3")  # refused: exit status 2
    executed = subprocess.run(argv, capture_output=True, text=True, env={**os.environ})
    child = fork_command(argv, tmp_path / "forked.log", {**os.environ, "MARK": "1"})
    assert child.wait(timeout=60) == executed.returncode == 2
    assert child.poll() == 2 and child.args == argv
    logged = (tmp_path / "forked.log").read_text()
    assert "invalid configuration" in logged and "invalid configuration" in executed.stderr


def test_a_forked_child_leads_its_own_session_with_its_own_environment(tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    child = fork_command(
        gauntlet("config", "show"), log, {"PATH": os.environ["PATH"], "GAUNTLET_CHAIN__NETUID": "7"}
    )
    assert os.getsid(child.pid) == child.pid  # fork_command returns once it leads its session
    assert child.wait(timeout=60) == 0
    with pytest.raises(ProcessLookupError):
        os.getsid(child.pid)  # reaped: the pid is gone
    shown = log.read_text()  # what the command printed went to its log, not ours
    assert '"netuid": 7' in shown  # the environment it was given, not ours


def test_a_group_stops_a_forked_node_by_its_session(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs", fork=True)
    child = group.start(
        "chain", gauntlet("chain", "serve", "--port", "0", "--db", str(tmp_path / "chain.sqlite"))
    )
    assert isinstance(child.process, ForkedProcess)
    assert os.getsid(child.process.pid) == child.process.pid  # a session of its own
    time.sleep(1.0)
    assert child.alive
    group.stop_all(grace_seconds=20)
    assert child.process.returncode is not None and not child.alive
    assert child.process.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM)


def test_waiting_on_a_running_child_times_out_like_popen(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs", fork=True)
    child = group.start(
        "chain", gauntlet("chain", "serve", "--port", "0", "--db", str(tmp_path / "chain.sqlite"))
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            child.process.wait(timeout=0.2)
    finally:
        group.stop_all(grace_seconds=20)
