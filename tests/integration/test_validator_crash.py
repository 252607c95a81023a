"""kill -9 a validator mid-window: after restart its state equals an uninterrupted run's.

Two validators with the same evaluation secret score the same contributions, so each
window they reach the same scoring state (ratings, moving averages, scores, counters,
sketches); the journal records a sha256 of that state per window. The localnet kills
the second one with SIGKILL in the middle of a window, restarts it, and it must catch
up and carry on with exactly the first one's states, window for window.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_helpers import run_localnet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "5a" * 32
KILL_AFTER = 3
WINDOWS = 7


def test_a_validator_killed_mid_window_resumes_with_identical_state(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    completed = run_localnet(
        tmp_path, stdlib_dataset_dir,
        "--localnet.validators", "2", "--localnet.windows", str(WINDOWS),
        "--localnet.kill_validator_after", str(KILL_AFTER),
        "--validator.eval_secret", SECRET, "--train.inner_steps", "8",
        timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "kill -9 validator1" in completed.stdout and "restarting validator1" in completed.stdout
    (run,) = tmp_path.iterdir()
    log = (run / "logs" / "validator1.log").read_text()
    assert log.count("validator uid") == 2, "validator1 should have started exactly twice"

    journals = {}
    for path in (run / "state").glob("validator-*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        journals[lines[0]["hotkey"]] = {r["window"]: r["state_sha256"] for r in lines}
    assert len(journals) == 2
    first, second = journals.values()
    common = sorted(set(first) & set(second))
    assert len(common) >= 4, (sorted(first), sorted(second))
    assert {w: first[w] for w in common} == {w: second[w] for w in common}
    # Windows after the crash are among those compared: the restarted validator carried on.
    crash_window = min(common) + KILL_AFTER
    assert [w for w in common if w > crash_window], (crash_window, common)
