"""bench/alignment_pages.py measures how much of the last aggregate honest updates of 1-9
pages carry and what a one-page booster gains under one alignment limit for every update
or a limit per declared page (docs/scoring.md, "Weighted by pay")."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.alignment_pages import cosine_of_odds, limits, odds  # noqa: E402


def test_odds_and_their_cosine_are_inverse() -> None:
    for cosine in (0.0, 0.1, 0.47, 0.9):
        assert cosine_of_odds(odds(cosine)) == pytest.approx(cosine)
    assert odds(-0.3) == 0.0


def test_the_per_page_limit_gives_every_update_the_same_odds_per_page() -> None:
    cosines = {1: 0.30, 2: 0.40, 3: 0.45, ("boost", 0): 0.55}
    pages = {1: 1, 2: 2, 3: 3, ("boost", 0): 1}
    got = limits(cosines, pages)
    assert set(got["one limit"].values()) == {0.40}  # the honest median, for everyone
    per_page = {key: odds(c) / pages[key] for key, c in got["per page"].items()}
    assert max(per_page.values()) == pytest.approx(min(per_page.values()))
    # k is the honest updates' median odds per page, so the booster's one page gets the
    # limit of an honest one-page update of that k, under its own 0.55
    k = statistics.median(odds(cosines[n]) / n for n in (1, 2, 3))
    assert got["per page"][("boost", 0)] == pytest.approx(cosine_of_odds(k))
    assert got["per page"][("boost", 0)] < 0.55


def test_the_bench_reports_cosines_limits_and_gains(stdlib_dataset_dir: Path) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "alignment_pages.py"), "--windows", "2",
            "--eval-batches", "2", "--boosters", "2", "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "alignment_pages" and "cpu_model" in report["machine"]
    assert len(report["windows"]) == 1  # the first window has no last aggregate
    for row in report["windows"]:
        honest = [row["cosines"][f"{n} pages"] for n in (1, 2, 3, 4, 5, 9)]
        limit = row["limits"]["one limit"]["1 pages"]
        assert limit == pytest.approx(statistics.median(honest), abs=1e-4)
        # the boost makes the booster's upload lie along the last aggregate more than its
        # trained page alone would: cos² = 0.3 before the codec
        assert row["cosines"]["booster 0"] > 0.3
        # an update at or under its limit is measured as sent
        for label, gain in row["gains"]["one limit"].items():
            if row["cosines"][label] < limit:
                assert gain == pytest.approx(row["gains"]["as sent"][label])
