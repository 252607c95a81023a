"""The run results model: what it keeps from window reports and the summary it computes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from localnet_helpers import peer, report, small_run

from gauntlet.localnet.results import (
    RunResults,
    average_ranks,
    compute_incentive_correlation,
    incentive_shares,
    spearman,
)

# -- accumulation -----------------------------------------------------------------


def test_a_report_keeps_losses_and_each_uids_status_score_rating_and_weight() -> None:
    results = RunResults()
    results.add_report(report(5, 6.0, 5.5, [peer(1, 0.75, score=0.6), peer(2, 0.0, status="late")]))
    (w,) = results.windows
    assert (w.window, w.validation_loss_before, w.validation_loss_after) == (5, 6.0, 5.5)
    assert w.peers[1].status == "ok" and w.peers[1].score == 0.6
    assert w.peers[1].rating == 7.5 and w.peers[1].weight == 0.75
    assert w.peers[2].status == "late" and w.peers[2].weight == 0.0
    assert w.peers[2].reason == "late of another miner"
    assert (w.peers[1].sync, w.peers[1].own_improvement) == (0.9, 0.05)
    assert (w.peers[1].random_improvement, w.peers[1].uniqueness) == (0.04, 0.5)
    assert w.incentive is None


def test_windows_are_kept_in_order_and_a_repeated_window_replaces_the_old_one() -> None:
    results = RunResults()
    results.add_report(report(7, 5.0, 4.9, [peer(1, 1.0)]))
    results.add_report(report(6, 5.1, 5.0, [peer(1, 1.0)]))
    results.set_incentive(7, {1: 1.0})
    results.add_report(report(7, 5.0, 4.8, [peer(1, 0.5)]))
    assert [w.window for w in results.windows] == [6, 7]
    assert results.windows[1].validation_loss_after == 4.8
    assert results.windows[1].incentive == {1: 1.0}  # the sample survives a re-read report


def test_incentive_for_a_window_never_reported_is_an_error() -> None:
    with pytest.raises(KeyError, match="window 3"):
        RunResults().set_incentive(3, {1: 1.0})


def test_final_incentive_is_the_latest_sample_even_if_the_last_window_has_none() -> None:
    results = small_run()
    results.add_report(report(5, 3.21, 3.1, [peer(1, 1.0)]))  # e.g. chain down: no sample
    latest = results.window(5)
    assert latest is not None and latest.incentive is None
    assert results.final_incentive() == {0: 0.0, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.1}


def test_mean_incentive_averages_every_sample_and_counts_a_uid_absent_from_one_as_zero() -> None:
    results = RunResults()
    for window in (1, 2, 3):
        results.add_report(report(window, 5.0, 4.9, [peer(1, 1.0)]))
    results.set_incentive(1, {1: 0.6, 2: 0.4})
    results.set_incentive(3, {1: 0.0, 3: 1.0})  # window 2 has no sample: not counted
    assert results.mean_incentive() == pytest.approx({1: 0.3, 2: 0.2, 3: 0.5})
    assert results.final_incentive() == {1: 0.0, 3: 1.0}
    assert RunResults().mean_incentive() == {}


def test_the_late_mean_counts_only_the_samples_of_the_runs_second_half() -> None:
    results = RunResults()
    for window in range(10, 16):  # windows 10-15: the second half starts at window 13
        results.add_report(report(window, 5.0, 4.9, [peer(1, 1.0)]))
        results.set_incentive(window, {1: 0.1 * (window - 9), 2: 1.0 - 0.1 * (window - 9)})
    assert results.mean_incentive(late=True) == pytest.approx({1: 0.5, 2: 0.5})
    assert results.mean_incentive() == pytest.approx({1: 0.35, 2: 0.65})
    assert RunResults().mean_incentive(late=True) == {}


def test_pages_processed_sums_what_accepted_contributions_declared() -> None:
    results = RunResults()
    results.add_node("miner1", 1, "miner", pages=5)
    results.add_node("miner2", 2, "miner", pages=2)
    results.add_node("validator0", 0, "validator")

    def declaring(uid: int, pages: int | None, status: str = "ok"):
        return peer(uid, 0.5, status=status).model_copy(update={"declared_pages": pages})

    results.add_report(report(1, 5.0, 4.9, [declaring(1, 5), declaring(2, 2)]))
    results.add_report(report(2, 4.9, 4.8, [declaring(1, 3), declaring(2, 2, "late")]))
    results.add_report(report(3, 4.8, 4.7, [declaring(1, None), declaring(2, 2)]))  # unevaluated
    assert results.pages_processed() == {1: 8, 2: 4}  # a budget cut to 3 pages counts 3
    assert results.windows[0].peers[1].declared_pages == 5


def test_a_second_node_with_the_same_uid_replaces_the_first() -> None:
    results = small_run()
    results.add_node("miner4b", 4, "miner", "replay")
    assert [n.uid for n in results.nodes] == [0, 1, 2, 3, 4]
    assert results.behaviours()[4] == "replay"


def test_results_round_trip_through_json(tmp_path: Path) -> None:
    results = small_run()
    results.finish()
    results.write(tmp_path / "results.json")
    assert RunResults.load(tmp_path / "results.json") == results


def test_a_nan_loss_survives_the_json_round_trip(tmp_path: Path) -> None:
    results = RunResults()
    results.add_report(report(0, 5.0, float("nan"), []))
    results.write(tmp_path / "results.json")
    assert math.isnan(RunResults.load(tmp_path / "results.json").windows[0].validation_loss_after)


def test_finish_records_wall_time_and_peak_rss() -> None:
    results = RunResults()
    results.finish()
    assert results.meta.finished is not None and results.meta.wall_seconds is not None
    assert results.meta.wall_seconds >= 0
    assert results.meta.peak_rss_mib is not None and results.meta.peak_rss_mib > 1


# -- incentive shares ---------------------------------------------------------------


def test_shares_count_only_miners_and_split_honest_from_the_rest() -> None:
    behaviours = {1: "honest", 2: "honest", 3: "copycat"}
    incentive = {0: 0.9, 1: 0.5, 2: 0.3, 3: 0.2}  # uid 0 is a validator: left out
    assert incentive_shares(incentive, behaviours) == pytest.approx((0.8, 0.2))


def test_without_adversaries_the_honest_share_is_everything() -> None:
    assert incentive_shares({1: 0.4, 2: 0.6}, {1: "honest", 2: "honest"}) == (1.0, 0.0)


def test_a_miner_missing_from_the_incentive_earned_nothing() -> None:
    behaviours = {1: "honest", 2: "honest", 3: "freerider"}
    assert incentive_shares({1: 0.6, 3: 0.2}, behaviours) == pytest.approx((0.75, 0.25))


def test_shares_are_unknown_when_the_miners_earned_nothing() -> None:
    assert incentive_shares({0: 1.0}, {1: "honest", 2: "noise"}) is None
    assert incentive_shares({}, {}) is None


# -- rank correlation -------------------------------------------------------------------


def test_tied_values_share_the_mean_of_their_ranks() -> None:
    assert average_ranks([10, 20, 20, 40]) == [1.0, 2.5, 2.5, 4.0]
    assert average_ranks([3, 1, 3, 3]) == [3.0, 1.0, 3.0, 3.0]


def test_spearman_without_ties_is_one_minus_six_sum_d2_over_n_n2_minus_1() -> None:
    # d = (0, 1, 1, 0): 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_with_ties_is_pearson_of_average_ranks() -> None:
    # ranks x (1, 2.5, 2.5, 4), y (1, 2, 3, 4): sxy = 4.5, sxx = 4.5, syy = 5 -> sqrt(0.9)
    assert spearman([10, 20, 20, 40], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))


def test_spearman_needs_three_pairs_and_variation_on_both_sides() -> None:
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([5, 5, 5], [1, 2, 3]) is None
    assert spearman([1, 2, 3], [0.0, 0.0, 0.0]) is None


def test_correlation_skips_miners_without_a_budget_and_counts_missing_incentive_as_zero() -> None:
    # budgets (10, 20, 40) vs incentive (0.1, 0.3, 0): ranks (1,2,3) vs (2,3,1), sum d2 = 6
    # 1 - 6 * 6 / (3 * 8) = -0.5
    budgets = {1: 10, 2: 20, 3: 40, 4: None}
    assert compute_incentive_correlation(budgets, {1: 0.1, 2: 0.3}) == pytest.approx(-0.5)


def test_correlation_is_unknown_with_fewer_than_three_honest_miners() -> None:
    assert compute_incentive_correlation({1: 10, 2: 20}, {1: 0.1, 2: 0.9}) is None


# -- summary ---------------------------------------------------------------------------


def test_summary_line_of_a_small_run() -> None:
    assert small_run().summary_line() == (
        "honest incentive 90.0%, adversarial 10.0%, validation loss 5.58 -> 3.21, "
        "compute/incentive rank correlation 1.00"
    )


def test_summary_of_a_run_without_incentive_says_what_is_unknown() -> None:
    results = RunResults()
    results.add_node("miner1", 1, "miner", pages=1)
    results.add_report(report(0, 5.0, 4.5, [peer(1, 1.0)]))
    summary = results.summary()
    assert summary.honest_share is None and summary.rank_correlation is None
    assert summary.loss_first == 5.0 and summary.loss_last == 4.5
    assert results.summary_line() == (
        "honest incentive -, adversarial -, validation loss 5.00 -> 4.50, "
        "compute/incentive rank correlation -"
    )


def test_summary_of_an_empty_run() -> None:
    assert RunResults().summary_line() == (
        "honest incentive -, adversarial -, validation loss - -> -, "
        "compute/incentive rank correlation -"
    )
