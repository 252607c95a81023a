"""Running `gauntlet localnet` as a real process, and checking what it left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_localnet(
    run_dir: Path, dataset_dir: Path, *flags: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """``gauntlet localnet FLAGS`` into ``run_dir`` over the prepared dataset, output captured.

    The caller's GAUNTLET_* variables are dropped so only the flags decide the run.
    """
    return subprocess.run(
        [
            sys.executable, "-m", "gauntlet.cli", "localnet", *flags,
            "--localnet.run_dir", str(run_dir), "--data.dataset_dir", str(dataset_dir),
        ],
        capture_output=True, text=True, timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
    )  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
