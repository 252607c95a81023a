"""How long ``gauntlet rescore`` takes on a long journal, and the memory it holds.

Writes a synthetic journal the validator's way (``window_report`` of a real scoring state,
appended by ``ValidatorFiles.append_journal``): ``--miners`` uids every window, each
evaluated with probability ``--evaluated`` (the rest ok or, one in ten, missing), for
``--windows`` windows. Then runs ``gauntlet rescore`` on it in a child process, as an
operator would, and prints JSON: the journal's size, the rescore's wall time, its peak
resident memory (the child's ``ru_maxrss``: the first child this process starts) and the
largest weight difference it found (0 under the settings the journal was written with),
with the machine it ran on.

    .venv/bin/python bench/rescore.py --miners 256 --windows 720     # a day of 2-minute windows
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_info  # noqa: E402
from gauntlet.node.checks import Verdict  # noqa: E402
from gauntlet.node.validator_state import ValidatorFiles  # noqa: E402
from gauntlet.node.window_report import window_report  # noqa: E402
from gauntlet.score.config import ScoringConfig  # noqa: E402
from gauntlet.score.loss import Evaluation  # noqa: E402
from gauntlet.score.state import ValidatorScores  # noqa: E402
from gauntlet.score.window import PeerWindow, advance_window  # noqa: E402


def write_journal(state_dir: Path, miners: int, windows: int, evaluated: float) -> Path:
    rng = random.Random(0)
    config = ScoringConfig(eval_budget=max(1, int(miners * evaluated)))
    files, state = ValidatorFiles(state_dir, "5BenchValidator"), ValidatorScores()
    pages = {uid: 1 + uid % 5 for uid in range(miners)}
    for window in range(windows):
        verdicts, observations, evaluations = {}, {}, {}
        for uid in range(miners):
            outcome = "missing" if rng.random() < 0.1 else "ok"
            sync = 1.0 if rng.random() < 0.9 else rng.uniform(0.5, 1.0)
            verdicts[uid] = Verdict(uid, f"miner{uid}", outcome, sync)
            if outcome == "ok" and rng.random() < evaluated:
                before = rng.uniform(2.0, 4.0)
                gain = 0.004 * pages[uid] - 0.006 + rng.gauss(0, 0.004)
                after = before * (1 - gain - 0.02)
                evaluations[uid] = Evaluation(
                    before, after, 3.0, 3.0 * (1 - gain), declared_pages=pages[uid],
                    control_after=after + (0.03 + rng.gauss(0, 0.01)) * before,
                )  # fmt: skip
            observations[uid] = PeerWindow(f"miner{uid}", outcome, sync, evaluations.get(uid))
        state = advance_window(state, window, observations, config)
        report = window_report(window, "5BenchValidator", 1, verdicts, evaluations, state,
                               config, (3.0, 2.9))  # fmt: skip
        files.append_journal(report, "0" * 64)
    (state_dir / "scoring.json").write_text(json.dumps({"scoring": config.model_dump()}))
    return files.journal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--windows", type=int, default=720)
    parser.add_argument("--evaluated", type=float, default=0.125, help="share evaluated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        journal = write_journal(Path(tmp), args.miners, args.windows, args.evaluated)
        written_s = time.perf_counter() - started
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "gauntlet.cli", "rescore", str(journal), "--json",
             "--config", str(Path(tmp) / "scoring.json")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rescore_s = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = json.loads(out.stdout)
        print(
            json.dumps(
                {
                    "miners": args.miners,
                    "windows": args.windows,
                    "evaluated_share": args.evaluated,
                    "journal_bytes": journal.stat().st_size,
                    "write_s": round(written_s, 1),
                    "rescore_s": round(rescore_s, 2),
                    "rescore_peak_rss_mb": round(peak_kb / 1024, 1),
                    "largest_weight_difference": result["largest_weight_difference"],
                    "machine": machine_info(),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
