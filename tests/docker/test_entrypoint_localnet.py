"""The container's command line, proven without Docker: docker/entrypoint.sh runs the localnet.

The environment is what docker/compose.localnet.yml gives the container (settings as
GAUNTLET_* variables, NODE_ARGS, secrets from .env it must drop), with this repository's venv
on PATH in place of the image's, and a temporary directory in place of its volumes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from docker_helpers import ENTRYPOINT, VENV_BIN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_entrypoint_runs_a_two_window_localnet(tmp_path: Path, stdlib_dataset_dir: Path) -> None:
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(tmp_path / "home"),
        ROLE_FILE=str(tmp_path / "role"),
        GAUNTLET_LOCALNET__WINDOWS="2",
        GAUNTLET_LOCALNET__RUN_DIR=str(runs),
        GAUNTLET_DATA__DATASET_DIR=str(stdlib_dataset_dir),
        # A node setting the localnet must hand to its nodes through the run's config, not
        # through an inherited variable that would point them at the wrong wallets.
        GAUNTLET_WALLET__PATH=str(tmp_path / "not-the-run-wallets"),
        NODE_ARGS="--localnet.miners 2",
        STORE_ADMIN_SECRET_ACCESS_KEY="must-not-reach-the-nodes",
    )
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "localnet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run directory" in done.stdout
    assert done.stdout.count("validation loss") >= 2
    (summary_path,) = runs.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["completed"] and len(summary["windows"]) == 2
    assert sum(role.startswith("miner") for role in summary["roles"].values()) == 2
    node_config = json.loads((summary_path.parent / "node-config.json").read_text())
    assert node_config["wallet"]["path"] == str(summary_path.parent / "wallets")
