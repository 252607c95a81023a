"""The moving average, with hand-computed expectations."""

from __future__ import annotations

import pytest

from gauntlet.score.average import moving_average


def test_moving_average_seeds_with_first_value_then_blends() -> None:
    assert moving_average(None, 2.0, 0.5) == 2.0
    assert moving_average(2.0, 4.0, 0.25) == pytest.approx(2.5)
    assert moving_average(2.0, 4.0, 1.0) == 4.0


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_moving_average_rejects_alphas_outside_zero_one(alpha: float) -> None:
    with pytest.raises(ValueError):
        moving_average(1.0, 1.0, alpha)
