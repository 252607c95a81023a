"""The per-window scoring transition: penalties, inactivity, hotkey changes, ratings."""

from __future__ import annotations

import math

import pytest

from gauntlet.score.config import COPY, LATE, MISSING, REPLAY, ScoringConfig
from gauntlet.score.loss import Evaluation
from gauntlet.score.ratings import Rating
from gauntlet.score.replay import SketchEntry
from gauntlet.score.state import PeerState, ValidatorScores
from gauntlet.score.window import PeerWindow, advance_window

# Hand-computable settings: binary indicator without margin, no uniqueness prior.
BINARY = {
    "indicator_graded": False,
    "indicator_margin": 0.0,
    "inactivity_decay": 0.9,
    "pay_min_evaluations": 1,
}
CFG = ScoringConfig(relative_improvement=False, ordinal_z=3.0, uniqueness_prior=None, **BINARY)
GOOD = Evaluation(own_before=3.0, own_after=2.0, random_before=3.0, random_after=2.5)
WEAK = Evaluation(own_before=3.0, own_after=2.9, random_before=3.0, random_after=2.95)


def _strong(hotkey: str = "hk1", score: float = 8.0) -> PeerState:
    return PeerState(hotkey, Rating(40.0, 2.0), uniqueness=1.0, sync=1.0, score=score)


def test_evaluated_peers_play_a_match_and_get_final_scores() -> None:
    state = advance_window(
        ValidatorScores(),
        0,
        {1: PeerWindow("a", evaluation=GOOD), 2: PeerWindow("b", evaluation=WEAK, sync=0.5)},
        CFG,
    )
    one, two = state.peers[1], state.peers[2]
    assert one.rating.mu > 25.0 > two.rating.mu
    assert one.uniqueness == 1.0 and two.uniqueness == 1.0  # own > random for both
    assert one.score == pytest.approx(max(0.0, one.rating.ordinal()) * 1.0 * 1.0)
    assert two.score == 0.0  # lost: ordinal below 0
    assert state.last_window == 0 and one.evaluations == 1 and one.last_evaluated == 0


def test_with_the_default_ordinal_the_loser_of_a_close_match_keeps_a_positive_score() -> None:
    cfg = ScoringConfig(relative_improvement=False, uniqueness_prior=None, **BINARY)  # z = 1
    state = advance_window(
        ValidatorScores(),
        0,
        {1: PeerWindow("a", evaluation=GOOD), 2: PeerWindow("b", evaluation=WEAK)},
        cfg,
    )
    one, two = state.peers[1], state.peers[2]
    assert one.score > two.score > 0
    assert two.score == pytest.approx(two.rating.ordinal(1.0))


def test_a_newcomer_gets_no_benefit_of_the_doubt_and_earns_from_its_third_good_window() -> None:
    # Defaults: prior 0, ema 0.2, graded indicator tanh((own - random - 0.01) / 0.02);
    # uniqueness counts from the floor (0.25) up, and nothing is paid before the third
    # evaluation (pay_min_evaluations).
    unlucky = Evaluation(own_before=3.0, own_after=2.905, random_before=3.0, random_after=2.9)
    good = Evaluation(own_before=3.0, own_after=2.8, random_before=3.0, random_after=2.9)
    cfg = ScoringConfig(relative_improvement=False)
    indicator = math.tanh((0.095 - 0.1 - 0.01) / 0.02)
    first = advance_window(ValidatorScores(), 0, {1: PeerWindow("a", evaluation=unlucky)}, cfg)
    assert first.peers[1].uniqueness == pytest.approx(0.2 * indicator)
    assert first.peers[1].score == 0.0  # the old prior (0.3) paid this window
    state, scores, averages = ValidatorScores(), [], []
    for window in range(3):
        state = advance_window(state, window, {1: PeerWindow("a", evaluation=good)}, cfg)
        scores.append(state.peers[1].score)
        averages.append(state.peers[1].uniqueness)
    assert averages == pytest.approx([f * math.tanh(0.09 / 0.02) for f in (0.2, 0.36, 0.488)])
    assert scores[0] == scores[1] == 0.0 and scores[2] > 0
    old_rules = cfg.model_copy(update={"uniqueness_floor": 0.0, "pay_min_evaluations": 1})
    once = advance_window(ValidatorScores(), 0, {1: PeerWindow("a", evaluation=good)}, old_rules)
    assert once.peers[1].score > 0  # before the floor and the warm-up the first window paid


