"""Same-window copy detection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gauntlet.score.copies import (
    DuplicatePair,
    copiers,
    cosine,
    index_overlap,
    near_duplicate_pairs,
)


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


def test_index_overlap_is_jaccard() -> None:
    assert index_overlap([1, 2, 3], [2, 3, 4]) == pytest.approx(0.5)
    assert index_overlap([], []) == 0.0


def test_near_duplicate_pairs_finds_only_pairs_above_threshold() -> None:
    vectors = {3: [1.0, 0.0, 0.0], 1: [0.99, 0.01, 0.0], 2: [0.0, 1.0, 0.0], 4: [0.0, 0.0, 0.0]}
    pairs = near_duplicate_pairs(vectors, threshold=0.95)
    assert [(p.first, p.second) for p in pairs] == [(1, 3)]
    assert pairs[0].similarity > 0.99


def test_no_or_one_contribution_has_no_pairs() -> None:
    assert near_duplicate_pairs({}, 0.9) == []
    assert near_duplicate_pairs({7: [1.0, 2.0]}, 0.9) == []


def test_copy_detection_penalises_the_later_uploader_only() -> None:
    pairs = [DuplicatePair(1, 3, 0.99)]
    assert copiers(pairs, {1: 120.0, 3: 100.0, 2: 50.0}) == {1}
    assert copiers(pairs, {1: 100.0, 3: 120.0}) == {3}


def test_equal_upload_times_penalise_the_higher_uid() -> None:
    assert copiers([DuplicatePair(1, 3, 1.0)], {1: 100.0, 3: 100.0}) == {3}


def test_a_chain_of_copies_spares_only_the_original() -> None:
    vectors = {1: [1.0, 1.0], 2: [1.0, 1.0], 3: [1.0, 1.0]}
    pairs = near_duplicate_pairs(vectors, 0.95)
    assert copiers(pairs, {1: 30.0, 2: 10.0, 3: 20.0}) == {1, 3}
