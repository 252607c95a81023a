"""bench/validator.py runs the validator's real fetch and evaluation code and prints its
costs (its run is the validator step of bench/gpu.sh's dry run)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

TIMINGS = (
    "open_s",
    "align_s",
    "decode_s",
    "measure_s",
    "evaluate_s",
    "per_peer_s",
    "shared_before_s",
    "validation_s",
)


def test_tiny_validator_bench_prints_positive_costs_and_peers_per_window(
    gpu_dry_run: Path,
) -> None:
    report = json.loads((gpu_dry_run / "validator.json").read_text())
    assert report["bench"] == "validator"
    machine = set(report["machine"])
    assert {"cpu_model", "cpu_count", "torch", "device", "device_name"} <= machine
    assert {"load_average_at_start", "load_average_at_end"} <= machine
    assert report["machine"]["device"] == "cpu"
    assert "peers_per_window = floor(" in report["formula"]
    assert report["window_seconds"] == {"5s": 5.0, "120s": 120.0}
    (row,) = report["results"]
    assert row["model"] == "tiny" and row["peers_timed"] == 2 and row["random_pages"] == 3
    # Pages larger than the node's default 4096 tokens, as on a GPU (32784 at 1.2b): the
    # bench's node must read the dataset it made with the page size it made it with.
    assert row["page_tokens"] == 4 * 8 * (160 + 1) > 4096
    assert row["codec"]["name"] == "topk"
    assert row["params"] > 0 and row["payload_bytes"] > 0
    for key in TIMINGS:
        assert row[key] > 0, (key, row)
    parts = row["open_s"] + row["measure_s"] + row["align_s"] + row["evaluate_s"]
    assert row["per_peer_s"] == pytest.approx(parts, abs=2e-4)
    assert row["fixed_s"] == pytest.approx(row["shared_before_s"] + row["validation_s"], abs=2e-4)
    for name, seconds in report["window_seconds"].items():
        expected = max(0, math.floor((seconds - row["fixed_s"]) / row["per_peer_s"]))
        # the printed parts are rounded to 0.1 ms, which moves a count of thousands a little
        assert row["peers_per_window"][name] == pytest.approx(expected, rel=0.01, abs=1)
    assert row["peers_per_window"]["120s"] >= row["peers_per_window"]["5s"] >= 0  # load-dependent
    losses = row["losses_first_peer"]
    assert set(losses) == {"own_before", "own_after", "random_before", "random_after"}
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    # The default synthetic Δ is a gradient step: it helps, so each peer's update is the
    # other's control and the count of measurements is a real window's.
    assert row["delta"] == "gradient"
    assert losses["own_after"] < losses["own_before"]
    assert losses["random_after"] < losses["random_before"]
    assert row["forwards_per_peer"] == 4  # own before/after, random after, the control's pass
    assert row["applies_per_peer"] == 1 + 1  # its own, and as the other's control
    assert row["decodes_per_peer"] == 1 + 1  # decoded each time it is applied, then dropped
    assert row["updates_held_evaluation"] == 1  # one decoded update alive at a time
    assert row["update_mb"] > 0 and row["evaluate_peak_gpu_mb"] is None  # a CPU run
    assert row["forward_s"] > 0 and row["apply_s"] > 0
    modelled = (
        row["forwards_per_peer"] * row["forward_s"]
        + row["applies_per_peer"] * row["apply_s"]
        + row["decodes_per_peer"] * row["decode_s"]
    )
    assert row["evaluate_model_s"] == pytest.approx(modelled, abs=5e-4)  # parts rounded to 0.1 ms