def test_nothing_is_paid_before_the_warm_up_evaluations_even_above_the_floor() -> None:
    """Two clear first windows lift the average above the floor; the score waits for the
    third evaluation (in a network's first windows a wrong-data miner's first two
    indicators came out clearly positive: docs/scoring.md)."""
    clear = Evaluation(own_before=3.0, own_after=2.6, random_before=3.0, random_after=2.9)
    cfg = ScoringConfig(relative_improvement=False, uniqueness_ema=0.5)
    state = ValidatorScores()
    for window in range(2):
        state = advance_window(state, window, {1: PeerWindow("a", evaluation=clear)}, cfg)
    peer = state.peers[1]
    assert peer.uniqueness is not None and peer.uniqueness > cfg.uniqueness_saturation
    assert peer.evaluations == 2 and peer.score == 0.0
    state = advance_window(state, 2, {1: PeerWindow("a", evaluation=clear)}, cfg)
    assert state.peers[1].score > 0


def test_no_peers_gives_empty_state_and_no_weights() -> None:
    state = advance_window(ValidatorScores(), 3, {}, CFG)
    assert state.peers == {} and state.weights(2.0) == {}


def test_windows_must_advance() -> None:
    with pytest.raises(ValueError):
        advance_window(ValidatorScores(last_window=5), 5, {}, CFG)


def test_helping_random_pages_more_than_own_lowers_uniqueness() -> None:
    backwards = Evaluation(own_before=3.0, own_after=2.9, random_before=3.0, random_after=2.0)
    state = ValidatorScores(peers={1: _strong()})
    after = advance_window(state, 1, {1: PeerWindow("hk1", evaluation=backwards)}, CFG)
    assert after.peers[1].uniqueness == pytest.approx(0.8 * 1.0 + 0.2 * -1.0)


def test_nan_loss_after_loses_the_match_without_crashing() -> None:
    broken = Evaluation(
        own_before=3.0, own_after=math.nan, random_before=3.0, random_after=math.nan
    )
    state = advance_window(
        ValidatorScores(),
        0,
        {1: PeerWindow("a", evaluation=broken), 2: PeerWindow("b", evaluation=WEAK)},
        CFG,
    )
    assert state.peers[1].rating.mu < 25.0 < state.peers[2].rating.mu
    assert state.peers[1].uniqueness == -1.0 and state.peers[1].score == 0.0


def test_late_contribution_halves_the_score() -> None:
    state = ValidatorScores(peers={1: _strong()})
    after = advance_window(state, 1, {1: PeerWindow("hk1", outcome=LATE)}, CFG)
    assert after.peers[1].score == pytest.approx(4.0)
    assert after.peers[1].liveness == 0.0


def test_copy_and_replay_zero_the_score_and_lower_uniqueness() -> None:
    state = ValidatorScores(peers={1: _strong(), 2: _strong("hk2")})
    seen = {1: PeerWindow("hk1", outcome=COPY), 2: PeerWindow("hk2", outcome=REPLAY)}
    after = advance_window(state, 1, seen, CFG)
    for uid in (1, 2):
        assert after.peers[uid].score == 0.0
        assert after.peers[uid].uniqueness == pytest.approx(0.6)


def test_all_penalised_gives_all_zero_weights() -> None:
    state = ValidatorScores(peers={1: _strong(), 2: _strong("hk2")})
    seen = {1: PeerWindow("hk1", outcome=COPY), 2: PeerWindow("hk2", outcome="invalid")}
    assert advance_window(state, 1, seen, CFG).weights(2.0) == {1: 0.0, 2: 0.0}


