"""Child processes the localnet starts, tracked by PID and always stopped.

Children run in their own session so a terminal Ctrl-C reaches only the
orchestrator, which then stops them in order: SIGTERM, a grace period, SIGKILL.
With ``fork`` a ``gauntlet`` command starts as a fork of the orchestrator
(:mod:`.forked`); anything else (torchrun, rclone) is executed as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gauntlet.localnet.forked import ForkedProcess, fork_command, is_gauntlet_command

_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen | ForkedProcess
    log_path: Path
    env: dict[str, str] | None = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class ProcessGroup:
    log_dir: Path
    fork: bool = False  # start gauntlet commands as forks of this process (see .forked)
    children: list[Child] = field(default_factory=list)
    retired: list[Child] = field(default_factory=list)  # stopped on purpose before the end

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        # Defer SIGINT/SIGTERM while spawning: a Ctrl-C that lands inside Popen would
        # otherwise leave a running child that we never recorded, so never stopped.
        # (Blocking the signals instead would leave them blocked in the child.)
        pending: list[int] = []
        previous = {sig: signal.signal(sig, lambda s, _f: pending.append(s)) for sig in _DEFERRED}
        try:
            process: subprocess.Popen | ForkedProcess
            if self.fork and is_gauntlet_command(argv):
                process = fork_command(argv, log_path, env)
            else:
                with open(log_path, "ab") as log:
                    process = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
            child = Child(name, process, log_path, env)
            self.children.append(child)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if pending:
            raise KeyboardInterrupt
        return child

    def stop(self, child: Child, grace_seconds: float = 10.0) -> None:
        """Stop one child (fault injection); it stays in :meth:`pids` but not in :meth:`dead`."""
        _signal_group(child.process, signal.SIGTERM)
        try:
            child.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
        self.children.remove(child)
        self.retired.append(child)

    def kill(self, child: Child) -> None:
        """SIGKILL one child at once, no grace (crash injection); like :meth:`stop` otherwise."""
        _signal_group(child.process, signal.SIGKILL)
        child.process.wait()
        self.children.remove(child)
        self.retired.append(child)

    def retire(self, child: Child) -> None:
        """Forget a child that has exited on purpose (a crash it was told to make)."""
        child.process.wait()
        self.children.remove(child)
        self.retired.append(child)

    def rss_bytes(self) -> int:
        """Memory of every live process in our children's process groups, summed: each
        one's proportional set size (shared pages split among their users, so the sum is
        what the run really holds), or its resident size where PSS is unavailable."""
        groups = {c.process.pid for c in self.children if c.alive}
        total = 0
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Field 5 of /proc/PID/stat (after the parenthesised name) is the process group.
                stat = (proc / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) not in groups:
                    continue
                total += _memory_kib(proc) * 1024
        return total

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

    def pids(self) -> list[int]:
        return [c.process.pid for c in [*self.retired, *self.children]]

    def stop_all(self, grace_seconds: float = 10.0) -> None:
        """Stop every child we started (newest first, so nodes go before the chain)."""
        for child in reversed(self.children):
            if child.alive:
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for child in reversed(self.children):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()


def _memory_kib(proc: Path) -> int:
    """PSS from smaps_rollup, else VmRSS from status (kB); 0 if neither is readable."""
    for name, label in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        with contextlib.suppress(OSError):
            for line in (proc / name).read_text().splitlines():
                if line.startswith(label):
                    return int(line.split()[1])
    return 0


def _signal_group(process: subprocess.Popen | ForkedProcess, sig: signal.Signals) -> None:
    # The child leads its own session/process group: signal the group so any
    # helper it spawned goes too, but only ever groups we created.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
