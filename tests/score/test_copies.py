"""Copies and replays: contributions explained by combinations of known updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gauntlet.score.config import COPY, REPLAY, ScoringConfig
from gauntlet.score.copies import explain, find_copies
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry
from gauntlet.score.vectors import cosine

DIM = 256  # the default sketch_dim


def test_cosine_of_parallel_orthogonal_and_opposite_vectors() -> None:
    assert cosine([2.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == 0.0
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)


def test_cosine_accepts_torch_tensors_of_any_shape() -> None:
    a = torch.tensor([[1.0, 2.0], [2.0, 0.0]])
    assert cosine(a, np.array([1.0, 2.0, 2.0, 0.0])) == pytest.approx(1.0)


def test_cosine_of_zero_is_zero_and_of_nonfinite_is_minus_one() -> None:
    assert cosine([0.0, 0.0], [1.0, 2.0]) == 0.0
    assert cosine([math.nan, 1.0], [1.0, 2.0]) == -1.0


def test_cosine_survives_huge_values() -> None:
    assert cosine([1e300, 1e300], [2e300, 2e300]) == pytest.approx(1.0)


def test_cosine_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError):
        cosine([1.0], [1.0, 2.0])


def test_one_source_explains_its_squared_cosine_of_either_sign() -> None:
    rng = np.random.default_rng(1)
    x, a = rng.standard_normal(DIM), rng.standard_normal(DIM)
    for source in (a, -a):
        result = explain(x, [source], max_sources=4)
        assert result.sources == (0,)
        assert result.explained == pytest.approx(cosine(x, a) ** 2)


def test_a_mix_is_explained_by_exactly_its_sources() -> None:
    rng = np.random.default_rng(2)
    known = rng.standard_normal((50, DIM))
    mix = 0.5 * known[7] - 0.3 * known[21] + 0.2 * known[40]
    result = explain(mix, known, max_sources=8, threshold=0.9)
    assert sorted(result.sources) == [7, 21, 40]
    assert result.explained == pytest.approx(1.0)


def test_the_source_cap_bounds_an_explanation() -> None:
    rng = np.random.default_rng(3)
    known = rng.standard_normal((20, DIM))
    mix = known[:12].sum(axis=0)  # twelve equal parts: eight explain about 8/12
    result = explain(mix, known, max_sources=8, threshold=0.9)
    assert len(result.sources) == 8 and 0.55 < result.explained < 0.8


def test_nothing_explains_a_zero_or_non_finite_candidate_and_zero_rows_are_never_picked() -> None:
    assert explain(np.zeros(4), np.eye(4), max_sources=2).explained == 0.0
    assert explain([math.nan, 1.0, 0.0, 0.0], np.eye(4), max_sources=2).sources == ()
    result = explain([1.0, 1.0, 0.0, 0.0], [[0.0] * 4, [1.0, 0, 0, 0]], max_sources=2)
    assert result.sources == (1,) and result.explained == pytest.approx(0.5)
    assert explain([1.0, 0.0], np.zeros((0, 2)), max_sources=2).sources == ()


def test_only_contributions_observed_earlier_explain_a_same_window_one() -> None:
    """Pairwise duplicates are the one-source case: the later observed is the copy; in a
    chain A < B < C both B and C are copies, named after what was observed before them."""
    same = [1.0, 1.0, 0.0]
    found = find_copies(
        {1: same, 2: same, 3: same}, {1: 30.0, 2: 10.0, 3: 20.0}, [], 9,
        threshold=0.9, max_sources=8,
    )  # fmt: skip
    assert {uid: f.outcome for uid, f in found.items()} == {1: COPY, 3: COPY}
    assert found[3].sources == ((9, 2),) and found[1].sources == ((9, 2),)
    # Equal observation blocks: the higher uid counts as later.
    found = find_copies({4: same, 6: same}, {4: 5.0, 6: 5.0}, [], 9, threshold=0.9, max_sources=8)
    assert list(found) == [6]


def test_a_mix_of_this_window_and_history_is_a_copy_and_of_history_alone_a_replay() -> None:
    rng = np.random.default_rng(4)
    old, agg, mine, other = (rng.standard_normal(DIM) for _ in range(4))
    history = [SketchEntry.of(7, 3, old), SketchEntry.of(7, AGGREGATE_UID, agg)]
    sketches = {1: mine, 2: 0.5 * mine + old, 5: old - 0.5 * agg, 8: other}
    observed = {1: 100.0, 2: 110.0, 5: 90.0, 8: 120.0}
    found = find_copies(sketches, observed, history, 8, threshold=0.9, max_sources=8)
    assert sorted(found) == [2, 5]
    assert found[2].outcome == COPY and found[2].sources == ((7, 3), (8, 1))
    assert found[5].outcome == REPLAY and found[5].sources == ((7, AGGREGATE_UID), (7, 3))
    assert (
        found[2].reason(8) == "copy of uid 3 of window 7 + uid 1, observed later (explains 100.0%)"
    )
    assert found[5].reason(8) == (
        "replays the aggregate of window 7 + uid 3 of window 7 (explains 100.0%)"
    )


def _honest_like(rng: np.random.Generator, shared: np.ndarray, rho: float) -> np.ndarray:
    """An honest-like sketch: a share ``rho`` of its energy along the window's shared
    direction (the true gradient all miners follow), the rest its own."""
    own = rng.standard_normal(DIM)
    return math.sqrt(rho) * shared + math.sqrt(1 - rho) * own / np.linalg.norm(own)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.7])
def test_honest_updates_are_not_explained_by_their_peers(rho: float) -> None:
    """False positives on honest-like data at the default threshold and source cap: 64
    miners and their aggregate over 16 windows of history (the default), a shared direction
    drifting between windows (correlation 0.7) and this window's the same as the last
    aggregate's (the hard case), pairwise cosine ``rho``. Largest R² on this data: 0.31 (rho 0),
    0.57 (0.3), 0.80 (0.7); over 8 seeds x 64 miners per rho none was flagged, up to rho 0.8
    (largest 0.86). docs/scoring.md records the figures."""
    cfg = ScoringConfig()
    rng = np.random.default_rng(5)
    shared = rng.standard_normal(DIM)
    history: list[SketchEntry] = []
    for window in range(16):
        shared = 0.7 * shared / np.linalg.norm(shared) + 0.71 * rng.standard_normal(DIM) / 16
        shared /= np.linalg.norm(shared)
        window_updates = [_honest_like(rng, shared, rho) for _ in range(64)]
        history += [SketchEntry.of(window, uid, u) for uid, u in enumerate(window_updates)]
        history.append(SketchEntry.of(window, AGGREGATE_UID, np.mean(window_updates, axis=0)))
    sketches = {uid: _honest_like(rng, shared, rho) for uid in range(64)}
    observed = {uid: float(uid) for uid in sketches}
    found = find_copies(
        sketches, observed, history, 16,
        threshold=cfg.explained_threshold, max_sources=cfg.explain_max_sources,
    )  # fmt: skip
    assert found == {}
    worst = max(
        explain(x, [e.values for e in history], max_sources=cfg.explain_max_sources).explained
        for x in sketches.values()
    )
    assert worst < cfg.explained_threshold