def test_desync_pulls_the_sync_average_down() -> None:
    state = ValidatorScores(peers={1: _strong()})
    after = advance_window(state, 1, {1: PeerWindow("hk1", outcome="desynced", sync=0.0)}, CFG)
    assert after.peers[1].sync == pytest.approx(0.5)
    assert after.peers[1].score == pytest.approx(4.0)


def test_missing_windows_decay_the_score_then_reset_the_peer() -> None:
    cfg = ScoringConfig(inactivity_decay=0.5, reset_after_inactive=3)
    state = ValidatorScores(peers={1: _strong()})
    state = advance_window(state, 1, {1: PeerWindow("hk1", outcome=MISSING)}, cfg)
    assert state.peers[1].score == pytest.approx(4.0)
    state = advance_window(state, 2, {}, cfg)  # absent from observations counts as missing
    assert state.peers[1].score == pytest.approx(2.0)
    assert state.peers[1].inactive_windows == 2
    state = advance_window(state, 3, {1: PeerWindow("hk1", outcome=MISSING)}, cfg)
    reset = state.peers[1]
    assert (reset.score, reset.evaluations, reset.inactive_windows) == (0.0, 0, 0)
    assert reset.rating == PeerState.fresh("hk1", cfg).rating  # fresh is worse than 40 ± 2
    assert reset.uniqueness == cfg.uniqueness_prior  # and 0 worse than 1.0


def test_staying_away_never_washes_a_bad_record() -> None:
    """A peer with a poor record that goes missing until its reset comes back no better in
    any value (issue 14: the reset used to restore the 25 ± 8.3 rating and a 0.3 prior)."""
    cfg = ScoringConfig(reset_after_inactive=25)
    bad = PeerState(
        "hk1", Rating(12.0, 3.0), uniqueness=-0.6, sync=0.4, liveness=0.9, score=0.0,
        evaluations=9, last_evaluated=4,
    )  # fmt: skip
    state = ValidatorScores(peers={1: bad, 2: _strong("hk2")}, last_window=4)
    for window in range(5, 5 + cfg.reset_after_inactive):
        seen = {1: PeerWindow("hk1", outcome=MISSING), 2: PeerWindow("hk2")}  # registered
        state = advance_window(state, window, seen, cfg)
    back = state.peers[1]
    assert back.inactive_windows == 0 and back.evaluations == 0  # it was reset
    assert back.rating.ordinal(cfg.ordinal_z) <= bad.rating.ordinal(cfg.ordinal_z)
    assert back.uniqueness is not None and back.uniqueness <= bad.uniqueness
    assert back.sync == bad.sync and back.score == 0.0
    assert back.liveness is not None and back.liveness <= bad.liveness
    after = advance_window(state, 30, {1: PeerWindow("hk1", evaluation=GOOD)}, cfg)
    assert after.peers[1].uniqueness is not None and after.peers[1].uniqueness < 0


def _poor(hotkey: str = "hk2") -> PeerState:
    """An established peer with a poor but still earning record."""
    return PeerState(hotkey, Rating(14.0, 4.0), uniqueness=0.1, sync=1.0, score=1.0, evaluations=12)


def test_a_new_hotkey_starts_no_better_than_an_established_poor_peer() -> None:
    cfg = ScoringConfig()
    z = cfg.ordinal_z
    state = ValidatorScores(peers={1: _strong("hk1"), 2: _poor()}, last_window=0)
    seen = {1: PeerWindow("hk1"), 2: PeerWindow("hk2"), 3: PeerWindow("new"), 4: PeerWindow("x")}
    state = ValidatorScores(peers={**state.peers, 4: _strong("old")}, last_window=0)
    after = advance_window(state, 1, seen, cfg)
    poor = after.peers[2]
    for uid in (3, 4):  # a uid first seen; a re-registered uid
        newcomer = after.peers[uid]
        assert newcomer.score == 0.0 <= poor.score
        assert newcomer.rating.ordinal(z) <= poor.rating.ordinal(z)
        assert newcomer.uniqueness is not None and poor.uniqueness is not None
        assert newcomer.uniqueness <= poor.uniqueness


