"""OpenSkill (Plackett-Luce) ratings: one match per window over the evaluated peers.

Ratings are kept as plain ``Rating(mu, sigma)`` floats so validator state is
JSON; openskill objects exist only inside :func:`update_ratings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openskill.models import PlackettLuce

DEFAULT_MU = 25.0
DEFAULT_SIGMA = 25.0 / 3.0


@dataclass(frozen=True)
class Rating:
    """A skill belief: mean ``mu`` and standard deviation ``sigma`` (> 0), OpenSkill units."""

    mu: float = DEFAULT_MU
    sigma: float = DEFAULT_SIGMA

    def ordinal(self, z: float = 3.0) -> float:
        """Conservative skill ``mu - z * sigma`` (fresh default rating: 0)."""
        return self.mu - z * self.sigma

    def to_dict(self) -> dict[str, float]:
        return {"mu": self.mu, "sigma": self.sigma}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rating:
        return cls(mu=float(data["mu"]), sigma=float(data["sigma"]))


def match_ranks(scores: Mapping[int, float]) -> dict[int, int]:
    """Competition ranks (0 best; equal scores share a rank; higher score is better).

    Non-finite scores (NaN, ±inf) rank last, tied among themselves.
    """
    clean = {uid: s if math.isfinite(s) else -math.inf for uid, s in scores.items()}
    ordered = sorted(clean.values(), reverse=True)
    first: dict[float, int] = {}
    for index, value in enumerate(ordered):
        first.setdefault(value, index)
    return {uid: first[value] for uid, value in clean.items()}


def mean_rank_scores(*measures: Mapping[int, float]) -> dict[int, float]:
    """Match scores that rank uids by their mean competition rank over ``measures`` (each
    uid -> a score, higher better, every measure over the same uids): minus the mean rank,
    so the best on average scores highest and equal means tie. A uid missing from a measure
    ranks last in it."""
    uids = sorted(set().union(*measures))
    ranks = [match_ranks({u: m.get(u, -math.inf) for u in uids}) for m in measures]
    return {u: -sum(r[u] for r in ranks) / len(ranks) for u in uids}


def relaxed(rating: Rating, memory: float, fresh: Rating) -> Rating:
    """``rating`` moved ``1 / memory`` of the way back to ``fresh``, mean and variance: what
    the rating keeps of its past before the next match (``memory`` >= 1; 0 keeps it all).

    A skill belief that is never relaxed weighs a match from long ago as much as today's,
    so a miner that built its rating on full work keeps it long after it does less. Relaxed
    before each match, the evidence of a match ``n`` matches old weighs
    ``(1 - 1/memory) ** n``; the variance grows back too, so the next matches move it more."""
    if memory == 0:
        return rating
    if memory < 1:
        raise ValueError(f"memory must be 0 or >= 1, got {memory}")
    keep = 1.0 - 1.0 / memory
    mu = fresh.mu + keep * (rating.mu - fresh.mu)
    variance = fresh.sigma**2 + keep * (rating.sigma**2 - fresh.sigma**2)
    return Rating(mu=mu, sigma=math.sqrt(variance))


def update_ratings(
    ratings: Mapping[int, Rating],
    scores: Mapping[int, float],
    beta: float = 7.0,
    tau: float = 0.1,
    *,
    mu: float = DEFAULT_MU,
    sigma: float = DEFAULT_SIGMA,
) -> dict[int, Rating]:
    """Ratings after one Plackett-Luce match among the uids in ``scores``.

    ``scores``: uid -> this window's match score (loss improvement; higher is
    better; non-finite loses). uids without a rating start at ``Rating(mu, sigma)``.
    Each participant's sigma is first inflated by ``tau`` (OpenSkill dynamics).
    With fewer than two participants there is no match: ratings are returned
    unchanged (plus fresh entries for new uids). uids not in ``scores`` keep
    their ratings. Returns a new dict; the inputs are untouched.
    """
    out = dict(ratings)
    players = sorted(scores)
    for uid in players:
        out.setdefault(uid, Rating(mu, sigma))
    if len(players) < 2:
        return out
    model = PlackettLuce(mu=mu, sigma=sigma, beta=beta, tau=tau)
    teams = [[model.rating(mu=out[uid].mu, sigma=out[uid].sigma)] for uid in players]
    ranks = match_ranks(scores)
    rated = model.rate(teams, ranks=[float(ranks[uid]) for uid in players], tau=tau)
    for uid, team in zip(players, rated, strict=True):
        out[uid] = Rating(mu=float(team[0].mu), sigma=float(team[0].sigma))
    return out
