"""An update is measured with no more alignment with the last aggregate than a limit, at its
own length, its part across the aggregate kept; the limit is the window's median, or its
score-weighted median where lower."""

from __future__ import annotations

import functools

import pytest
import torch

from gauntlet.train.novelty import (
    alignment,
    inner,
    limit_alignment,
    weighted_quantile,
    window_limit,
)


def _flat(delta: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in delta.values()])


def _random(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(16, 8, generator=gen), "b": torch.randn(8, generator=gen)}


def _across(delta: dict[str, torch.Tensor], direction: dict[str, torch.Tensor]) -> torch.Tensor:
    d, x = _flat(direction), _flat(delta)
    return x - (x @ d) / (d @ d) * d


def _copy(delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: t.clone() for n, t in delta.items()}


def test_the_alignment_is_lowered_to_the_limit_at_the_same_length_and_across_part() -> None:
    direction, own = _random(1), _random(2)
    sent = {n: own[n] + 3.0 * direction[n] for n in own}  # mostly the free direction
    assert alignment(sent, direction) > 0.9
    length = float(_flat(sent).norm())
    for limit in (0.0, 0.2, 0.5):
        left = limit_alignment(_copy(sent), direction, limit)
        assert alignment(left, direction) == pytest.approx(limit, abs=1e-5)
        assert float(_flat(left).norm()) == pytest.approx(length, rel=1e-5)
        a, b = _across(left, direction), _across(sent, direction)
        assert float(a @ b) / float(a.norm() * b.norm()) > 0.9999  # its own part's direction


def test_two_updates_that_differ_only_along_the_direction_are_measured_alike() -> None:
    """A booster (its trained update plus much of the last aggregate) is measured as its
    trained update of ordinary alignment would be at the same length."""
    direction, own = _random(3), _random(4)
    booster = {n: own[n] + 5.0 * direction[n] for n in own}
    plain = {n: own[n] * 2.0 + 1.5 * direction[n] for n in own}
    a = _flat(limit_alignment(booster, direction, 0.3))
    b = _flat(limit_alignment(plain, direction, 0.3))
    torch.testing.assert_close(a / a.norm(), b / b.norm())


def test_an_update_at_or_under_the_limit_is_measured_as_sent() -> None:
    direction, own = _random(5), _random(6)
    cosine = alignment(own, direction)
    kept = _copy(own)
    assert limit_alignment(own, direction, max(0.0, cosine) + 0.01) is own
    torch.testing.assert_close(_flat(own), _flat(kept))
    against = {n: -t for n, t in direction.items()}  # pointing away: no gain to take back
    away = {n: own[n] + 2.0 * against[n] for n in own}
    torch.testing.assert_close(_flat(limit_alignment(_copy(away), direction, 0.0)), _flat(away))


def test_no_direction_a_zero_one_or_a_zero_update_change_nothing() -> None:
    update = _random(7)
    kept = _copy(update)
    assert limit_alignment(update, None, 0.0) is update
    zero = {n: torch.zeros_like(t) for n, t in update.items()}
    torch.testing.assert_close(_flat(limit_alignment(update, zero, 0.0)), _flat(kept))
    nothing = {n: torch.zeros_like(t) for n, t in update.items()}
    torch.testing.assert_close(_flat(limit_alignment(nothing, _random(8), 0.0)), _flat(zero))
    assert alignment(update, None) == 0.0 and alignment(nothing, update) == 0.0


def test_an_update_that_is_only_the_direction_is_measured_as_no_step() -> None:
    """A free-rider's upload of the last aggregate has nothing of its own: scaled back to
    full length its float rounding would be measured as a random step."""
    direction = _random(9)
    replayed = {n: t * 0.37 for n, t in direction.items()}
    assert float(_flat(limit_alignment(replayed, direction, 0.2)).abs().max()) == 0.0


def test_a_limit_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError):
        limit_alignment(_random(1), _random(2), 1.5)


