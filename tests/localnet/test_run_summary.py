"""The end-of-run summary the localnet prints: the incentive at the end beside its mean over
the run's second half."""

from __future__ import annotations

from gauntlet.localnet.report import RunSummary


def test_the_summary_shows_each_miners_second_half_pay_beside_its_last_incentive() -> None:
    summary = RunSummary(
        windows=[0, 1],
        validation_loss_first=5.0,
        validation_loss_last=4.0,
        roles={1: "miner0", 2: "miner1"},
        behaviours={1: "honest", 2: "weak-control"},
        incentive={1: 0.25, 2: 0.75},
        incentive_late={1: 0.6, 2: 0.4},
    )
    lines = summary.render().splitlines()
    assert lines[1].split()[-3:] == ["incentive", "2nd", "half"]
    assert lines[2].split()[-2:] == ["0.2500", "0.6000"]
    assert lines[3].split()[-2:] == ["0.7500", "0.4000"]
