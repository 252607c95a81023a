"""Which live peers the validator evaluates this window: fair, fresh and unpredictable.

Evaluation (loss before/after per contribution) is the expensive step, so only
``budget`` peers are evaluated per window. They are a weighted random sample
without replacement (Efraimidis-Spirakis keys) from the validator's secret seed:

* starvation (windows since a peer's last evaluation) raises its weight,
  ``(1 + starvation) ** starvation_power``, so every live peer is evaluated within a
  few mean gaps (``n / budget`` windows) with overwhelming probability; but it never
  fixes a turn: every candidate has a chance each window and, unless the budget covers
  them all, none is certain, so a miner cannot tell when to work;
* rating bins keep matches informative: peers sorted by rating ordinal are split into
  ``bins`` contiguous bins, the window draws one (probability proportional to its size)
  and its peers weigh ``bins`` times more, so about half the window's peers come from
  one strength level while, in expectation over windows, no bin is favoured.

All draws come from BLAKE2b of the validator's secret per-window ``seed`` and
the uid, so a miner cannot predict them and the same seed gives the same answer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence


def _uniform(seed: bytes, tag: bytes, uid: int) -> float:
    """A deterministic draw in (0, 1) from (seed, tag, uid)."""
    digest = hashlib.blake2b(
        len(seed).to_bytes(4, "big") + seed + tag + uid.to_bytes(8, "big", signed=True),
        digest_size=8,
    ).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def _bins(ordered: Sequence[int], count: int) -> list[list[int]]:
    """``ordered`` split into ``min(count, len)`` contiguous bins; earlier bins get the extras."""
    count = min(count, len(ordered))
    size, extra = divmod(len(ordered), count)
    out, start = [], 0
    for b in range(count):
        end = start + size + (1 if b < extra else 0)
        out.append(list(ordered[start:end]))
        start = end
    return out


def select_peers(
    candidates: Iterable[int],
    ratings: Mapping[int, float],
    starvation: Mapping[int, int],
    budget: int,
    min_count: int,
    seed: bytes,
    *,
    bins: int = 4,
    starvation_power: float = 1.5,
) -> list[int]:
    """The uids to evaluate this window, sorted ascending; deterministic given ``seed``.

    ``candidates``: live uids that passed the fast filter. ``ratings``: uid ->
    rating ordinal (missing uids rank lowest). ``starvation``: uid -> windows
    since last evaluated (missing: 0). Picks ``min(len(candidates),
    max(budget, min_count))`` uids: ``min_count`` (e.g. 2, so a rating match
    can happen) overrides a smaller ``budget``. Each candidate weighs
    ``(1 + starvation) ** starvation_power``, times the number of bins when it is in
    the window's bin; the uids are a weighted sample without replacement, so every
    candidate has a chance and, unless all are taken, none is certain.
    """
    pool = sorted(set(candidates))
    k = min(len(pool), max(budget, min_count))
    if k <= 0:
        return []
    ordered = sorted(pool, key=lambda uid: (ratings.get(uid, -math.inf), uid))
    groups = _bins(ordered, max(1, bins))
    # Drawing a uniformly random peer's bin = drawing a bin proportional to its size.
    pick = ordered[min(int(_uniform(seed, b"bin", 0) * len(ordered)), len(ordered) - 1)]
    favoured = next(set(group) for group in groups if pick in group)

    def weight(uid: int) -> float:
        w = (1.0 + max(0, starvation.get(uid, 0))) ** starvation_power
        return w * len(groups) if uid in favoured else w

    # Efraimidis-Spirakis: the k largest u^(1/w), i.e. the k smallest -ln(u)/w.
    ranked = sorted(pool, key=lambda uid: -math.log(_uniform(seed, b"peer", uid)) / weight(uid))
    return sorted(ranked[:k])


def update_starvation(
    counters: Mapping[int, int], candidates: Iterable[int], evaluated: Iterable[int]
) -> dict[int, int]:
    """Counters after a window: evaluated -> 0, other candidates +1, absent uids unchanged."""
    done = set(evaluated)
    out = dict(counters)
    for uid in set(candidates) | done:
        out[uid] = 0 if uid in done else out.get(uid, 0) + 1
    return out
