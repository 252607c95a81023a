"""The own-page advantage's control: only updates of comparable strength, each scaled to the
measured miner's strength (gauntlet.score.control)."""

from __future__ import annotations

import pytest

from gauntlet.score.control import (
    MAX_STRENGTH_RATIO,
    MIN_STRENGTH_RATIO,
    batch_shares,
    scaled_control,
    strength_ratio,
    strong_controls,
)


def test_weak_or_harmful_updates_never_serve_as_controls() -> None:
    gains = {1: 0.10, 2: 0.12, 3: 0.09, 4: 0.02, 5: -0.03, 6: 0.0}  # 4: stale, 5: noise
    assert strong_controls(gains) == [1, 2, 3]
    assert strong_controls({1: -0.1, 2: 0.0}) == []


def test_sybils_with_weak_updates_cannot_become_a_partners_controls() -> None:
    """Weak helpful sybils (a fifth of an honest update's gain) stay out while they are a
    minority of the evaluated updates; as a majority they would pull the median down to
    their strength and qualify, and then the strength scaling (next test) multiplies their
    effect to the measured update's strength (up to MAX_STRENGTH_RATIO times), so a partner
    compared with them gains nothing from their weakness unless they are weaker still."""
    honest = {uid: 0.1 for uid in range(4)}
    sybils = {10 + i: 0.02 for i in range(3)}
    assert strong_controls(honest | sybils) == [0, 1, 2, 3]
    many = {10 + i: 0.02 for i in range(6)}
    assert strong_controls(honest | many) == sorted(honest | many)


def _every_batch(*controls: tuple[list[float], float]) -> list[list[tuple[float, float]]]:
    """Per batch, every control's (loss on it, gain): each control measured on all batches."""
    n = len(controls[0][0])
    return [[(losses[j], gain) for losses, gain in controls] for j in range(n)]


def test_a_control_is_scaled_to_the_strength_of_the_measured_update() -> None:
    before = [3.0, 3.2]
    weak = ([2.9, 3.1], 0.05)  # improves each batch by 0.1; helped random pages by 0.05
    # An update that helps the random pages 4 times as much is predicted to improve its own
    # pages sqrt(4) = 2 times as much as this control did: 0.2 per batch.
    assert scaled_control(before, _every_batch(weak), 0.20) == pytest.approx([2.8, 3.0])
    # Of equal strength: the control's own effect, 0.1.
    assert scaled_control(before, _every_batch(weak), 0.05) == pytest.approx([2.9, 3.1])
    # Two controls on the same batch average: sqrt(0.15/0.05) * 0.1 and 1 * 0.3.
    strong = ([2.7, 2.9], 0.15)
    expected = (3**0.5 * 0.1 + 0.3) / 2
    assert scaled_control(before, _every_batch(weak, strong), 0.15) == pytest.approx(
        [3.0 - expected, 3.2 - expected]
    )
    # Shared out (one control per batch), each batch is predicted by its own control.
    shared = [[(2.9, 0.05)], [(2.9, 0.15)]]
    assert scaled_control(before, shared, 0.15) == pytest.approx([3.0 - 3**0.5 * 0.1, 2.9])
    # An update that did not help the random pages (a noisy gain late in training, or
    # noise) is still predicted half a control's effect.
    floor = 0.1 * MIN_STRENGTH_RATIO
    assert scaled_control(before, _every_batch(weak), -0.02) == pytest.approx(
        [3.0 - floor, 3.2 - floor]
    )
    capped = scaled_control(before, _every_batch(weak), 10.0)
    assert capped == pytest.approx([3.0 - 0.1 * MAX_STRENGTH_RATIO, 3.2 - 0.1 * MAX_STRENGTH_RATIO])
    with pytest.raises(ValueError):
        scaled_control(before, [], 0.1)
    with pytest.raises(ValueError):
        scaled_control(before, [[(2.9, 0.05)], []], 0.1)  # a batch without a control


def test_the_strength_ratio_is_the_clamped_square_root_of_the_gain_ratio() -> None:
    assert strength_ratio(0.2, 0.05) == pytest.approx(2.0)
    assert strength_ratio(0.05, 0.05) == pytest.approx(1.0)
    assert strength_ratio(10.0, 0.05) == MAX_STRENGTH_RATIO
    assert strength_ratio(0.001, 0.05) == MIN_STRENGTH_RATIO
    assert strength_ratio(-0.02, 0.05) == MIN_STRENGTH_RATIO  # did not help: the floor


def test_the_own_batches_are_shared_out_among_the_controls() -> None:
    """One pass over the own batches in all, whatever the number of controls: batch j goes
    to control j mod K, every batch has exactly one, each control's share differs by at
    most one batch, and no more controls take part than there are batches."""
    assert batch_shares(8, [5, 2, 9, 4]) == {5: [0, 4], 2: [1, 5], 9: [2, 6], 4: [3, 7]}
    assert batch_shares(8, [5, 2, 9]) == {5: [0, 3, 6], 2: [1, 4, 7], 9: [2, 5]}
    assert batch_shares(2, [5, 2, 9, 4]) == {5: [0], 2: [1]}
    assert batch_shares(4, [7]) == {7: [0, 1, 2, 3]}
    assert batch_shares(4, []) == {} and batch_shares(0, [1, 2]) == {}
    for n in range(1, 9):
        for k in range(1, 6):
            shares = batch_shares(n, list(range(10, 10 + k)))
            covered = sorted(j for idx in shares.values() for j in idx)
            assert covered == list(range(n))
            sizes = [len(idx) for idx in shares.values()]
            assert len(shares) == min(n, k) and max(sizes) - min(sizes) <= 1
