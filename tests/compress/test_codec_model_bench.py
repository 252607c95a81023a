"""bench/codec_model.py times a whole model's validate, decode and aggregate and prints a
checksum of each result's bits, for comparing two checkouts' runs bitwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.codec_model import checksum  # noqa: E402


def test_the_checksum_sees_any_changed_or_moved_bit() -> None:
    a = {"x": torch.randn(100, generator=torch.Generator().manual_seed(0)), "y": torch.ones(3)}
    same = {name: t.clone() for name, t in a.items()}
    assert checksum(a) == checksum(same)
    swapped = dict(same, x=same["x"][[1, 0, *range(2, 100)]])
    nudged = dict(same, y=torch.nextafter(same["y"], torch.full((3,), 2.0)))
    assert len({checksum(a), checksum(swapped), checksum(nudged)}) == 3


def _run(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "codec_model.py"), "--device", "cpu", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_the_mean_of_one_update_sent_twice_is_that_update_bit_for_bit() -> None:
    report = _run("--subset", "layers.0.attention_norm", "--peers", "2", "--distinct", "1",
                  "--repeats", "1")  # fmt: skip
    assert report["params"] == 2048 and report["machine"]["device"] == "cpu"
    assert report["gauntlet"] == str(ROOT / "gauntlet")  # this checkout's code was timed
    for label, row in report["results"].items():
        assert row["validate_s"] > 0 and row["decode_s"] > 0 and row["aggregate_none_s"] > 0
        # (u + u) / 2 and the per_peer mean of two equal norms are u exactly
        assert row["aggregate_none_checksum"] == row["decode_checksum"], label
        assert row["aggregate_per_peer_checksum"] == row["decode_checksum"], label