def test_the_alignment_does_not_depend_on_where_the_tensors_sit_in_memory() -> None:
    """Two validators with the same secret must measure bit-identical updates; a float32
    BLAS dot gave 4 different results for the same million numbers at 16 offsets."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1_000_003, generator=gen), torch.randn(1_000_003, generator=gen)
    seen = set()
    for offset in range(16):
        a = torch.empty(x.numel() + offset)[offset:].copy_(x)
        b = torch.empty(y.numel() + offset + 3)[offset + 3 :].copy_(y)
        seen.add(alignment({"w": a}, {"w": b}))
    assert len(seen) == 1


def test_the_weighted_median_counts_each_value_by_its_weight() -> None:
    weighted_median = functools.partial(weighted_quantile, quantile=0.5)
    values = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.9}
    assert weighted_median(values, dict.fromkeys(values, 1.0)) == pytest.approx(0.25)  # even
    assert weighted_median(values, {1: 1, 2: 1, 3: 1}) == pytest.approx(0.2)  # 4 counts 0
    assert weighted_median(values, {4: 5.0, 1: 1.0}) == pytest.approx(0.9)  # most weight
    assert weighted_median(values, {1: 3.0, 4: 1.0, 2: 1.0}) == pytest.approx(0.1)
    assert weighted_median(values, {}) is None
    assert weighted_median(values, {1: 0.0, 2: -1.0, 3: float("nan")}) is None
    # the order the values come in does not matter
    assert weighted_median(dict(reversed(values.items())), {1: 1, 2: 2, 3: 1}) == 0.2


def test_a_weighted_quantile_reaches_its_share_of_the_weight() -> None:
    values = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.9}
    equal = dict.fromkeys(values, 1.0)
    assert weighted_quantile(values, equal, 0.25) == pytest.approx(0.15)  # lands on 1 of 4
    assert weighted_quantile(values, equal, 0.3) == pytest.approx(0.2)
    assert weighted_quantile(values, equal, 0.75) == pytest.approx(0.6)
    assert weighted_quantile(values, {4: 3.0, 1: 1.0}, 0.25) == pytest.approx(0.5)
    assert weighted_quantile(values, {4: 3.0, 1: 1.0}, 0.2) == pytest.approx(0.1)
    assert weighted_quantile(values, {1: 0.0}, 0.25) is None
    for q in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="quantile"):
            weighted_quantile(values, equal, q)


def test_a_lower_quantile_takes_more_hotkeys_and_more_score_to_lift() -> None:
    """At the median eight boosters of twelve own the plain limit; at the lower quartile
    they would need three quarters of the hotkeys, and with scores three quarters of the
    score: sleepers holding 0.6 of it lift the median but not the quartile."""
    honest = {1: 0.30, 2: 0.40, 3: 0.45, 4: 0.50}
    boosters = {uid: 0.70 for uid in range(10, 18)}  # 8 of 12
    cosines = honest | boosters
    assert window_limit(cosines, {}) == pytest.approx(0.70)
    assert window_limit(cosines, {}, 0.25) == pytest.approx(0.475)  # 3 of 12: between two
    scores = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1} | {10: 0.3, 11: 0.3}  # boosters 0.6 of it
    assert window_limit(cosines, scores) == pytest.approx(0.70)
    assert window_limit(cosines, scores, 0.25) == pytest.approx(0.45)
    # a lower quantile never gives a higher limit
    for q in (0.1, 0.25, 0.4):
        assert window_limit(cosines, scores, q) <= window_limit(cosines, scores)


def test_many_unscored_hotkeys_cannot_raise_the_limit_above_what_scored_miners_carry() -> None:
    honest = {1: 0.30, 2: 0.40, 3: 0.45, 4: 0.50}
    boosters = {uid: 0.70 for uid in range(10, 18)}  # eight hotkeys, two thirds of the window
    cosines = honest | boosters
    scores = {1: 0.05, 2: 0.2, 3: 0.3, 4: 0.4} | dict.fromkeys(boosters, 0.001)
    assert window_limit(cosines, {}) == pytest.approx(0.70)  # the hotkeys' median: theirs
    assert window_limit(cosines, scores) == pytest.approx(0.45)  # by score: the honest one
    # and a limit never above the plain median: scores can only lower it
    assert window_limit(honest, {4: 1.0}) == pytest.approx(0.425)
    assert window_limit(honest, {1: 1.0}) == pytest.approx(0.30)
    assert window_limit({1: -0.2, 2: -0.1}, {1: 1.0}) == 0.0  # at least 0
    with pytest.raises(ValueError, match="at least one"):
        window_limit({}, {})


def test_inner_adds_the_per_tensor_sums_in_order_as_the_host_would() -> None:
    """⟨a, b⟩ keeps its sums on the tensors' device and reads them once; the result is
    the float64 sum of the per-tensor sums taken in order, bit for bit (validators compare
    their states by hash, so the measured updates must not change with the reading)."""
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        a = {
            f"p{i}": torch.randn(int(torch.randint(1, 300, (1,), generator=g)), generator=g)
            * 10 ** float(3 * torch.randn(1, generator=g))
            for i in range(6)
        }
        b = {name: torch.randn(t.shape, generator=g) for name, t in a.items()}
        by_host = 0.0
        for name, t in a.items():
            by_host += float((t * b[name]).sum(dtype=torch.float64))
        assert inner(a, b) == by_host
    assert inner({}, {}) == 0.0
