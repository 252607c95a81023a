"""The rating's memory over a horizon longer than a localnet runs (docs/scoring.md, "The
rating's memory"): journal rows for honest miners of 1-5 pages whose match scores rank
by pages with noise, fed to the validator's own scoring (``journal_replay.replay``).
bench/rating_horizon.py measures the same over 600 windows with measured noise; these
keep the direction of its findings in the default suite."""

from __future__ import annotations

import random
from typing import Any

from gauntlet.node.journal_replay import replay
from gauntlet.score.config import ScoringConfig

MINERS = {uid: 1 + uid // 2 for uid in range(10)}  # two honest miners of each of 1-5 pages
NEW = 10  # a hotkey that registers halfway
SWITCH = 80  # the window a miner changes what it does
WINDOWS = 140


def _journal(schedule: list[dict[int, int]], seed: int = 0) -> list[dict[str, Any]]:
    """Every miner measured every window: a random-page gain of 0.01 a page plus noise of
    half a page's worth, and an own-page advantage that passes the uniqueness gate."""
    rng, known, windows = random.Random(seed), set(), []
    for window, pages in enumerate(schedule):
        hotkeys = {str(uid): f"hotkey{uid}" for uid in pages if uid not in known}
        known |= set(pages)
        rows = [
            [uid, "ok", 1.0, p, 3.0, 2.9, 0.01 * p + rng.gauss(0.0, 0.005), 0.2]
            for uid, p in sorted(pages.items())
        ]
        windows.append({"window": window, "hotkeys": hotkeys, "peers": rows})
    return windows


def _mean(weights: list[dict[int, float]], uids: list[int], start: int, end: int) -> float:
    return sum(weights[w].get(u, 0.0) for w in range(start, end) for u in uids) / (
        (end - start) * len(uids)
    )


def _coasting_excess(memory: float) -> float:
    """A 5-page miner (uid 9) drops to 2 pages at SWITCH: what it is paid beyond the honest
    2-page miners from then to the end, in windows of the pay it had before."""
    schedule = [MINERS] * SWITCH + [{**MINERS, 9: 2}] * (WINDOWS - SWITCH)
    weights = replay(_journal(schedule), ScoringConfig(rating_memory=memory))
    full = _mean(weights, [9], SWITCH - 10, SWITCH)
    excess = sum(weights[w][9] - _mean(weights, [2, 3], w, w + 1) for w in range(SWITCH, WINDOWS))
    return excess / full


def _newcomer(memory: float) -> float:
    """A new 5-page hotkey registers at SWITCH: its weight against the 5-page incumbents'
    in its second 30 windows."""
    schedule = [MINERS] * SWITCH + [{**MINERS, NEW: 5}] * (WINDOWS - SWITCH)
    weights = replay(_journal(schedule), ScoringConfig(rating_memory=memory))
    start = SWITCH + 30
    return _mean(weights, [NEW], start, WINDOWS) / _mean(weights, [8, 9], start, WINDOWS)


def test_the_default_rating_forgets() -> None:
    assert ScoringConfig().rating_memory == 10


def test_a_miner_that_stops_working_keeps_less_of_its_old_pay_with_the_memory() -> None:
    """Measured here: 3.8 windows of its full pay at the default, 8.9 without memory (the
    bench, 600 windows with measured noise: 0.8 and 30)."""
    assert _coasting_excess(ScoringConfig().rating_memory) < 5
    assert _coasting_excess(0.0) > 7


def test_a_newcomer_is_paid_like_the_incumbents_it_equals_within_the_memory() -> None:
    """Measured here: 1.03 of the incumbents' pay at the default, 0.67 without memory,
    whose incumbents keep the lead of their 80 windows of wins."""
    assert _newcomer(ScoringConfig().rating_memory) > 0.9
    assert _newcomer(0.0) < 0.8
