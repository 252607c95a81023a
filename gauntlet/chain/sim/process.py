"""Start the simulated chain as a child OS process and learn its URL (localnet, tests).

The child binds a free port and writes its URL to a ready file; the parent polls for it.
The parent owns the child by PID and stops exactly that process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimChainProcess:
    url: str
    db_path: Path
    proc: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM this child (by PID), SIGKILL if it lingers; return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode


def spawn_sim_chain(
    db_path: Path,
    ready_file: Path,
    *flags: str,
    log_path: Path | None = None,
    start_timeout: float = 30.0,
) -> SimChainProcess:
    """Run ``python -m gauntlet.chain.sim.server`` on a free loopback port.

    ``flags`` are extra server flags (``--block-time 0.2``, ``--tempo 5``...). Raises
    ``RuntimeError`` with the child's log if it exits or stays silent past ``start_timeout`` s.
    """
    ready_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "gauntlet.chain.sim.server", "--port", "0"]
    cmd += ["--db", str(db_path), "--ready-file", str(ready_file), *flags]
    log_path = log_path or ready_file.with_suffix(".log")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    chain = SimChainProcess(url="", db_path=db_path, proc=proc)
    deadline = time.monotonic() + start_timeout
    while not ready_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            chain.stop()
            raise RuntimeError(f"simulated chain did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    chain.url = ready_file.read_text().strip()
    return chain
