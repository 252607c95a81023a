"""The validator measures each update with no more alignment with the last aggregate (free
to every miner) than the median of the window's measured updates, at its own length and
the aggregate's scale (docs/scoring.md, "What is new")."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gauntlet.compress.codec import DenseCodec
from gauntlet.config import GauntletConfig
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.validator import Validator
from gauntlet.train.novelty import alignment
from protocol.container import Limits

SHAPES = {"w": (24, 16), "b": (16,)}


def _random(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) for name, shape in SHAPES.items()}


def _flat(delta: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in delta.values()])


def _validator(last_aggregate, measure_novel: bool = True) -> Validator:  # type: ignore[no-untyped-def]
    config = GauntletConfig.model_validate({"validator": {"measure_novel": measure_novel}})
    decoder = Decoder(1, Limits(max_bytes=1 << 22), DenseCodec(), SHAPES, "cpu")
    rt = SimpleNamespace(config=config, decoder=decoder, last_aggregate=last_aggregate)
    return Validator(rt=rt, files=None, secret=b"s", state=None, observer=None)  # type: ignore[arg-type]


def _sent(uid: int, delta: dict[str, torch.Tensor]) -> Contribution:
    return Contribution(uid, f"hk{uid}", "ok", tensors=DenseCodec().encode(delta)[0])


def test_the_window_limit_is_the_median_alignment_and_only_updates_above_it_are_lowered() -> None:
    aggregate = _random(1)
    honest = {
        uid: {n: t + 0.3 * aggregate[n] for n, t in _random(10 + uid).items()} for uid in (1, 2, 3)
    }
    booster = {n: t + 4.0 * aggregate[n] for n, t in _random(20).items()}
    sent = {uid: _sent(uid, d) for uid, d in (honest | {4: booster}).items()}
    validator = _validator(aggregate)
    limits = validator.alignment_limits(7, list(sent.values()))
    cosines = sorted(alignment(d, aggregate) for d in (honest | {4: booster}).values())
    median = (cosines[1] + cosines[2]) / 2  # the median of four
    assert 4 in limits and limits[4] == pytest.approx(median)
    assert set(limits.values()) == {limits[4]} and len(limits) == 2  # the upper half
    assert 0 < median < 0.5 < alignment(booster, aggregate)
    aggregate_flat = {"all": _flat(aggregate)}
    for uid, delta in honest.items():
        got = _flat(validator.scaled_update(sent[uid], 0.5, limits.get(uid)))
        if alignment(delta, aggregate) <= median:  # at or under the median: as sent
            assert uid not in limits
            torch.testing.assert_close(got, 0.5 * _flat(delta))
        else:
            assert alignment({"all": got}, aggregate_flat) == pytest.approx(median, abs=1e-4)
    got = validator.scaled_update(sent[4], 0.5, limits[4])
    assert alignment(got, aggregate) == pytest.approx(median, abs=1e-4)
    torch.testing.assert_close(_flat(got).norm(), 0.5 * _flat(booster).norm())


def test_switched_off_or_before_any_outer_step_there_is_no_limit() -> None:
    aggregate, trained = _random(3), _random(4)
    boosted = {n: trained[n] + 4.0 * aggregate[n] for n in trained}
    for validator in (_validator(aggregate, measure_novel=False), _validator(None)):
        assert validator.alignment_limits(7, [_sent(1, boosted), _sent(2, trained)]) == {}
        got = _flat(validator.scaled_update(_sent(1, boosted), 2.0, None))
        torch.testing.assert_close(got, 2.0 * _flat(boosted))
