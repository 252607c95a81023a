"""bench/replay_evaluation.py: the alignment limits it reads from a validator's log and the
control floor it can replay instead (its run-level test, that a validator's evaluation
comes back from its secret, is in tests/integration/test_adversarial_scenario.py)."""

from __future__ import annotations

from pathlib import Path

from bench import replay_evaluation as bench
from gauntlet.node import evaluation
from gauntlet.score.control import strong_controls


def test_the_limits_come_from_the_log_the_last_line_of_a_window_winning(tmp_path: Path) -> None:
    log = tmp_path / "validator0.log"
    prefix = "15:29:10 INFO gauntlet.node.validator: "
    log.write_text(
        f"{prefix}window 5: alignment with the last aggregate, limit 0.526; measured at it: "
        "{3: 0.539, 9: 0.544}\n"
        f"{prefix}window 6: alignment with the last aggregate, limit 0.529; measured at it: none\n"
        "15:30:01 INFO gauntlet.node.validator: window 6: something else\n"
        f"{prefix}window 6: alignment with the last aggregate, limit 0.459; measured at it: "
        "{3: 0.518, 4: 0.529}\n"  # the lead's member check came first, evaluation last
    )
    assert bench.logged_limits(log) == {5: (0.526, [3, 9]), 6: (0.459, [3, 4])}


def test_the_typical_floor_ignores_near_zero_gains_the_nodes_floor_counts() -> None:
    """The gains of ci144's window 10 (as journalled, over the random pages' loss before,
    the same for every update): the node's floor lets the 0.0089 update in, pulled down by
    0.0016 and 0.00005; the floor over gains at least a tenth of the largest does not."""
    gains = {2: 0.0237, 3: 0.0016, 4: 0.0224, 9: 0.0272, 10: 0.0089, 11: 0.00005}
    assert strong_controls(gains) == [2, 4, 9, 10]
    assert bench.typical_floor(0.1)(gains) == [2, 4, 9]
    assert bench.typical_floor(0.1)({1: -0.1, 2: 0.0}) == []


def test_the_control_rule_is_the_nodes_again_after_the_replay() -> None:
    node_rule = evaluation.strong_controls
    try:
        with bench.control_rule(bench.typical_floor(0.1)):
            assert evaluation.strong_controls is not node_rule
            raise RuntimeError("a replay that fails")
    except RuntimeError:
        pass
    assert evaluation.strong_controls is node_rule


def test_the_replayed_rows_replace_only_the_measured_fields_of_the_replayed_peers() -> None:
    journal = [
        {"window": 3, "hotkeys": {}, "peers": [[2, "ok", 1.0, 2, 3.0, 2.8, 0.05, 0.02], [5, "late", None]]},
        {"window": 4, "hotkeys": {}, "peers": [[2, "ok", 1.0, 2, 2.9, 2.7, 0.04, 0.03]]},
    ]  # fmt: skip
    windows = [{"window": 4, "peers": {"2": {"journal": [], "replayed": [2.9, 2.75, 0.03, None]}}}]
    out = bench.with_replayed_rows(journal, windows)
    assert out[0] == journal[0]
    assert out[1]["peers"] == [[2, "ok", 1.0, 2, 2.9, 2.75, 0.03, None]]
    assert journal[1]["peers"][0][5] == 2.7  # the journal itself is left as it was