def test_an_honest_newcomer_earns_a_positive_score_within_three_good_windows() -> None:
    """The trade-off of starting at the bottom: one unlucky first window (indicator -1), then
    three good ones, against an established strong and an established poor peer."""
    cfg = ScoringConfig(relative_improvement=False)
    worst = Evaluation(own_before=3.0, own_after=3.0, random_before=3.0, random_after=2.7)
    honest = Evaluation(own_before=3.0, own_after=2.6, random_before=3.0, random_after=2.8)
    strong = Evaluation(own_before=3.0, own_after=2.5, random_before=3.0, random_after=2.7)
    weak = Evaluation(own_before=3.0, own_after=2.9, random_before=3.0, random_after=2.95)
    state = ValidatorScores(peers={1: _strong("hk1"), 2: _poor()}, last_window=0)
    scores = []
    for window, mine in enumerate([worst, honest, honest, honest], start=1):
        seen = {
            1: PeerWindow("hk1", evaluation=strong),
            2: PeerWindow("hk2", evaluation=weak),
            3: PeerWindow("new", evaluation=mine),
        }
        state = advance_window(state, window, seen, cfg)
        scores.append(state.peers[3].score)
    assert scores[0] == 0.0 and scores[-1] > 0


def test_unobserved_peer_is_forgotten_at_reset() -> None:
    cfg = ScoringConfig(reset_after_inactive=1)
    assert advance_window(ValidatorScores(peers={1: _strong()}), 1, {}, cfg).peers == {}


def test_a_new_hotkey_on_a_uid_starts_fresh() -> None:
    state = ValidatorScores(peers={1: _strong("old")})
    after = advance_window(state, 1, {1: PeerWindow("new")}, CFG)
    assert after.peers[1].hotkey == "new"
    assert after.peers[1].rating == Rating() and after.peers[1].score == 0.0


def test_a_live_unevaluated_score_fades_until_it_is_measured_again() -> None:
    """A miner that works only when it expects evaluation cannot coast on a stale score."""
    state = ValidatorScores(peers={1: _strong()})
    for window in range(1, 4):
        state = advance_window(state, window, {1: PeerWindow("hk1")}, CFG)
    assert state.peers[1].score == pytest.approx(8.0 * 0.9**3)  # default unmeasured_decay
    assert state.peers[1].starvation == 3
    kept = CFG.model_copy(update={"unmeasured_decay": 1.0})
    after = advance_window(ValidatorScores(peers={1: _strong()}), 1, {1: PeerWindow("hk1")}, kept)
    assert after.peers[1].score == 8.0


def test_new_sketches_join_a_history_of_the_last_windows() -> None:
    cfg = ScoringConfig(replay_history_windows=2)
    old = tuple(SketchEntry(w, uid, (float(w),)) for w in range(3) for uid in range(50))
    new = [SketchEntry(3, uid, (3.0,)) for uid in range(50)]
    state = advance_window(ValidatorScores(sketches=old, last_window=2), 3, {}, cfg, new)
    assert {e.window for e in state.sketches} == {2, 3}  # the last two windows stay whole
    assert len(state.sketches) == 100  # however many entries each has


