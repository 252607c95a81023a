"""Chaos: a validator SIGKILLed at every crash point of its loop keeps an exact journal.

Two validators share an evaluation secret, so window for window they reach the same
scoring state (the journal's ``state_sha256``). The second one kills itself
(``GAUNTLET_CRASH_AT``) at each point of :data:`VALIDATOR_POINTS` in turn, aimed at the
instants that decide whether state survives (between the journal line and the state
file, after stepping the model, after setting weights, ...), and the localnet restarts it
each time. Its journal must still hold every window from its first to its last, each
with the first validator's state digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration_helpers import run_localnet

from gauntlet.node.crash_points import VALIDATOR_POINTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "c3" * 32
WINDOWS = 12
# "committed" first: a validator killed before it ever finished a window restarts as a new
# one (at the current window, fresh scores), not as the same one resuming; after one
# finished window, every other point is a resume.
POINTS = ("committed", *(p for p in VALIDATOR_POINTS if p != "committed"))


def last_records(path: Path) -> dict[int, str]:
    """Window -> state digest of the journal's last record of that window (a window
    processed again after a crash is journalled again; the later line counts)."""
    records: dict[int, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["window"]] = record["state_sha256"]
    return records


def test_a_validator_killed_at_every_crash_point_keeps_every_window_and_state(
    tmp_path: Path, stdlib_dataset_dir: Path
) -> None:
    completed = run_localnet(
        tmp_path, stdlib_dataset_dir,
        "--localnet.validators", "2", "--localnet.miners", "2",
        "--localnet.windows", str(WINDOWS),
        "--localnet.crash_points", ",".join(POINTS),
        "--validator.eval_secret", SECRET, "--train.inner_steps", "4",
        timeout=900,
    )  # fmt: skip
    out = completed.stdout + completed.stderr
    assert completed.returncode == 0, out[-6000:]
    fired = [
        line for line in completed.stdout.splitlines() if "killed itself at crash point" in line
    ]
    assert [line.split("'")[1] for line in fired] == list(POINTS), fired
    (run,) = tmp_path.iterdir()
    log = (run / "logs" / "validator1.log").read_text()
    assert log.count("crash point ") >= len(VALIDATOR_POINTS)  # each SIGKILL came from within
    assert log.count("validator uid") == len(VALIDATOR_POINTS) + 1

    journals = {
        path.name: last_records(path) for path in sorted((run / "state").glob("validator-*.jsonl"))
    }
    assert len(journals) == 2
    hotkey1 = _hotkey_of(run, "validator1")
    crashed = journals[f"validator-{hotkey1}.jsonl"]
    (steady,) = [j for name, j in journals.items() if name != f"validator-{hotkey1}.jsonl"]
    windows = sorted(crashed)
    assert windows == list(range(windows[0], windows[-1] + 1)), f"gaps in {windows}"
    # The localnet holds the chain at block 0 until both are up, so both journal from window
    # 0; the run ends once the victim has journalled a window after its last crash, and
    # every window both journalled must agree (the victim may have one the lead has not).
    compared = [w for w in windows if w in steady]
    assert windows[0] == 0 and len(compared) >= max(3, len(windows) - 1), (windows, steady)
    assert {w: crashed[w] for w in compared} == {w: steady[w] for w in compared}
    # the run compared states before, between and after the crashes
    assert len({crashed[w] for w in compared}) == len(compared)


def _hotkey_of(run: Path, name: str) -> str:
    from bittensor import Wallet

    return Wallet(name=name, path=str(run / "wallets")).hotkey.ss58_address
