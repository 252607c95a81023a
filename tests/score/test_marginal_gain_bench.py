"""bench/marginal_gain.py measures each update's worth three ways: applied alone (what
validators do), as its marginal gain to the window's aggregate (leave one out), and that
gain to first order from one shared gradient at the aggregate (docs/validator.md, "Why
four passes, not two")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_first_order_marginal_gains_follow_the_leave_one_out_ones(stdlib_dataset_dir: Path) -> None:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "marginal_gain.py"), "--windows", "2",
            "--eval-batches", "2", "--boosters", "2", "--dataset-dir", str(stdlib_dataset_dir),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["bench"] == "marginal_gain" and "cpu_model" in report["machine"]
    assert report["windows_measured"] == 1 and len(report["windows"]) == 1
    row = report["windows"][0]
    assert set(row) == {"alone", "leave one out", "first order"}
    assert set(row["alone"]) == {f"{n} pages" for n in (1, 2, 3, 4, 5, 9)} | {"booster 0"}
    # a 1/N share of an update is a short step from the aggregate: first order holds
    for name, marginal in row["leave one out"].items():
        linear = row["first order"][name]
        assert abs(linear - marginal) <= 0.1 * abs(marginal) + 1e-6, name
    # a share moves the model a fraction of what the whole update moves it alone
    assert all(abs(row["leave one out"][name]) < abs(row["alone"][name]) for name in row["alone"])


def test_the_outer_step_is_the_aggregate_or_nesterovs() -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from bench.marginal_gain import outer_step

    g1, g2 = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 2.0])}
    step, velocity = outer_step(g1, None, 0.0)
    assert torch.equal(step["w"], g1["w"]) and torch.equal(velocity["w"], g1["w"])
    _, velocity = outer_step(g1, None, 0.5)  # v = g1
    step, velocity = outer_step(g2, velocity, 0.5)  # v = 0.5 g1 + g2, step = g2 + 0.5 v
    torch.testing.assert_close(velocity["w"], torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(step["w"], torch.tensor([0.25, 3.0]))