def test_defaults_zero_a_miner_no_better_on_its_own_pages_but_pay_a_clear_gap() -> None:
    """Default graded indicator with a margin: own ≈ random (trained elsewhere) sinks the
    uniqueness average below 0 within a few windows; a clear own-page gap keeps it high."""
    cfg = ScoringConfig()
    honest = Evaluation(own_before=3.0, own_after=2.7, random_before=3.0, random_after=2.85)
    elsewhere = [  # relative gaps of +0.003, -0.007, +0.001, -0.005: noise around zero
        Evaluation(own_before=3.0, own_after=2.85 - d, random_before=3.0, random_after=2.85)
        for d in (0.009, -0.021, 0.003, -0.015)
    ]
    state = ValidatorScores()
    for window, other in enumerate(elsewhere):
        seen = {1: PeerWindow("a", evaluation=honest), 2: PeerWindow("b", evaluation=other)}
        state = advance_window(state, window, seen, cfg)
    clear = math.tanh((0.1 - 0.05 - 0.01) / 0.02)  # relative improvements 0.1 and 0.05
    assert state.peers[1].uniqueness == pytest.approx(clear * (1 - 0.8**4))  # from a prior of 0
    assert state.peers[2].uniqueness is not None and state.peers[2].uniqueness < 0
    assert state.peers[2].score == 0.0 and state.peers[1].score > 0


def test_easy_own_pages_earn_nothing_unless_the_update_beats_other_updates_on_them() -> None:
    """The own-page advantage is measured against other updates of the window on the same
    batches (the control), not against random pages: pages that any update improves a lot
    lift a wrong-data miner's own improvement above the random pages' (issue 14), but not
    above the control's."""
    easy = dict(own_before=3.0, own_after=2.7, random_before=3.0, random_after=2.85)
    elsewhere = Evaluation(**easy, control_after=2.7)  # the others did as much for them
    trained = Evaluation(**easy, control_after=2.85)  # the others did half as much
    seen = {1: PeerWindow("a", evaluation=trained), 2: PeerWindow("b", evaluation=elsewhere)}
    state = advance_window(ValidatorScores(), 0, seen, ScoringConfig())
    assert state.peers[2].uniqueness is not None and state.peers[2].uniqueness < 0
    assert state.peers[2].score == 0.0
    assert state.peers[1].uniqueness is not None and state.peers[1].uniqueness > 0
    no_control = Evaluation(**easy)  # falls back to the random pages: looks trained
    state = advance_window(ValidatorScores(), 0, {2: PeerWindow("b", evaluation=no_control)},
                           ScoringConfig())  # fmt: skip
    assert state.peers[2].uniqueness is not None and state.peers[2].uniqueness > 0


def test_the_own_advantage_is_the_control_loss_minus_the_loss_after() -> None:
    ev = Evaluation(4.0, 3.6, 4.0, 3.9, control_after=3.8, control_se=0.02)
    assert ev.own_advantage() == pytest.approx(0.2)
    assert ev.own_advantage(relative=True) == pytest.approx(0.05)
    assert ev.advantage_standard_error(relative=True) == pytest.approx(0.005)
    assert Evaluation(4.0, 3.6, 4.0, 3.9).own_advantage() is None  # no control
    assert Evaluation(4.0, math.nan, 4.0, 3.9, control_after=3.8).own_advantage() == -1.0
    assert Evaluation(4.0, 3.6, 4.0, 3.9, control_after=math.inf).own_advantage() is None


def _part_time_share(
    period: int, own: int, floor: float, windows: int = 60, match_work: bool = True
) -> float:
    """Score of a miner that trains on its own pages ``own`` windows in ``period`` (and on
    other pages, with the same compute, in the rest) over an honest twin's, summed over the
    last four cycles. Both lower the random pages' loss alike, so they tie on the random
    pages' rank; with ``match_work`` the window trained elsewhere also loses the rank of the
    work on the own pages."""
    trained = Evaluation(3.0, 2.7, 3.0, 2.85, control_after=2.85)  # advantage +0.05: +0.96
    elsewhere = Evaluation(3.0, 2.7, 3.0, 2.85, control_after=2.67)  # -0.01: -0.76
    cfg = ScoringConfig(uniqueness_floor=floor, match_work=match_work)
    state, honest, part = ValidatorScores(), 0.0, 0.0
    for window in range(windows):
        mine = trained if window % period < own else elsewhere
        seen = {
            1: PeerWindow("honest", evaluation=trained),
            2: PeerWindow("part", evaluation=mine),
            3: PeerWindow("third", evaluation=trained),
        }
        state = advance_window(state, window, seen, cfg)
        if window >= windows - 4 * period:
            honest += state.peers[1].score
            part += state.peers[2].score
    return part / honest


