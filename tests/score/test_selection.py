"""Peer selection for evaluation: regular coverage, seeded unpredictability."""

from __future__ import annotations

from gauntlet.score.selection import select_peers, update_starvation


def _run(n: int, budget: int, windows: int, limit: int) -> list[list[int]]:
    """Selections over ``windows`` windows, with starvation counters carried along."""
    candidates = list(range(n))
    ratings = {uid: float(uid) for uid in candidates}  # fixed ratings: bins never move
    starvation: dict[int, int] = {}
    chosen = []
    for w in range(windows):
        picked = select_peers(
            candidates, ratings, starvation, budget, 2, f"secret-{w}".encode(),
            bins=3, starvation_limit=limit,
        )  # fmt: skip
        starvation = update_starvation(starvation, candidates, picked)
        chosen.append(picked)
    return chosen


def test_no_candidates_selects_nobody() -> None:
    assert select_peers([], {}, {}, budget=4, min_count=2, seed=b"s") == []


def test_one_candidate_is_selected() -> None:
    assert select_peers([7], {}, {}, budget=4, min_count=2, seed=b"s") == [7]


def test_budget_caps_the_selection_and_min_count_overrides_a_smaller_budget() -> None:
    uids = list(range(10))
    assert len(select_peers(uids, {}, {}, budget=3, min_count=2, seed=b"s")) == 3
    assert len(select_peers(uids, {}, {}, budget=1, min_count=2, seed=b"s")) == 2


def test_selection_is_deterministic_given_the_seed() -> None:
    args = (list(range(20)), {u: u * 0.5 for u in range(20)}, {3: 2})
    assert select_peers(*args, budget=4, min_count=2, seed=b"a") == select_peers(
        *args, budget=4, min_count=2, seed=b"a"
    )


def test_selection_differs_across_seeds() -> None:
    uids = list(range(20))
    picks = {tuple(select_peers(uids, {}, {}, 4, 2, seed=bytes([i]))) for i in range(10)}
    assert len(picks) > 5


def test_starved_peers_are_selected_first_oldest_first() -> None:
    starvation = {1: 9, 2: 6, 3: 7, 4: 0}
    picked = select_peers([1, 2, 3, 4, 5], {}, starvation, 2, 2, b"s", starvation_limit=5)
    assert picked == [1, 3]


def test_every_peer_is_covered_within_limit_plus_n_over_budget_windows() -> None:
    n, budget, limit = 12, 2, 4
    windows = limit + n // budget  # 10
    seen = {uid for picked in _run(n, budget, windows, limit) for uid in picked}
    assert seen == set(range(n))


def test_no_peer_waits_longer_than_the_bound_in_steady_state() -> None:
    n, budget, limit = 12, 2, 4
    history = _run(n, budget, 60, limit)
    for uid in range(n):
        windows = [w for w, picked in enumerate(history) if uid in picked]
        gaps = [b - a for a, b in zip(windows, windows[1:], strict=False)]
        assert windows[0] < limit + n // budget
        assert max(gaps) <= limit + n // budget


def test_starvation_counters_reset_on_evaluation_and_grow_otherwise() -> None:
    after = update_starvation({1: 3, 2: 1, 9: 4}, candidates=[1, 2, 3], evaluated=[2])
    assert after == {1: 4, 2: 0, 3: 1, 9: 4}
