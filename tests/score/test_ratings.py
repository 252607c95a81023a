"""OpenSkill Plackett-Luce rating updates."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.ratings import Rating, match_ranks, mean_rank_scores, relaxed, update_ratings


def test_fresh_rating_has_ordinal_zero() -> None:
    assert Rating().ordinal() == pytest.approx(0.0)
    assert Rating(30.0, 2.0).ordinal() == pytest.approx(24.0)


def test_winner_mu_goes_up_and_loser_mu_goes_down() -> None:
    after = update_ratings({}, {1: 0.5, 2: 0.1}, beta=7.0, tau=0.1)
    assert after[1].mu > 25.0 > after[2].mu
    assert after[1].mu - 25.0 == pytest.approx(25.0 - after[2].mu)


def test_a_tie_between_equals_keeps_mu_and_inflates_sigma_by_tau_only() -> None:
    after = update_ratings({}, {1: 0.2, 2: 0.2}, beta=7.0, tau=0.1)
    assert after[1] == after[2]
    assert after[1].mu == pytest.approx(25.0)


def test_nan_score_loses_the_match() -> None:
    after = update_ratings({}, {1: math.nan, 2: -0.3}, beta=7.0, tau=0.1)
    assert after[2].mu > after[1].mu


def test_one_or_no_participant_plays_no_match() -> None:
    ratings = {1: Rating(30.0, 3.0)}
    assert update_ratings(ratings, {1: 0.5}) == ratings
    assert update_ratings(ratings, {}) == ratings
    assert update_ratings({}, {4: 0.5}) == {4: Rating()}


def test_non_participants_and_inputs_are_untouched() -> None:
    ratings = {1: Rating(), 2: Rating(), 3: Rating(40.0, 1.0)}
    after = update_ratings(ratings, {1: 1.0, 2: 0.0})
    assert after[3] == Rating(40.0, 1.0)
    assert ratings[1] == Rating()


def test_upset_moves_a_strong_loser_further_than_an_even_match() -> None:
    even = update_ratings({1: Rating(), 2: Rating()}, {1: 0.0, 2: 1.0})
    upset = update_ratings({1: Rating(35.0, 8.0), 2: Rating()}, {1: 0.0, 2: 1.0})
    assert 35.0 - upset[1].mu > 25.0 - even[1].mu


def test_match_ranks_share_ranks_on_ties_and_put_nonfinite_last() -> None:
    assert match_ranks({1: 0.3, 2: 0.5, 3: 0.3, 4: math.nan, 5: math.inf}) == {
        2: 0,
        1: 1,
        3: 1,
        4: 3,
        5: 3,
    }


def test_relaxing_moves_mean_and_variance_a_memory_th_of_the_way_back_to_fresh() -> None:
    fresh = Rating(25.0, 8.0)
    rating = Rating(45.0, 4.0)
    assert relaxed(rating, 0, fresh) == rating  # 0: never forgets
    assert relaxed(rating, 1, fresh) == fresh  # 1: keeps nothing
    half = relaxed(rating, 2, fresh)
    assert half.mu == pytest.approx(35.0)
    assert half.sigma**2 == pytest.approx((64.0 + 16.0) / 2)
    below = relaxed(Rating(5.0, 8.0), 4, fresh)  # a poor record is forgotten alike
    assert below.mu == pytest.approx(10.0)
    with pytest.raises(ValueError):
        relaxed(rating, 0.5, fresh)


def _lead_after_losing(memory: float, middling: int) -> float:
    """A peer that won 12 matches against 7 others, then came in the middle of the next
    ``middling`` (as a miner that starts doing less does): its mu above the field's mean, with
    the rating relaxed before each match."""
    fresh = Rating()
    ratings = {uid: fresh for uid in range(8)}
    for window in range(12 + middling):
        scores = {uid: float(uid) for uid in range(8)}
        scores[0] = 10.0 if window < 12 else 3.5
        relaxed_now = {uid: relaxed(r, memory, fresh) for uid, r in ratings.items()}
        ratings = update_ratings(relaxed_now, scores, beta=7.0, tau=0.1)
    return ratings[0].mu - sum(r.mu for r in ratings.values()) / 8


def test_a_rating_with_memory_keeps_less_of_a_lead_it_stopped_earning() -> None:
    built, built_with_memory = _lead_after_losing(0, 0), _lead_after_losing(5, 0)
    # The cost: a lead earned by winning is smaller when old wins fade (22.1 against 8.8).
    assert built > built_with_memory > 0
    # The point: six middling matches later, without memory most of it is left (12.6 of
    # 22.1); with memory 5 a fifth (1.8 of 8.8).
    kept = _lead_after_losing(0, 6) / built
    kept_with_memory = _lead_after_losing(5, 6) / built_with_memory
    assert kept > 0.5 > 0.25 > kept_with_memory, (kept, kept_with_memory)


def test_mean_rank_scores_rank_by_the_mean_of_the_ranks() -> None:
    random = {1: 0.3, 2: 0.2, 3: 0.1}  # ranks 0, 1, 2
    work = {1: 0.0, 2: 0.5, 3: 0.4}  # ranks 2, 0, 1
    scores = mean_rank_scores(random, work)
    assert scores == {1: -1.0, 2: -0.5, 3: -1.5}
    assert match_ranks(scores) == {2: 0, 1: 1, 3: 2}
    # a measure's scale does not count, only its order; a uid missing from one ranks last
    assert mean_rank_scores(random, {k: 100 * v for k, v in work.items()}) == scores
    assert mean_rank_scores({1: 1.0, 2: 0.0}, {2: 5.0}) == {1: -0.5, 2: -0.5}
