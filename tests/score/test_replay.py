"""Public count-sketches, the window-bounded history, and replays found against it."""

from __future__ import annotations

import numpy as np
import pytest

from gauntlet.score.config import REPLAY
from gauntlet.score.copies import Finding, find_copies
from gauntlet.score.replay import AGGREGATE_UID, SketchEntry, recent, sketch
from gauntlet.score.vectors import cosine

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


def _replay(candidate: np.ndarray, history: list[SketchEntry], window: int) -> Finding | None:
    """The finding for one contribution of ``window`` checked alone against ``history``."""
    found = find_copies({0: candidate}, {0: 0.0}, history, window, threshold=0.9, max_sources=8)
    return found.get(0)


def test_reupload_of_an_old_contribution_is_a_replay(updates: dict[str, np.ndarray]) -> None:
    noisy = updates["old"] + 0.05 * updates["fresh"]
    found = _replay(sketch(noisy, DIM, SEED), _history(updates), window=5)
    assert found is not None and found.outcome == REPLAY
    assert found.sources == ((3, 5),)


def test_reupload_of_the_previous_aggregate_is_a_replay(updates: dict[str, np.ndarray]) -> None:
    found = _replay(sketch(updates["aggregate"], DIM, SEED), _history(updates), window=5)
    assert found is not None and found.sources == ((4, AGGREGATE_UID),)


def test_a_sign_flipped_reupload_is_a_replay_too(updates: dict[str, np.ndarray]) -> None:
    found = _replay(-sketch(updates["old"], DIM, SEED), _history(updates), window=5)
    assert found is not None and found.sources == ((3, 5),)


def test_fresh_honest_contribution_is_not_a_replay(updates: dict[str, np.ndarray]) -> None:
    assert _replay(sketch(updates["fresh"], DIM, SEED), _history(updates), window=5) is None


def test_same_window_entries_are_not_replays(updates: dict[str, np.ndarray]) -> None:
    assert _replay(sketch(updates["old"], DIM, SEED), _history(updates), window=3) is None


def test_zero_contribution_never_matches(updates: dict[str, np.ndarray]) -> None:
    assert _replay(np.zeros(DIM), _history(updates), window=5) is None


def test_history_keeps_the_last_windows_however_many_entries_each_has() -> None:
    """Sized in windows, not entries: 100 miners in a window do not push out the last one."""
    busy = [SketchEntry(3, uid, (1.0,)) for uid in range(100)]
    older = [SketchEntry(w, 1, (1.0,)) for w in range(3)]
    kept = recent(older, busy, window=3, windows=2)
    assert {e.window for e in kept} == {2, 3} and len(kept) == 101
    assert [e.window for e in recent(older, [], window=2, windows=16)] == [0, 1, 2]
    assert recent(older, busy, window=3, windows=0) == []


def test_sketch_entry_round_trips_through_a_dict() -> None:
    entry = SketchEntry.of(2, AGGREGATE_UID, np.array([0.1, -2.5e-8]))
    assert SketchEntry.from_dict(entry.to_dict()) == entry


def test_sketch_of_a_concatenation_is_the_sum_of_offset_sketches() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(500)
    whole = sketch(np.concatenate([a, b]), 64, b"s")
    parts = sketch(a, 64, b"s") + sketch(b, 64, b"s", offset=300)
    np.testing.assert_allclose(parts, whole, atol=1e-9)
