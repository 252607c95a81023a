"""bench/page_advantages.py: a page's advantage and one uid's summary (its run-level test
is in tests/integration/test_adversarial_scenario.py, on that run)."""

from __future__ import annotations

import pytest

from bench import page_advantages as bench


def test_a_pages_advantage_is_the_controls_mean_loss_less_the_updates_over_the_loss_before() -> (
    None
):
    before, after = [4.0, 2.0], [3.0, 2.0]
    controls = [[3.5, 1.9], [3.7, 2.1]]  # two controls, each over both pages
    got = bench.page_advantages(before, after, controls)
    assert got == pytest.approx([(3.6 - 3.0) / 4.0, (2.0 - 2.0) / 2.0])
    with pytest.raises(ValueError):  # a control measured on other pages than the update
        bench.page_advantages(before, after, [[3.5]])


def test_the_summary_counts_each_windows_pages_below_each_margin() -> None:
    rows = [[0.05, 0.005, -0.01], [0.04, 0.03]]  # windows of 3 and 2 declared pages
    got = bench.summarise(rows, [0.0, 0.01])
    assert got["windows"] == 2
    assert got["by_position"] == pytest.approx([0.045, 0.0175, -0.01])
    assert got["below"]["0.0"] == {"mean": pytest.approx(1 / 6, abs=1e-4), "max": 0.3333}
    assert got["below"]["0.01"] == {"mean": pytest.approx(1 / 3, abs=1e-4), "max": 0.6667}
