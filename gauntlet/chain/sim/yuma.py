"""A simplified Yuma consensus: pure maths, no I/O (what one epoch pays whom).

Choices, kept deliberately close to the chain's intent while staying short:

* Only validators (permit holders) with stake count; stake is normalised over them.
* Consensus for miner ``j`` is the stake-weighted median (kappa = 0.5) of the
  validators' row-normalised weights on ``j``: the largest value ``c`` such that
  validators holding at least half the stake gave ``j`` a weight ``>= c``.
* Each weight is clipped at its miner's consensus, so a minority cannot lift a miner.
* Rank ``R_j = sum_i S_i * min(W_ij, C_j)``; incentive = ``R / sum(R)``.
* Bonds are instantaneous (no EMA): ``B_ij = S_i * W'_ij / R_j``; dividends
  ``D_i = sum_j B_ij * I_j``, normalised.
* Emission per epoch = ``tempo`` units (one per block), half to miners by incentive,
  half to validators by dividends. Emission is reported, not added to stake.
"""

from __future__ import annotations

from dataclasses import dataclass

KAPPA = 0.5
MINER_SHARE = 0.5


@dataclass(frozen=True)
class EpochResult:
    incentive: dict[int, float]
    dividends: dict[int, float]
    emission: dict[int, float]


def _normalise(values: dict[int, float]) -> dict[int, float]:
    total = sum(values.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in values.items()}


def _weighted_median(points: list[tuple[float, float]]) -> float:
    """points = (value, stake share); the largest value with >= KAPPA of stake at or above it."""
    covered = 0.0
    for value, share in sorted(points, key=lambda p: -p[0]):
        covered += share
        if covered >= KAPPA - 1e-12:
            return value
    return 0.0


def epoch(
    uids: list[int],
    stake: dict[int, float],
    validators: set[int],
    weights: dict[int, dict[int, float]],
    total_emission: float,
) -> EpochResult:
    """One epoch. ``weights[v][m]`` may be unnormalised; rows of non-validators are ignored."""
    s = _normalise({v: stake.get(v, 0.0) for v in validators if stake.get(v, 0.0) > 0})
    rows = {v: _normalise(weights.get(v, {})) for v in s}

    consensus = {j: _weighted_median([(rows[v].get(j, 0.0), s[v]) for v in s]) for j in uids}
    clipped = {
        v: {j: min(w, consensus.get(j, 0.0)) for j, w in row.items()} for v, row in rows.items()
    }
    rank = {j: sum(s[v] * clipped[v].get(j, 0.0) for v in s) for j in uids}
    incentive = _normalise(rank)

    raw_dividends = {
        v: sum(
            s[v] * w / rank[j] * incentive[j] for j, w in clipped[v].items() if rank.get(j, 0.0) > 0
        )
        for v in s
    }
    dividends = _normalise({u: raw_dividends.get(u, 0.0) for u in uids})

    emission = {
        u: total_emission * (MINER_SHARE * incentive[u] + (1 - MINER_SHARE) * dividends[u])
        for u in uids
    }
    return EpochResult(incentive=incentive, dividends=dividends, emission=emission)
