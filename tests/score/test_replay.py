"""Replay detection with public count-sketches."""

from __future__ import annotations

import numpy as np
import pytest

from gauntlet.score.copies import cosine
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry, find_replay, remember, sketch

SEED = b"gauntlet/sketch/v1"
DIM = 256


@pytest.fixture()
def updates() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(20_000) for name in ("old", "other", "aggregate", "fresh")}


def _history(updates: dict[str, np.ndarray]) -> list[SketchEntry]:
    return [
        SketchEntry.of(3, 5, sketch(updates["old"], DIM, SEED)),
        SketchEntry.of(3, 6, sketch(updates["other"], DIM, SEED)),
        SketchEntry.of(4, AGGREGATE_UID, sketch(updates["aggregate"], DIM, SEED)),
    ]


def test_sketch_is_deterministic_linear_and_seed_dependent() -> None:
    a, b = np.arange(10.0), np.ones(10)
    assert np.array_equal(sketch(a, 8, SEED), sketch(a, 8, SEED))
    assert np.allclose(sketch(a + b, 8, SEED), sketch(a, 8, SEED) + sketch(b, 8, SEED))
    assert not np.array_equal(sketch(a, 8, SEED), sketch(a, 8, b"other seed"))


def test_sketch_of_one_coordinate_is_plus_or_minus_its_value() -> None:
    s = sketch([0.0, 0.0, 3.0], 8, SEED)
    assert sorted(np.abs(s)) == [0.0] * 7 + [3.0]


def test_sketch_roughly_preserves_cosine(updates: dict[str, np.ndarray]) -> None:
    a, b = updates["old"], updates["old"] + updates["other"]  # true cosine ~0.71
    assert cosine(sketch(a, DIM, SEED), sketch(b, DIM, SEED)) == pytest.approx(
        cosine(a, b), abs=0.15
    )


def test_reupload_of_an_old_contribution_is_a_replay(updates: dict[str, np.ndarray]) -> None:
    noisy = updates["old"] + 0.05 * updates["fresh"]
    match = find_replay(sketch(noisy, DIM, SEED), _history(updates), window=5, threshold=0.95)
    assert match is not None
    assert (match.entry.window, match.entry.uid) == (3, 5)


def test_reupload_of_the_previous_aggregate_is_a_replay(updates: dict[str, np.ndarray]) -> None:
    match = find_replay(
        sketch(updates["aggregate"], DIM, SEED), _history(updates), window=5, threshold=0.95
    )
    assert match is not None
    assert match.entry.uid == AGGREGATE_UID


def test_fresh_honest_contribution_is_not_a_replay(updates: dict[str, np.ndarray]) -> None:
    fresh = sketch(updates["fresh"], DIM, SEED)
    assert find_replay(fresh, _history(updates), window=5, threshold=0.95) is None


def test_same_window_entries_are_not_replays(updates: dict[str, np.ndarray]) -> None:
    candidate = sketch(updates["old"], DIM, SEED)
    assert find_replay(candidate, _history(updates), window=3, threshold=0.95) is None


def test_zero_contribution_never_matches(updates: dict[str, np.ndarray]) -> None:
    assert find_replay(np.zeros(DIM), _history(updates), window=5, threshold=0.0) is None


def test_history_keeps_only_the_newest_entries() -> None:
    entries = [SketchEntry(w, 1, (1.0,)) for w in range(5)]
    assert [e.window for e in remember(entries[:3], entries[3:], 4)] == [1, 2, 3, 4]
    assert [e.window for e in remember(entries[:1], entries[1:2], 4)] == [0, 1]
    assert remember(entries, [], 0) == []


def test_sketch_entry_round_trips_through_a_dict() -> None:
    entry = SketchEntry.of(2, AGGREGATE_UID, np.array([0.1, -2.5e-8]))
    assert SketchEntry.from_dict(entry.to_dict()) == entry


def test_sketch_of_a_concatenation_is_the_sum_of_offset_sketches() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(500)
    whole = sketch(np.concatenate([a, b]), 64, b"s")
    parts = sketch(a, 64, b"s") + sketch(b, 64, b"s", offset=300)
    np.testing.assert_allclose(parts, whole, atol=1e-9)