def test_training_elsewhere_one_window_in_three_keeps_less_than_half_the_score() -> None:
    """The attack that knows the uniqueness floor (``wrongdata-part``): keep the average just
    above it by training on one's own pages in most windows. Same compute, less pay: the
    floor takes part of it, and the rank of the work on the own pages (``match_work``, the
    default) more, where the random pages alone leave the windows trained elsewhere tied."""
    with_floor = _part_time_share(3, 2, floor=0.25)
    assert with_floor == pytest.approx(0.44, abs=0.01)
    assert _part_time_share(3, 2, floor=0.0) == pytest.approx(0.62, abs=0.01)
    assert _part_time_share(2, 1, floor=0.25) == 0.0  # one window in two: under the floor
    assert _part_time_share(2, 1, floor=0.0) > 0.1  # which the floor is what zeroes
    assert _part_time_share(4, 3, floor=0.25) < 0.8  # elsewhere one in four: still less
    # ranked by the random pages alone the same miner keeps more
    assert _part_time_share(3, 2, floor=0.25, match_work=False) == pytest.approx(0.54, abs=0.01)
    assert _part_time_share(3, 2, floor=0.0, match_work=False) == pytest.approx(0.77, abs=0.01)


def test_with_rating_memory_a_strong_rating_relaxes_toward_fresh_before_its_match() -> None:
    """The scoring transition relaxes each match player's rating (scoring.rating_memory)
    before the match: the same window leaves a long-standing leader lower than without."""
    state = ValidatorScores(peers={1: _strong("a"), 2: _strong("b")}, last_window=0)
    seen = {1: PeerWindow("a", evaluation=GOOD), 2: PeerWindow("b", evaluation=WEAK)}
    kept = advance_window(state, 1, seen, CFG)
    relaxed = advance_window(state, 1, seen, CFG.model_copy(update={"rating_memory": 2.0}))
    # Half-way back to the fresh rating (25, 25/3) first: mu 32.5 before the match.
    assert relaxed.peers[1].rating.mu < 34.0 < kept.peers[1].rating.mu
    assert relaxed.peers[1].rating.sigma > kept.peers[1].rating.sigma
    assert relaxed.peers[1].rating.mu > relaxed.peers[2].rating.mu  # the match still counts


def test_match_work_ranks_a_short_real_step_by_the_work_it_shows_on_its_own_pages() -> None:
    """A page buried in noise steps less far along what it learned: late in a run it hurts
    the random pages least and wins a match scored by them alone, while an honest 4-page
    update shows four pages of work on its own pages (docs/runs.md, "Burying on purpose").
    With match_work (the default) the rank on that work counts as much as the rank on the
    random pages."""
    honest4 = Evaluation(3.0, 2.97, 3.0, 3.02, control_after=2.99, declared_pages=4)
    honest1 = Evaluation(3.0, 2.95, 3.0, 3.10, control_after=2.99, declared_pages=1)
    buried = Evaluation(3.0, 2.975, 3.0, 3.01, control_after=2.99, declared_pages=1)
    seen = {1: PeerWindow("a", evaluation=honest4), 2: PeerWindow("b", evaluation=honest1),
            3: PeerWindow("c", evaluation=buried)}  # fmt: skip
    by_random = advance_window(ValidatorScores(), 0, seen, ScoringConfig(match_work=False)).peers
    assert by_random[3].rating.mu > by_random[1].rating.mu > by_random[2].rating.mu
    with_work = advance_window(ValidatorScores(), 0, seen, ScoringConfig()).peers
    # work (pages x advantage): honest4 0.08, honest1 0.04, buried 0.015 (absolute nats);
    # mean ranks: honest4 (1 + 0) / 2, buried (0 + 2) / 2, honest1 (2 + 1) / 2
    assert with_work[1].rating.mu > with_work[3].rating.mu > with_work[2].rating.mu
