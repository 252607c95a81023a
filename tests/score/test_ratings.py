"""OpenSkill Plackett-Luce rating updates."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.ratings import Rating, match_ranks, update_ratings


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
