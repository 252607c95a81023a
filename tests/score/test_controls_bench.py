"""bench/controls.py compares the control designs on the same updates and prints them: the
two full-token designs, the same measurements on half the batches ("two passes"), and the
designs that share more of the work (a control scaled in its update, first-order random
gains from one shared gradient, marginal gains to the aggregate, controls matched in
strength instead of scaled)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def test_controls_bench_prints_every_design_on_the_same_miners(stdlib_dataset_dir: Path) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "controls.py"), "--trials", "2",
            "--honest", "4", "--wrong", "1", "--warm-steps", "0", "--steps", "3",
            "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "controls" and "cpu_model" in report["machine"]
    designs = report["advantage"]
    assert set(designs) == {
        "every batch", "shared out", "two passes", "update-scaled", "linear two",
        "marginal three", "matched three",
    }  # fmt: skip
    assert set(report["separation"]) == set(designs)
    assert all(0 <= v <= 1 for v in report["separation"].values())
    every, shared, half = designs["every batch"], designs["shared out"], designs["two passes"]
    # both designs score the same miners (those with a control), from one set of measurements
    assert every["honest"]["n"] == shared["honest"]["n"] > 0
    assert every["wrong"]["n"] == shared["wrong"]["n"] > 0
    # the half-token design draws its controls from its own (half-measured) gains
    assert half["honest"]["n"] > 0
    assert 1 <= report["controls_per_miner"] <= 4
    # from a fresh model, training on its own pages helps them beyond any control
    assert every["honest"]["mean"] > 0 and shared["honest"]["mean"] > 0
    assert half["honest"]["mean"] > 0
    for design in ("update-scaled", "linear two", "marginal three", "matched three"):
        assert designs[design]["honest"]["n"] > 0 and designs[design]["honest"]["mean"] > 0
    # the marginal gains are a 1/N share of a step from the aggregate: one per update
    marginal = report["marginal_gains"]
    assert marginal["honest"]["n"] == 2 * 4 and marginal["wrong"]["n"] == 2 * 1
    gains = report["random_gains"]
    assert -1 <= gains["correlation"] <= 1 and -1 <= gains["rank_correlation"] <= 1


def test_first_order_gains_are_the_measured_ones_for_a_short_step(
    stdlib_dataset_dir: Path,
) -> None:
    """The linear design's gains are what the loss does along an update to first order:
    they match the measured gain of a short step and drift from it as the step grows (what
    docs/validator.md measures at the real step)."""
    import torch

    from bench.tiny_network import first_order_gains
    from bench.validator_window import BenchNode
    from gauntlet.config.schema import GauntletConfig
    from gauntlet.data import PageDataset
    from gauntlet.model import build_model
    from gauntlet.node.evaluation import losses_on
    from gauntlet.train.inner import snapshot
    from gauntlet.train.outer import applied

    config = GauntletConfig.model_validate(
        {"train": {"seq_len": 64}, "validator": {"eval_batches": 2}}
    )
    dataset = PageDataset(stdlib_dataset_dir)
    node = BenchNode(config, dataset, build_model("tiny", 0), torch.device("cpu"))
    torch.manual_seed(0)
    direction = {k: torch.randn_like(p) for k, p in node.model.named_parameters()}
    pages, seed = [0, 1, 2], 7
    base = snapshot(node.model)
    before = sum(losses_on(node, pages, seed)) / 2

    def measured(scale: float) -> float:
        with applied(node.model, {k: scale * t for k, t in direction.items()}, 1.0, base):
            return before - sum(losses_on(node, pages, seed)) / 2

    short, long = 1e-4, 3e-2
    linear = first_order_gains(
        node, pages, seed, {0: {k: short * t for k, t in direction.items()}}
    )[0]
    assert abs(linear - measured(short)) < 0.05 * abs(linear)
    assert abs(linear * long / short - measured(long)) > 0.2 * abs(linear * long / short)


def test_matched_controls_are_the_strong_updates_nearest_in_gain() -> None:
    from bench.controls import _nearest, _separation

    gains = {0: 0.10, 1: 0.05, 2: 0.21, 3: 0.09, 4: 0.40, 5: -0.02}
    strong = [0, 1, 2, 3, 4]
    # by the ratio of the gains: 0.09 (x0.9), 0.05 (x0.5) and 0.21 (x2.1) from 0.10
    assert _nearest(strong, gains, 0, 3) == [3, 1, 2]
    # an update that did not help is matched with the weakest strong ones
    assert _nearest(strong, gains, 5, 2) == [1, 3]
    assert _nearest([5], gains, 5, 2) == []
    assert _separation({"honest": [0.3, 0.1], "wrong": [0.0, 0.1]}) == 0.875
    assert _separation({"honest": [], "wrong": [0.0]}) is None
