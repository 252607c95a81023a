"""bench/measure_norm.py measures honest updates of 1-5 pages at two norms: the median of
the updates the aggregate is formed from, and the median over every passed contribution,
which one operator's one-page hotkeys pull down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cheap_hotkeys_pull_the_all_passed_median_down_and_with_it_the_value_of_pages(
    stdlib_dataset_dir: Path,
) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "measure_norm.py"), "--windows", "2",
            "--eval-batches", "2", "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "measure_norm" and "cpu_model" in report["machine"]
    assert len(report["windows"]) == 2 and report["members"]["later_windows"] == 1
    first = report["windows"][0]
    norms = [first["norms"][str(n)] for n in range(1, 6)]
    assert norms == sorted(norms)  # more pages, a longer step
    # nine one-page hotkeys among fourteen make the median a one-page norm
    assert first["median_all_over_members"] < 0.5
    members = report["members"]["first_window_gain"]
    everyone = report["all passed"]["first_window_gain"]
    # from the initial model, at the members' median, more pages gain more...
    assert members["5"] > members["1"] and report["members"]["first_window_rank_correlation"] > 0.5
    # ...and at the one-page median a 5-page update loses its lead over a 1-page one
    assert everyone["5"] / everyone["1"] < members["5"] / members["1"]
