"""Which live peers the validator evaluates this window: regular, yet unpredictable.

Evaluation (loss before/after per contribution) is the expensive step, so only
``budget`` peers are evaluated per window. Two mechanisms make that fair:

* a starvation counter per peer (windows since its last evaluation): peers at
  or above ``starvation_limit`` are taken first, oldest first, so every live
  peer is evaluated within about ``starvation_limit + n / budget`` windows;
* the remaining slots come from rating bins: peers sorted by rating ordinal are
  split into ``bins`` contiguous bins, the window draws one bin (probability
  proportional to its size) and fills from it, then from its nearest bins, so
  each match compares peers of similar strength. Inside a bin, peers are drawn
  without replacement with weight ``1 + starvation``.

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
    starvation_limit: int = 5,
) -> list[int]:
    """The uids to evaluate this window, sorted ascending; deterministic given ``seed``.

    ``candidates``: live uids that passed the fast filter. ``ratings``: uid ->
    rating ordinal (missing uids rank lowest). ``starvation``: uid -> windows
    since last evaluated (missing: 0). Picks ``min(len(candidates),
    max(budget, min_count))`` uids: ``min_count`` (e.g. 2, so a rating match
    can happen) overrides a smaller ``budget``.
    """
    pool = sorted(set(candidates))
    k = min(len(pool), max(budget, min_count))
    if k <= 0:
        return []
    hungry = [uid for uid in pool if starvation.get(uid, 0) >= starvation_limit]
    hungry.sort(key=lambda uid: (-starvation.get(uid, 0), _uniform(seed, b"starved", uid)))
    chosen = hungry[:k]
    taken = set(chosen)
    rest = [uid for uid in pool if uid not in taken]
    if len(chosen) < k:
        rest.sort(key=lambda uid: (ratings.get(uid, -math.inf), uid))
        groups = _bins(rest, max(1, bins))
        # Drawing a uniformly random peer's bin = drawing a bin proportional to its size.
        pick = min(int(_uniform(seed, b"bin", 0) * len(rest)), len(rest) - 1)
        start = next(b for b, group in enumerate(groups) if rest[pick] in group)
        order = sorted(range(len(groups)), key=lambda b: (abs(b - start), b))
        for b in order:
            # Efraimidis-Spirakis: weighted sampling without replacement via u^(1/w).
            ranked = sorted(
                groups[b],
                key=lambda uid: (
                    -(_uniform(seed, b"peer", uid) ** (1.0 / (1 + starvation.get(uid, 0))))
                ),
            )
            chosen.extend(ranked[: k - len(chosen)])
            if len(chosen) == k:
                break
    return sorted(chosen)


def update_starvation(
    counters: Mapping[int, int], candidates: Iterable[int], evaluated: Iterable[int]
) -> dict[int, int]:
    """Counters after a window: evaluated -> 0, other candidates +1, absent uids unchanged."""
    done = set(evaluated)
    out = dict(counters)
    for uid in set(candidates) | done:
        out[uid] = 0 if uid in done else out.get(uid, 0) + 1
    return out
