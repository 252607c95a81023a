"""Start a ``gauntlet`` command as a forked copy of the orchestrator, not a new interpreter.

Every node process begins by importing torch, bittensor and the node code: about 4 s of CPU
each, 17 times over for ``scenarios/adversarial.toml`` (its nodes took 60 s to come up on
two cores) and again at every restart a fault or crash test makes. The orchestrator imports
that code once (:func:`preload`) and forks a child per node, which runs the same
``gauntlet`` command line in-process. A child is still its own OS process: its own address
space, PID, session, environment, log file and exit status, stopped by signals as before.

The parent must not have run torch operations before forking (an OpenMP thread pool does
not survive ``fork``); the orchestrator only imports, reads files and talks HTTP.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import NoReturn

# What node commands import; loaded once in the orchestrator, shared by every child.
NODE_MODULES = (
    "torch",
    "gauntlet.node.miner",
    "gauntlet.node.validator",
    "gauntlet.localnet.behaviours",
    "gauntlet.chain.sim.server",
)


def preload() -> None:
    """Import the node code here, so forked children start with it loaded."""
    for name in NODE_MODULES:
        importlib.import_module(name)


def is_gauntlet_command(argv: list[str]) -> bool:
    """Whether ``argv`` runs this interpreter's ``gauntlet`` (what a fork can run)."""
    return argv[:3] == [sys.executable, "-m", "gauntlet.cli"]


class ForkedProcess:
    """The part of :class:`subprocess.Popen` the localnet uses, for a forked child."""

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid == 0:
                    return None
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]


def fork_command(argv: list[str], log_path: Path, env: dict[str, str] | None) -> ForkedProcess:
    """Fork a child that runs the ``gauntlet`` command ``argv`` (a full command line, as
    :func:`is_gauntlet_command` accepts) with ``env``, stdin from /dev/null and stdout and
    stderr appended to ``log_path``, in a session of its own."""
    sys.stdout.flush()
    sys.stderr.flush()
    ready, told = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready)
        _run_child(argv[3:], log_path, env, told)
    os.close(told)
    try:  # returns once the child leads its session, as Popen returns after exec: a
        os.read(ready, 1)  # signal to its group sent at once must not miss it
    finally:
        os.close(ready)
    return ForkedProcess(pid, argv)


def _run_child(args: list[str], log_path: Path, env: dict[str, str] | None, told: int) -> NoReturn:
    code = 1
    try:
        os.setsid()
        os.write(told, b"s")
        os.close(told)
        # The parent's handlers (it defers signals while it forks) are not this node's.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        # New streams on the redirected descriptors: the parent's may be anything (under
        # pytest they are in-memory captures, and what the child writes there is lost).
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        logging.root.handlers.clear()  # the node sets up its own, on the redirected stderr
        _reseed()
        sys.argv = ["gauntlet", *args]
        from gauntlet.cli import main

        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a child reports everything and exits, never returns
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    """A forked child starts with its parent's random states: give it its own, as a new
    interpreter would have (retry jitter, anything not seeded from config)."""
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
