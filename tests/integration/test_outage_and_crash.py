"""Two faults in one run: the chain goes down and comes back, then a validator is
``kill -9``-ed mid-window and restarted. The network rides out both.

Two validators share an evaluation secret, so each window they reach the same scoring
state (ratings, moving averages, scores, counters, sketches); the journal records a
sha256 of it per window. The chain stops after window ``OUTAGE_AFTER`` for
``OUTAGE_SECONDS`` (nobody may be blamed for it); after ``KILL_AFTER`` windows the
localnet SIGKILLs the second validator in the middle of a window and restarts it: it must
catch up and carry on with exactly the first one's states, window for window, the
outage's windows included. (One run for both: a localnet costs ~60 s on two cores.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_helpers import run_localnet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "5a" * 32
OUTAGE_AFTER = 2
OUTAGE_SECONDS = 6
KILL_AFTER = 4
WINDOWS = 8


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory: pytest.TempPathFactory, stdlib_dataset_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("faults")
    completed = run_localnet(
        root, stdlib_dataset_dir,
        "--localnet.validators", "2", "--localnet.windows", str(WINDOWS),
        "--localnet.chain_outage_after", str(OUTAGE_AFTER),
        "--localnet.chain_outage_seconds", str(OUTAGE_SECONDS),
        "--localnet.kill_validator_after", str(KILL_AFTER),
        "--validator.eval_secret", SECRET, "--train.inner_steps", "8",
        timeout=700,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-8000:]
    (run,) = root.iterdir()
    return {"run": run, "stdout": completed.stdout}


def test_network_recovers_after_the_chain_restarts(faulted_run: dict) -> None:
    run = faulted_run["run"]
    assert "chain is back" in faulted_run["stdout"]
    for name in ("validator0", "miner0"):
        assert "unavailable" in (run / "logs" / f"{name}.log").read_text(), (
            f"{name} never saw the outage"
        )
    results = json.loads((run / "report" / "results.json").read_text())
    # Nobody is blamed for the outage: the windows whose uploads it overlapped are not
    # scored at all, so no window after the first has every honest miner missing (issue
    # 15: each window the outage spanned was).
    statuses = {w["window"]: [p["status"] for p in w["peers"].values()] for w in results["windows"]}
    blamed = {
        w: s for w, s in statuses.items() if w > min(statuses) and s and set(s) == {"missing"}
    }
    assert not blamed, statuses
    last = [p["status"] for p in results["windows"][-1]["peers"].values()]
    assert last.count("ok") == 3, f"miners did not contribute again after the faults: {last}"
    summary = json.loads((run / "summary.json").read_text())
    # chain twice, validator0, validator1 twice, 3 miners
    assert len(summary["pids"]) == 8, summary["pids"]
    assert summary["validation_loss_last"] < summary["validation_loss_first"]


def test_a_validator_killed_mid_window_resumes_with_identical_state(faulted_run: dict) -> None:
    run = faulted_run["run"]
    assert "kill -9 validator1" in faulted_run["stdout"]
    assert "restarting validator1" in faulted_run["stdout"]
    log = (run / "logs" / "validator1.log").read_text()
    assert log.count("validator uid") == 2, "validator1 should have started exactly twice"
    journals = {}
    for path in (run / "state").glob("validator-*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        journals[lines[0]["hotkey"]] = {r["window"]: r["state_sha256"] for r in lines}
    assert len(journals) == 2
    first, second = journals.values()
    common = sorted(set(first) & set(second))
    assert len(common) >= WINDOWS - 2, (sorted(first), sorted(second))
    assert {w: first[w] for w in common} == {w: second[w] for w in common}
    # Windows after the crash are among those compared: the restarted validator carried on.
    crash_window = min(common) + KILL_AFTER
    assert [w for w in common if w > crash_window], (crash_window, common)
