"""One honest localnet run shared by the modules that only read what it left behind.

A localnet run costs about 50 s on two cores; the walking-skeleton checks
(test_localnet.py) and the catch-up and ledger checks (test_catch_up.py) ask for the same
run (3 honest miners, one validator, 5 windows), the latter with a checkpoint every 2
windows, which the former does not mind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_helpers import HONEST_WINDOWS, HonestRun, run_localnet


@pytest.fixture(scope="session")
def honest_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> HonestRun:
    root = tmp_path_factory.mktemp("honest")
    completed = run_localnet(
        root, stdlib_dataset_dir,
        "--localnet.windows", str(HONEST_WINDOWS), "--validator.checkpoint_interval", "2",
        timeout=400,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-8000:]
    (run,) = root.iterdir()
    return HonestRun(run, completed)
