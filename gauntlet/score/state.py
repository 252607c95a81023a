"""What scoring remembers across windows: plain dataclasses with an exact JSON round trip.

State is keyed by uid and remembers the hotkey: a new hotkey on a uid (the slot
was re-registered) starts fresh. Floats survive ``json.dumps``/``json.loads``
exactly (Python writes the shortest repr that reads back to the same double);
no NaN or infinity is ever stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gauntlet.score.config import ScoringConfig
from gauntlet.score.ratings import Rating
from gauntlet.score.replay import SketchEntry
from gauntlet.score.weights import power_weights


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class PeerState:
    """One (uid, hotkey)'s scoring memory.

    ``rating``: OpenSkill belief. ``uniqueness``: indicator moving average in
    [-1, 1]; ``sync``: sync score moving average in [0, 1]; ``liveness``:
    present-and-on-time moving average in [0, 1] (each None until first seen).
    ``score``: the current final score (>= 0) that weights are made from.
    ``starvation``: windows live but not evaluated. ``evaluations``: windows
    evaluated so far. ``inactive_windows``: consecutive missing windows.
    ``last_evaluated``: window of the last evaluation (-1: never).
    """

    hotkey: str
    rating: Rating = field(default_factory=Rating)
    uniqueness: float | None = None
    sync: float | None = None
    liveness: float | None = None
    score: float = 0.0
    starvation: int = 0
    evaluations: int = 0
    inactive_windows: int = 0
    last_evaluated: int = -1

    @classmethod
    def fresh(cls, hotkey: str, config: ScoringConfig, rating: Rating | None = None) -> PeerState:
        """A new peer: ``rating`` (default: the config's fresh rating; the network passes
        :func:`entry_rating`), the config's uniqueness prior, score 0."""
        return cls(
            hotkey=hotkey,
            rating=Rating(config.rating_mu, config.rating_sigma) if rating is None else rating,
            uniqueness=config.uniqueness_prior,
        )

    def restarted(self, config: ScoringConfig, rating: Rating | None = None) -> PeerState:
        """This peer after ``reset_after_inactive`` missing windows: fresh counters (score 0,
        no evaluations, so it warms up again), but of each remembered value the worse of its
        own and a fresh peer's: staying away never washes a record clean."""
        fresh = PeerState.fresh(self.hotkey, config, rating)
        z = config.ordinal_z
        worse = min(self.rating, fresh.rating, key=lambda r: r.ordinal(z))  # tie: its own
        return replace(
            fresh,
            rating=worse,
            uniqueness=_worse(self.uniqueness, fresh.uniqueness),
            sync=self.sync,  # a fresh None would let the next window seed it
            liveness=self.liveness,
            last_evaluated=self.last_evaluated,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "hotkey": self.hotkey,
            "rating": self.rating.to_dict(),
            "uniqueness": self.uniqueness,
            "sync": self.sync,
            "liveness": self.liveness,
            "score": self.score,
            "starvation": self.starvation,
            "evaluations": self.evaluations,
            "inactive_windows": self.inactive_windows,
            "last_evaluated": self.last_evaluated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeerState:
        return cls(
            hotkey=str(data["hotkey"]),
            rating=Rating.from_dict(data["rating"]),
            uniqueness=_opt_float(data["uniqueness"]),
            sync=_opt_float(data["sync"]),
            liveness=_opt_float(data["liveness"]),
            score=float(data["score"]),
            starvation=int(data["starvation"]),
            evaluations=int(data["evaluations"]),
            inactive_windows=int(data["inactive_windows"]),
            last_evaluated=int(data["last_evaluated"]),
        )


def _worse(own: float | None, fresh: float | None) -> float | None:
    """The lower of two averages; None (no value yet: the next one seeds it) is not lower."""
    if own is None or fresh is None:
        return fresh if own is None else own
    return min(own, fresh)


def entry_rating(peers: Mapping[int, PeerState], config: ScoringConfig) -> Rating:
    """The rating a newcomer (or a reset peer) starts from: the config's fresh rating, its mean
    lowered so that its ordinal is no higher than that of the poorest peer still earning a
    score (score > 0). A new hotkey thus starts below every earner and must win its way up;
    at a network's start (no earners) everyone starts at the fresh rating."""
    z, sigma = config.ordinal_z, config.rating_sigma
    fresh = Rating(config.rating_mu, sigma)
    earning = [p.rating.ordinal(z) for p in peers.values() if p.score > 0]
    floor = min(earning, default=fresh.ordinal(z))
    if floor >= fresh.ordinal(z):
        return fresh
    mu = floor + z * sigma
    while mu - z * sigma > floor:  # rounding must not lift it above the floor
        mu = math.nextafter(mu, -math.inf)
    return Rating(mu, sigma)


@dataclass(frozen=True)
class ValidatorScores:
    """All scoring state of a validator: per-uid peers, replay sketches, last window processed."""

    peers: dict[int, PeerState] = field(default_factory=dict)
    sketches: tuple[SketchEntry, ...] = ()
    last_window: int = -1

    def ordinals(self, z: float = 3.0) -> dict[int, float]:
        """uid -> rating ordinal ``mu - z sigma`` (the ``ratings`` argument of select_peers)."""
        return {uid: p.rating.ordinal(z) for uid, p in self.peers.items()}

    def starvation(self) -> dict[int, int]:
        """uid -> windows since last evaluated (the ``starvation`` argument of select_peers)."""
        return {uid: p.starvation for uid, p in self.peers.items()}

    def scores(self) -> dict[int, float]:
        """uid -> final score (>= 0)."""
        return {uid: p.score for uid, p in self.peers.items()}

    def weights(self, power: float) -> dict[int, float]:
        """uid -> chain weight by power normalisation of the final scores (sums to 1 or all 0)."""
        return power_weights(self.scores(), power)

    def with_peer(self, uid: int, peer: PeerState) -> ValidatorScores:
        """A copy with one peer replaced."""
        return replace(self, peers={**self.peers, uid: peer})

    def to_dict(self) -> dict[str, Any]:
        return {
            "peers": {str(uid): p.to_dict() for uid, p in sorted(self.peers.items())},
            "sketches": [s.to_dict() for s in self.sketches],
            "last_window": self.last_window,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidatorScores:
        return cls(
            peers={int(uid): PeerState.from_dict(p) for uid, p in data["peers"].items()},
            sketches=tuple(SketchEntry.from_dict(s) for s in data["sketches"]),
            last_window=int(data["last_window"]),
        )
