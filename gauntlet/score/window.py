"""One window's scoring as a pure state transition: ``advance_window(state, window, ...)``.

The validator loop measures (fast filter, sync, losses, copy/replay/page checks)
and calls this once per window with what it saw; it returns the next state.
Weights come from ``state.weights(config.weight_power)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from gauntlet.score.average import moving_average
from gauntlet.score.config import (
    COPY,
    INVALID,
    LATE,
    MISSING,
    OK,
    OUTCOMES,
    REPLAY,
    UNREADABLE,
    WRONG_PAGES,
    ScoringConfig,
)
from gauntlet.score.indicator import own_vs_random_indicator, update_uniqueness
from gauntlet.score.loss import Evaluation
from gauntlet.score.ratings import Rating, mean_rank_scores, relaxed, update_ratings
from gauntlet.score.replay import SketchEntry, recent
from gauntlet.score.state import PeerState, ValidatorScores, entry_rating
from gauntlet.score.sync import update_liveness
from gauntlet.score.weights import final_score

# Outcomes that are uniqueness failures: they also push -1 into the uniqueness average.
_NOT_UNIQUE = (COPY, REPLAY, WRONG_PAGES)
# Outcomes where no fingerprint was read, so the sync average is left alone (and a window
# report shows no sync observation).
NO_FINGERPRINT = (MISSING, LATE, INVALID, UNREADABLE)


@dataclass(frozen=True)
class PeerWindow:
    """What the validator saw of one uid in one window.

    ``outcome``: one of ``gauntlet.score.config.OUTCOMES`` (fast filter, then
    copy/replay/page verdicts, which override ``ok``). ``sync``: this window's
    sync score in [0, 1] (:func:`gauntlet.score.sync.sync_score`); ignored when
    no fingerprint was read. ``evaluation``: losses when the peer was evaluated.
    """

    hotkey: str
    outcome: str = OK
    sync: float = 1.0
    evaluation: Evaluation | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")


def _observe(
    peer: PeerState, seen: PeerWindow, window: int, config: ScoringConfig, entry: Rating
) -> PeerState:
    """Liveness, sync, inactivity, starvation and penalties of one peer (no rating yet);
    ``entry``: the rating a reset starts from (:func:`entry_rating`)."""
    alive = seen.outcome not in (MISSING, LATE)
    peer = replace(peer, liveness=update_liveness(peer.liveness, alive, config.liveness_ema))
    if seen.outcome == MISSING:
        peer = replace(
            peer,
            inactive_windows=peer.inactive_windows + 1,
            score=peer.score * config.inactivity_decay,
        )
        if peer.inactive_windows >= config.reset_after_inactive:
            return peer.restarted(config, entry)
        return peer
    peer = replace(peer, inactive_windows=0)
    if seen.outcome not in NO_FINGERPRINT:
        sync = min(1.0, max(0.0, seen.sync)) if math.isfinite(seen.sync) else 0.0
        peer = replace(peer, sync=moving_average(peer.sync, sync, config.sync_ema))
    if seen.evaluation is not None:
        peer = replace(peer, starvation=0, evaluations=peer.evaluations + 1, last_evaluated=window)
    elif alive:
        peer = replace(peer, starvation=peer.starvation + 1)
        if seen.outcome == OK:  # a score not re-measured fades: no coasting on a stale one
            peer = replace(peer, score=peer.score * config.unmeasured_decay)
    if seen.outcome in _NOT_UNIQUE:
        peer = replace(
            peer, uniqueness=update_uniqueness(peer.uniqueness, -1.0, config.uniqueness_ema)
        )
    return replace(peer, score=peer.score * config.penalty(seen.outcome))


def advance_window(
    state: ValidatorScores,
    window: int,
    observations: Mapping[int, PeerWindow],
    config: ScoringConfig,
    new_sketches: Iterable[SketchEntry] = (),
) -> ValidatorScores:
    """The scoring state after ``window`` (which must be later than ``state.last_window``).

    1. A uid with a new hotkey, or first seen, starts fresh, at the entry rating (no
       higher than the poorest earner's ordinal) and the uniqueness prior.
    2. uids in the state but absent from ``observations`` count as ``missing``;
       missing decays the score by ``inactivity_decay`` and after
       ``reset_after_inactive`` consecutive missing windows restarts the peer,
       keeping the worse of its own and fresh values (or forgets it, when it was
       not observed at all).
    3. A live ``ok`` peer that was not evaluated: score times ``unmeasured_decay``.
       Faulty outcomes multiply the score by ``config.penalty(outcome)``;
       copy/replay/wrong_pages also push -1 into the uniqueness average.
    4. Evaluated ``ok`` peers: the indicator of their own-page advantage per declared
       page (:func:`own_advantage`) into the uniqueness average; one Plackett-Luce match scored by random-page improvement;
       then ``score = final_score(ordinal, uniqueness, sync)``, or 0 before the peer's
       ``pay_min_evaluations``-th evaluation.
    5. ``new_sketches`` join the replay history, which keeps the last
       ``replay_history_windows`` windows.
    """
    if window <= state.last_window:
        raise ValueError(f"window {window} already processed (last {state.last_window})")
    entry = entry_rating(state.peers, config)
    peers: dict[int, PeerState] = {}
    for uid in sorted(set(state.peers) | set(observations)):
        old = state.peers.get(uid)
        seen = observations.get(uid)
        if seen is None:
            assert old is not None
            seen = PeerWindow(hotkey=old.hotkey, outcome=MISSING)
        if old is None and seen.outcome == MISSING:
            continue  # never seen and absent: nothing to remember (validators that started a
            # window apart must reach the same state)
        if old is None or old.hotkey != seen.hotkey:
            old = PeerState.fresh(seen.hotkey, config, entry)
        peer = _observe(old, seen, window, config, entry)
        if uid in observations or peer.inactive_windows > 0:
            peers[uid] = peer  # forget unobserved uids once their reset comes
    peers = _play_match(peers, observations, config)
    sketches = recent(state.sketches, new_sketches, window, config.replay_history_windows)
    return ValidatorScores(peers=peers, sketches=tuple(sketches), last_window=window)


def own_advantage(evaluation: Evaluation, penalty: float, relative: bool) -> float:
    """What an update did for its own pages beyond what the window's other helpful updates
    did for them (:meth:`Evaluation.own_advantage`); without that control (no other update
    helped), beyond what it did for the secret random pages."""
    advantage = evaluation.own_advantage(nonfinite_penalty=penalty, relative=relative)
    if advantage is not None:
        return advantage
    own = evaluation.own_improvement(nonfinite_penalty=penalty, relative=relative)
    return own - evaluation.random_improvement(nonfinite_penalty=penalty, relative=relative)


def work_on_own_pages(declared_pages: int, advantage: float) -> float:
    """The work an update shows on its own pages: its own-page advantage times the pages it
    declared (at least one). Compute is data: an update made from n pages moves each of them
    less than a one-page update would, so the advantage is compared per page declared
    (without the factor a broad honest update looked like a wrong-data one; figures in
    docs/scoring.md, "Uniqueness indicator")."""
    return max(1, declared_pages) * advantage


def match_measures(
    observations: Mapping[int, PeerWindow], config: ScoringConfig
) -> tuple[dict[int, float], dict[int, float]]:
    """The two measures the rating match ranks, for each evaluated ok peer: its random-page
    improvement, and the work it shows on its own pages, its declared pages times its
    own-page advantage (what the uniqueness indicator reads)."""
    penalty, relative = config.nonfinite_loss_penalty, config.relative_improvement
    random: dict[int, float] = {}
    work: dict[int, float] = {}
    for uid, seen in sorted(observations.items()):
        if seen.outcome != OK or seen.evaluation is None:
            continue
        ev = seen.evaluation
        random[uid] = ev.random_improvement(nonfinite_penalty=penalty, relative=relative)
        work[uid] = work_on_own_pages(ev.declared_pages, own_advantage(ev, penalty, relative))
    return random, work


def _play_match(
    peers: dict[int, PeerState], observations: Mapping[int, PeerWindow], config: ScoringConfig
) -> dict[int, PeerState]:
    """Uniqueness indicators, the rating match and final scores of the evaluated ok peers."""
    match, work = match_measures(observations, config)
    for uid, shown in work.items():
        indicator = own_vs_random_indicator(
            shown,
            0.0,
            margin=config.indicator_margin,
            graded=config.indicator_graded,
            scale=config.indicator_scale,
        )
        peer = peers[uid]
        uniqueness = update_uniqueness(peer.uniqueness, indicator, config.uniqueness_ema)
        peers[uid] = replace(peer, uniqueness=uniqueness)
    if config.match_work:
        match = mean_rank_scores(match, work)
    fresh = Rating(config.rating_mu, config.rating_sigma)
    ratings = update_ratings(
        {uid: relaxed(peers[uid].rating, config.rating_memory, fresh) for uid in match},
        match,
        config.rating_beta,
        config.rating_tau,
        mu=config.rating_mu,
        sigma=config.rating_sigma,
    )
    for uid in match:
        peer = replace(peers[uid], rating=ratings[uid])
        warmed_up = peer.evaluations >= config.pay_min_evaluations  # nothing paid before
        score = final_score(
            peer.rating.ordinal(config.ordinal_z),
            peer.uniqueness if peer.uniqueness is not None else 0.0,
            peer.sync if peer.sync is not None else 0.0,
            saturation=config.uniqueness_saturation,
            floor=config.uniqueness_floor,
        )
        peers[uid] = replace(peer, score=score if warmed_up else 0.0)
    return peers
