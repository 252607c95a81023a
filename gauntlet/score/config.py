"""Every knob of the validator's scoring, in one frozen pydantic model.

It is also the ``scoring`` section of the node's config schema (flags
``--scoring.<knob>``, variables ``GAUNTLET_SCORING__<KNOB>``): each knob exists
once, here, with its default and, in the docstring under it, its meaning.
The scoring functions take plain numbers so each stays testable alone.
See docs/scoring.md for the formulas each knob enters.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Outcomes of the fast filter and uniqueness checks (see gauntlet.score.window).
OK = "ok"
MISSING = "missing"
LATE = "late"
INVALID = "invalid"
UNREADABLE = "unreadable"
DESYNCED = "desynced"
WRONG_PAGES = "wrong_pages"
COPY = "copy"
REPLAY = "replay"
OUTLIER = "outlier"
OUTCOMES = (OK, MISSING, LATE, INVALID, UNREADABLE, DESYNCED, WRONG_PAGES, COPY, REPLAY, OUTLIER)


def _default_penalties() -> dict[str, float]:
    return {
        LATE: 0.5,
        INVALID: 0.0,
        UNREADABLE: 0.0,
        DESYNCED: 0.5,
        WRONG_PAGES: 0.0,
        COPY: 0.0,
        REPLAY: 0.0,
        OUTLIER: 0.0,
    }


class ScoringConfig(BaseModel):
    """Scoring hyperparameters; each field: default, range, meaning."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    # --- sync (requirement 1) ---
    sync_max_steps: float = 3.0
    """(>0) steps behind at which the sync score reaches 0 (linear) or the cut-off (exponential)."""
    sync_shape: str = "linear"
    """'linear': 1 - s/max; 'exponential': exp(-3 s/max), cut to 0 at s >= max."""
    sync_ema: float = 0.5
    """(0,1] weight of the newest window in the per-uid sync score moving average."""
    liveness_ema: float = 0.2
    """(0,1] weight of the newest window in the per-uid liveness moving average."""

    # --- loss evaluation (requirement 2) ---
    nonfinite_loss_penalty: float = 1.0
    """(>=0) improvement (nats/token, negated) charged when a loss after applying is NaN/inf."""
    relative_improvement: bool = True
    """Match score is (before-after)/before when True, before-after (nats/token) when False."""

    # --- peer selection (requirement 2) ---
    eval_budget: int = 16
    """(>=1) peers evaluated per window (loss before/after is the expensive step). 16 since
    validator.eval_batches went from 4 to 2 (2026-12-05): twice the peers for about the same
    time a window (27.9 s against 22.1 s of a 120 s window at 1.2B on one H200, projected
    from the measured costs: docs/validator.md), so each miner is measured as often on as many tokens over time."""
    eval_min_count: int = 2
    """(>=0) evaluate at least this many when that many are live (2 makes a rating match)."""
    rating_bins: int = 4
    """(>=1) rating-sorted bins; the window's drawn bin weighs as much as the others together,
    so a match mostly compares peers of similar strength (1: no preference)."""
    starvation_power: float = 1.5
    """(>=0) a live peer's selection weight is (1 + windows since its evaluation) ** this: the
    chance grows with waiting, no turn is ever fixed. Simulated at 64 peers, budget 8 (mean gap
    8): 1.5 keeps the longest gap near 23 windows (under 3x the mean; 0 -> 58, 1 -> 26, 2 -> 19)
    while a miner working only in the half of the windows where evaluation is likelier is still
    caught idle in about 1 evaluation in 5 (1: 1 in 4, 2: 1 in 7). docs/scoring.md."""

    # --- uniqueness (requirement 3) ---
    indicator_margin: float = 0.01
    """(>=0) the own-page advantage per declared page (own-page improvement beyond what the
    window's other updates do for the same batches: the control) must exceed this (same
    units). A miner that trained elsewhere has an advantage of about 0, so a coin-flip
    indicator would leave it half its uniqueness; the margin makes 'no better than the
    control' count against it."""
    indicator_graded: bool = True
    """False: indicator in {-1,+1}; True: tanh((own-random-margin)/indicator_scale) in (-1,1),
    so noise around the margin moves the average little and clear gaps count fully."""
    indicator_scale: float = 0.02
    """(>0) scale of the graded indicator, same units as the improvements."""
    uniqueness_saturation: float = 0.5
    """(0,1] uniqueness at and above which it counts fully in the final score (1: it
    multiplies the score). 0.5: honest miners' averages sit at 0.69-0.97 (adaptive and
    adversarial scenarios, docs/runs.md), so among them the rating alone ranks, by the
    data processed; a wrong-data miner's average, measured against the control, stays
    below 0 (-0.6 at the end of both adversarial runs) and earns nothing. At 1.0 the noise
    in honest averages reordered honest miners (adaptive Spearman 0.70 before the control);
    at 0.25 a wrong-data average that crossed 0.18 once (before the control) took 9.7
    percent of the adversarial scenario."""
    uniqueness_floor: float = 0.25
    """[0, uniqueness_saturation) uniqueness at and below which it counts nothing; between
    the floor and the saturation it counts in proportion. The average of a noisy indicator
    wanders: a wrong-data miner whose advantage came out positive in two or three windows
    (a page of its own sharing features with the pages it trained on, or late in training
    when every advantage is small) lifted its average from -0.3 to +0.07-0.24 within three
    windows; at floor 0 that ended one CI run at 1.2 percent of a validator's weights and
    held 20-40 percent of one in a window of others. Honest averages sit at 0.5-0.97 once
    warmed up, so the floor changes little for them. Replayed on eleven recorded adversarial
    runs with pay_min_evaluations, no adversary kept over 0.4 percent of a run and none any
    weight at the end; 0.35 left no adversary weight in any window but paid the smallest
    honest miner about 12 percent less (docs/scoring.md, "The uniqueness floor and the pay
    warm-up")."""
    uniqueness_ema: float = 0.2
    """(0,1] weight of the newest window in the uniqueness (indicator) moving average."""
    uniqueness_prior: float | None = 0.0
    """[-1,1] uniqueness of a fresh or reset peer. 0: no benefit of the doubt, so a new hotkey
    earns nothing until its own indicators lift the average above 0 (one good window does; after
    an unlucky first -1 it takes two); a higher prior lets a bad peer wash its record by
    re-registering. None seeds the average with the first indicator instead."""
    explained_threshold: float = 0.9
    """(0,1] fraction R² of a contribution's sketch that a combination of known updates must
    explain for it to be a copy (sources include this window's, observed earlier) or a replay
    (earlier windows only). One source: |cosine| >= 0.949 (the old pairwise 0.95). Honest-like
    sketches (history of 64 miners x 16 windows, 8 sources) reach at most R² 0.35 / 0.57 /
    0.80 / 0.86 at pairwise cosine 0 / 0.3 / 0.7 / 0.8: 0 of 2,560 flagged. docs/scoring.md."""
    explain_max_sources: int = 8
    """(>=1) most known updates one explanation may combine. Chance alone explains about
    k x 2 ln(n) / sketch_dim of a new update (0.33 at k = 8, n = 4096, d = 256), so k must stay
    well under sketch_dim / 10; a mix of more sources is left to the own-page indicator."""
    norm_ratio_limit: float = 8.0
    """(>1) an update whose L2 norm exceeds this multiple of the window's median norm (over at
    least 3 valid contributions) is an outlier: scaled up to dominate, penalised, not evaluated."""
    sketch_dim: int = 256
    """(>=8) dimensions of the public count-sketch used for replay detection."""
    sketch_coordinates: int = 1 << 20
    """(>=0) coordinates of an update that enter its sketch (every k-th of the flattened update,
    k chosen to give about this many); 0 = all. Hashing every coordinate of a 1B-parameter
    update costs seconds per contribution; a sample of M adds about 1/sqrt(M) of error to a
    cosine, far below the sketch's own (about 1/sqrt(sketch_dim))."""
    replay_history_windows: int = 16
    """(>=0) windows of sketches kept for replay detection (every contribution and aggregate).
    A replay must still lower today's loss and pass the own-page indicator, which a step
    made for a model 16 outer steps older, on other pages, fails within a few evaluations;
    the exact check covers the windows where it could still pass. Cost: (miners + 1) x 16
    sketches of ~5 KB of JSON, 5 MB at 64 miners, 21 MB at 256."""
    sketch_seed: str = "gauntlet/sketch/v1"
    """Public seed (UTF-8) of the count-sketch hash; changing it invalidates the history."""

    # --- ratings (requirement 4) ---
    rating_mu: float = 25.0
    """Fresh rating mean (OpenSkill default)."""
    rating_sigma: float = 25.0 / 3.0
    """(>0) fresh rating standard deviation (OpenSkill default)."""
    rating_beta: float = 7.0
    """(>0) PlackettLuce performance noise; the Gauntlet run used 7."""
    rating_tau: float = 0.1
    """(>0) PlackettLuce additive dynamics (sigma inflation per match); the Gauntlet run used 0.1."""
    rating_memory: float = 10.0
    """(0, or >=1) evaluations over which a rating forgets; 0: never. Before each match a
    peer's rating moves 1/rating_memory of the way back to the fresh one (mean and
    variance), so a match n evaluations old weighs (1 - 1/rating_memory)^n and the rating
    says what a miner does now, not what it once did. Without it a rating is a running sum
    of results: over 600 simulated windows (bench/rating_horizon.py) a 5-page miner that
    dropped to 2 pages earned 30 windows of its full pay beyond an honest 2-page miner, and
    a new 5-page miner took 43 windows to reach the 5-page incumbents; at 10, 0.8 windows
    and 17. Shorter memories pay the noise: at 5 the 1-page miners, whose updates worsen
    general text, earned 0.43 of the top per-page rate (0.04 at 10). docs/scoring.md,
    "The rating's memory"."""
    match_work: bool = True
    """Rank each window's rating match by the mean of two ranks rather than by the random
    pages alone: the random-page improvement, and the work on the miner's own pages (its
    own-page advantage times the pages it declared, what the uniqueness indicator reads).
    At one norm for every update the random pages order honest miners by pages, but rate
    a page buried in 2-3x its norm of noise like 4-5 honest pages, while the work prices
    it with a one-page miner and hardly tells two pages from five (docs/runs.md, "Burying on
    purpose"). On, in the 40-window adaptive run (seed 0) weak-control fell from 0.211 of
    the incentive to 0.081 and boost from 0.109 to 0.079, the thinned 2-page miner from
    0.171-0.191 of the weights to 0.089-0.112 (0.80x the honest rate per page), pages buried
    in 2x / 3x noise from 0.191 / 0.264 to 0.113 / 0.075, and the attack that knows the rule
    (page-fit) earned half the honest rate per page; the honest 1-page miner, whose update
    alone worsens the random pages, is paid for its page (about 0.02 of a 20-window run,
    nothing without). False: the random pages alone, the rule before 2026-12-05
    (docs/runs.md, "Ranking by the work too")."""
    ordinal_z: float = 1.0
    """(>=0) ordinal = mu - z*sigma. At 1 a fresh peer starts at 16.7 and an honest peer that
    keeps losing close matches stays above 0 for many windows; at 3 (OpenSkill's usual
    conservative ordinal) a fresh peer starts at 0 and every loss zeroes its weight, which in a
    small network silences honest miners."""

    # --- final score and weights (requirement 5) ---
    penalties: dict[str, float] = Field(default_factory=_default_penalties)
    """Outcome -> multiplier in [0,1] applied to the stored final score on a faulty window."""
    inactivity_decay: float = 0.5
    """[0,1] multiplier applied to the stored final score for each missing window."""
    unmeasured_decay: float = 0.9
    """[0,1] multiplier applied to the stored final score of a live ok peer that was not
    evaluated this window: a score fades unless re-measured, so a miner cannot earn on one good
    evaluation while coasting. 0.9 halves it in 6.6 windows, about the mean evaluation gap at
    64 miners and budget 8; every live peer fades alike, so shares stay fair in expectation."""
    reset_after_inactive: int = 25
    """(>=1) consecutive missing windows after which a uid restarts: score 0 and no evaluations,
    every other value the worse of its own and a fresh peer's."""
    peer_set_min_evaluations: int = 3
    """(>=0) evaluated windows a miner needs before it may join a peer set: one evaluation is
    one noisy match (a lucky start put a sign-flipper in a set, issue 14); three give three
    indicators and matches, and the first sets cannot go to whoever uploads first. Costs a
    newcomer about 3 x miners / eval_budget windows."""
    pay_min_evaluations: int = 3
    """(>=1) evaluated windows before a miner's score counts: until then its final score is 0,
    as its update joins no peer set before then either (peer_set_min_evaluations). In a
    network's first windows every update improves every page and the own-page advantage is
    least accurate: replayed on eleven recorded adversarial runs, the floor alone still paid
    a wrong-data miner 0.45 of a validator's weights in window 6 of one and a replay miner
    (not yet caught) 0.53 in window 4 of another; with this warm-up no adversary got more
    than 0.050 in any window. Costs an honest newcomer about one evaluation more than the
    floor does (miners / eval_budget windows)."""
    weight_power: float = 2.0
    """(>0) power normalisation: w_i = s_i^p / sum_j s_j^p."""

    @model_validator(mode="after")
    def _valid(self) -> ScoringConfig:
        _check(self.sync_max_steps > 0, "sync_max_steps must be > 0")
        _check(self.sync_shape in ("linear", "exponential"), "sync_shape: linear|exponential")
        for name in ("sync_ema", "liveness_ema", "uniqueness_ema", "uniqueness_saturation"):
            _check(0 < getattr(self, name) <= 1, f"{name} must be in (0, 1]")
        _check(
            0 <= self.uniqueness_floor < self.uniqueness_saturation,
            "uniqueness_floor must be in [0, uniqueness_saturation)",
        )
        _check(self.nonfinite_loss_penalty >= 0, "nonfinite_loss_penalty must be >= 0")
        _check(self.eval_budget >= 1, "eval_budget must be >= 1")
        _check(self.eval_min_count >= 0, "eval_min_count must be >= 0")
        _check(self.rating_bins >= 1, "rating_bins must be >= 1")
        _check(self.starvation_power >= 0, "starvation_power must be >= 0")
        _check(self.indicator_margin >= 0, "indicator_margin must be >= 0")
        _check(self.indicator_scale > 0, "indicator_scale must be > 0")
        prior = self.uniqueness_prior
        _check(prior is None or -1 <= prior <= 1, "uniqueness_prior must be in [-1, 1]")
        _check(0 < self.explained_threshold <= 1, "explained_threshold must be in (0, 1]")
        _check(self.explain_max_sources >= 1, "explain_max_sources must be >= 1")
        _check(self.norm_ratio_limit > 1, "norm_ratio_limit must be > 1")
        _check(self.sketch_dim >= 8, "sketch_dim must be >= 8")
        _check(self.replay_history_windows >= 0, "replay_history_windows must be >= 0")
        _check(self.sketch_coordinates >= 0, "sketch_coordinates must be >= 0")
        _check(math.isfinite(self.rating_mu), "rating_mu must be finite")
        for name in ("rating_sigma", "rating_beta", "rating_tau", "weight_power"):
            _check(getattr(self, name) > 0, f"{name} must be > 0")
        _check(self.ordinal_z >= 0, "ordinal_z must be >= 0")
        _check(
            self.rating_memory == 0 or self.rating_memory >= 1, "rating_memory must be 0 or >= 1"
        )
        for outcome, factor in self.penalties.items():
            _check(outcome in OUTCOMES and outcome not in (OK, MISSING), f"penalty for {outcome}")
            _check(0 <= factor <= 1, f"penalty for {outcome} must be in [0, 1]")
        for name in ("inactivity_decay", "unmeasured_decay"):
            _check(0 <= getattr(self, name) <= 1, f"{name} must be in [0, 1]")
        _check(self.reset_after_inactive >= 1, "reset_after_inactive must be >= 1")
        _check(self.peer_set_min_evaluations >= 0, "peer_set_min_evaluations must be >= 0")
        _check(self.pay_min_evaluations >= 1, "pay_min_evaluations must be >= 1")
        return self

    def penalty(self, outcome: str) -> float:
        """Multiplier in [0,1] for a window with this outcome (1.0 for ok and unlisted outcomes)."""
        return self.penalties.get(outcome, 1.0)

    @classmethod
    def knobs(cls) -> list[str]:
        """Field names, in declaration order (for mirroring into the config schema)."""
        return list(cls.model_fields)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
