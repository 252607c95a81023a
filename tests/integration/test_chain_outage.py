"""Nodes ride out a chain outage: the chain stops mid-run, restarts, and the network goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_helpers import run_localnet

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_network_recovers_after_the_chain_restarts(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    completed = run_localnet(
        tmp_path,
        stdlib_dataset_dir,
        "--localnet.windows",
        "7",
        "--localnet.chain_outage_after",
        "2",
        "--localnet.chain_outage_seconds",
        "6",
        timeout=500,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "chain is back" in completed.stdout
    (run,) = tmp_path.iterdir()
    for name in ("validator0", "miner0"):
        assert "unavailable" in (run / "logs" / f"{name}.log").read_text(), (
            f"{name} never saw the outage"
        )
    results = json.loads((run / "report" / "results.json").read_text())
    # Nobody is blamed for the outage: the windows whose uploads it overlapped are not
    # scored at all, so no window after the first (which nodes start into) has every honest
    # miner missing (issue 15: each window the outage spanned was).
    statuses = {w["window"]: [p["status"] for p in w["peers"].values()] for w in results["windows"]}
    blamed = {
        w: s for w, s in statuses.items() if w > min(statuses) and s and set(s) == {"missing"}
    }
    assert not blamed, statuses
    last = [p["status"] for p in results["windows"][-1]["peers"].values()]
    assert last.count("ok") == 3, f"miners did not contribute again after the outage: {last}"
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["pids"]) == 6  # chain twice, validator, 3 miners
    assert summary["validation_loss_last"] < summary["validation_loss_first"]
