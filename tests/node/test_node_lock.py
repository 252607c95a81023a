"""One node per hotkey and state directory: a second one is refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gauntlet.node.identity import create_wallet
from gauntlet.node.node_lock import NodeLockError, lock_node, lock_path, release_node
from gauntlet.storage.local_servers import free_port

HOLD = """
import sys, time
from gauntlet.node.node_lock import lock_node
lock_node(sys.argv[1], sys.argv[2])
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, str]]:
    """Another process that holds the lock of hotkey ``5Hot`` in ``tmp_path/state``."""
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state), "5Hot"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc, state, "5Hot"
    proc.kill()
    proc.wait(timeout=10)


def test_a_second_process_on_the_same_hotkey_and_state_dir_is_refused_with_the_holders_pid(
    holder: tuple[subprocess.Popen[str], Path, str],
) -> None:
    proc, state, hotkey = holder
    with pytest.raises(NodeLockError, match=f"pid {proc.pid}.*hotkey 5Hot"):
        lock_node(state, hotkey)


def test_the_lock_is_free_again_once_its_holder_dies(
    holder: tuple[subprocess.Popen[str], Path, str],
) -> None:
    proc, state, hotkey = holder
    proc.kill()
    proc.wait(timeout=10)
    assert lock_node(state, hotkey) == lock_path(state, hotkey).resolve()
    release_node(state, hotkey)


def test_other_hotkeys_share_a_state_dir_and_one_process_may_lock_twice(tmp_path: Path) -> None:
    lock_node(tmp_path, "5A")
    lock_node(tmp_path, "5B")
    lock_node(tmp_path, "5A")  # the holder asking again is not a second node
    release_node(tmp_path, "5A")
    release_node(tmp_path, "5B")


def test_a_second_gauntlet_miner_with_the_hotkey_exits_2_in_one_line(tmp_path: Path) -> None:
    hotkey = create_wallet(tmp_path / "wallets", "m").ss58_address
    state = tmp_path / "state"
    hold = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state), hotkey], stdout=subprocess.PIPE, text=True
    )
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "locked"
        argv = [
            sys.executable,
            "-m",
            "gauntlet.cli",
            "miner",
            "--wallet.path",
            str(tmp_path / "wallets"),
        ]
        argv += ["--wallet.name", "m", "--node.state_dir", str(state)]
        argv += ["--chain.endpoint", f"http://127.0.0.1:{free_port()}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
        started = time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    finally:
        hold.kill()
        hold.wait(timeout=10)
    assert out.returncode == 2
    assert f"cannot start: another node (pid {hold.pid}) already runs hotkey {hotkey}" in out.stderr
    assert "Traceback" not in out.stderr and "unreachable" not in out.stderr  # refused first
    assert time.monotonic() - started < 60
