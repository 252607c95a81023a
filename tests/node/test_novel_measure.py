"""The validator measures each update with no more alignment with the last aggregate (free
to every miner) than the median of the window's measured updates, at its own length and
the aggregate's scale (docs/scoring.md, "What is new"), or than their median weighted by
what the validator pays them (its weights) where that is lower."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gauntlet.compress.codec import DenseCodec
from gauntlet.config import GauntletConfig
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.validator import Validator
from gauntlet.score.state import PeerState, ValidatorScores
from gauntlet.train.novelty import alignment
from protocol.container import Limits

SHAPES = {"w": (24, 16), "b": (16,)}


def _random(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) for name, shape in SHAPES.items()}


def _flat(delta: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in delta.values()])


def _validator(  # type: ignore[no-untyped-def]
    last_aggregate,
    measure_novel: bool = True,
    scores: dict[str, float] | None = None,
    quantile: float = 0.5,
) -> Validator:
    """``scores``: "hk<uid>" -> the score the validator's state holds for that miner."""
    config = GauntletConfig.model_validate(
        {"validator": {"measure_novel": measure_novel, "novel_quantile": quantile}}
    )
    decoder = Decoder(1, Limits(max_bytes=1 << 22), DenseCodec(), SHAPES, "cpu")
    rt = SimpleNamespace(config=config, decoder=decoder, last_aggregate=last_aggregate)
    peers = {
        int(hotkey[2:]): PeerState(hotkey=hotkey, score=score)
        for hotkey, score in (scores or {}).items()
    }
    state = ValidatorScores(peers=peers)
    return Validator(rt=rt, files=None, secret=b"s", state=state, observer=None)  # type: ignore[arg-type]


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


def test_the_configured_quantile_sets_the_limit() -> None:
    """``validator.novel_quantile`` 0.25 of four alignments lies between the lowest two:
    three of the four updates are lowered to it, against two at the median."""
    aggregate = _random(1)
    deltas = {
        uid: {n: t + weight * aggregate[n] for n, t in _random(30 + uid).items()}
        for uid, weight in {1: 0.1, 2: 0.5, 3: 1.0, 4: 2.0}.items()
    }
    sent = [_sent(uid, d) for uid, d in deltas.items()]
    cosines = sorted(alignment(d, aggregate) for d in deltas.values())
    at_median = _validator(aggregate).alignment_limits(7, sent)
    at_quartile = _validator(aggregate, quantile=0.25).alignment_limits(7, sent)
    assert set(at_median) == {3, 4} and set(at_quartile) == {2, 3, 4}
    assert at_quartile[4] == pytest.approx((cosines[0] + cosines[1]) / 2)
    assert at_median[4] == pytest.approx((cosines[1] + cosines[2]) / 2)


def test_switched_off_or_before_any_outer_step_there_is_no_limit() -> None:
    aggregate, trained = _random(3), _random(4)
    boosted = {n: trained[n] + 4.0 * aggregate[n] for n in trained}
    for validator in (_validator(aggregate, measure_novel=False), _validator(None)):
        assert validator.alignment_limits(7, [_sent(1, boosted), _sent(2, trained)]) == {}
        got = _flat(validator.scaled_update(_sent(1, boosted), 2.0, None))
        torch.testing.assert_close(got, 2.0 * _flat(boosted))


def test_boosters_that_are_most_hotkeys_but_little_score_are_still_lowered() -> None:
    aggregate = _random(1)
    honest = {  # established miners: more pages, more along the aggregate
        uid: {n: t + 0.3 * uid * aggregate[n] for n, t in _random(10 + uid).items()}
        for uid in (1, 2, 3, 4)
    }
    boosters = {
        uid: {n: t + 4.0 * aggregate[n] for n, t in _random(20 + uid).items()}
        for uid in range(5, 13)  # eight hotkeys: two thirds of the window
    }
    sent = [_sent(uid, d) for uid, d in (honest | boosters).items()]
    cosines = {uid: alignment(d, aggregate) for uid, d in (honest | boosters).items()}
    assert min(cosines[b] for b in boosters) > max(cosines[h] for h in honest)
    ordered = [cosines[h] for h in sorted(honest)]
    assert ordered == sorted(ordered)  # the honest alignments rise with uid (and score)

    # A new network (no scores): hotkeys count, the median is a booster's, so no booster is
    # lowered below the least aligned booster's own alignment.
    unscored = _validator(aggregate).alignment_limits(7, sent)
    assert min(unscored.values()) >= min(cosines[b] for b in boosters)
    scores = {"hk1": 0.1, "hk2": 0.2, "hk3": 0.3, "hk4": 0.4} | {f"hk{b}": 0.01 for b in boosters}
    limits = _validator(aggregate, scores=scores).alignment_limits(7, sent)
    assert set(limits) == set(boosters)  # every booster, no honest one
    # by pay (the scores squared: 0.01, 0.04, 0.09, 0.16 and 0.0001 per booster), uid 4
    # holds the middle (it takes the sum from 0.14 to 0.30 of 0.3008): its alignment is
    # the limit
    assert all(limit == pytest.approx(ordered[3]) for limit in limits.values())
    # a uid now held by another hotkey keeps no score: the same boosters are not lowered
    renamed = {f"hk{uid + 100}": score for uid, score in enumerate(scores.values(), start=1)}
    assert _validator(aggregate, scores=renamed).alignment_limits(7, sent) == unscored


def test_boosters_need_half_the_pay_not_half_the_summed_score_to_lift_the_limit() -> None:
    """Splitting a score across hotkeys keeps its sum and shrinks its pay (weights are
    scores squared, normalised): eight boosters of 0.25 hold more of the summed score than
    four honest miners of 0.4 (2.0 against 1.6) but less of the pay (0.5 against 0.64), so
    the limit stays an honest alignment. Paid more than the honest miners, they lift it."""
    aggregate = _random(2)
    honest = {
        uid: {n: t + 0.3 * uid * aggregate[n] for n, t in _random(30 + uid).items()}
        for uid in (1, 2, 3, 4)
    }
    boosters = {
        uid: {n: t + 4.0 * aggregate[n] for n, t in _random(40 + uid).items()}
        for uid in range(5, 13)
    }
    sent = [_sent(uid, d) for uid, d in (honest | boosters).items()]
    cosines = {uid: alignment(d, aggregate) for uid, d in (honest | boosters).items()}
    honest_top = max(cosines[h] for h in honest)
    assert min(cosines[b] for b in boosters) > honest_top

    split = {f"hk{h}": 0.4 for h in honest} | {f"hk{b}": 0.25 for b in boosters}
    limits = _validator(aggregate, scores=split).alignment_limits(7, sent)
    assert set(limits) == set(boosters)
    assert all(limit == pytest.approx(honest_top) for limit in limits.values())

    paid_more = split | {f"hk{b}": 0.3 for b in boosters}  # 8 x 0.09 = 0.72 > 0.64
    lifted = _validator(aggregate, scores=paid_more).alignment_limits(7, sent)
    # the limit is a cosine read from a payload: the decoded one's within float rounding
    assert min(lifted.values()) >= min(cosines[b] for b in boosters) - 1e-7


def test_cosines_are_read_from_the_payloads_without_decoding_an_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window's cosines with the last aggregate come from each payload's kept
    coefficients and norm (the default top-k codec, a padded matrix among the shapes):
    what the decoded updates give, within float rounding, and no update is decoded."""
    from gauntlet.compress.codec import build_codec
    from gauntlet.node import measured_update as measured_module

    shapes = {"w": (40, 24), "b": (24,)}
    codec = build_codec(GauntletConfig().compress.codec_params())
    decoder = Decoder(1, Limits(max_bytes=1 << 22), codec, shapes, "cpu")
    g = torch.Generator().manual_seed(5)
    last = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    updates = {
        uid: {n: torch.randn(s, generator=g) + 0.5 * uid * last[n] for n, s in shapes.items()}
        for uid in (1, 2, 3)
    }
    sent = [
        Contribution(uid, f"hk{uid}", "ok", tensors=codec.encode(d)[0])
        for uid, d in updates.items()
    ]
    decoded = {c.uid: codec.decode(c.tensors, shapes) for c in sent}  # type: ignore[arg-type]
    monkeypatch.setattr(codec, "decode", lambda *a, **k: pytest.fail("an update was decoded"))
    cosines = measured_module.update_cosines(sent, decoder, last)
    for uid, cosine in cosines.items():
        assert cosine == pytest.approx(alignment(decoded[uid], last), abs=1e-6)
    assert cosines[1] < cosines[2] < cosines[3]


def test_with_measure_thin_every_update_is_measured_thinned_alike_at_its_own_norm() -> None:
    """validator.measure_thin 2: an update is measured as its largest half of the codec's
    coefficients a chunk, at its sent norm, so one sent already thinned (the thin attack)
    measures exactly as the same update sent whole; 1 (the default) measures as sent."""
    from gauntlet.compress.codec import build_codec
    from gauntlet.compress.thin import thinned
    from protocol.schemas import TopKCodecParams

    codec = build_codec(TopKCodecParams(chunk=4, topk=8, dct=False, quant="f32"))
    shapes = {"w": (8, 8)}
    trained = {"w": torch.randn(8, 8, generator=torch.Generator().manual_seed(9))}
    thin = thinned(codec, trained, shapes, 2)
    assert thin is not None

    def measured(delta: dict[str, torch.Tensor], factor: int) -> torch.Tensor:
        config = GauntletConfig.model_validate({"validator": {"measure_thin": factor}})
        decoder = Decoder(1, Limits(max_bytes=1 << 22), codec, shapes, "cpu")
        rt = SimpleNamespace(config=config, decoder=decoder, last_aggregate=None)
        validator = Validator(
            rt=rt, files=None, secret=b"s", state=ValidatorScores(), observer=None
        )  # type: ignore[arg-type]
        sent = Contribution(1, "hk1", "ok", tensors=codec.encode(delta)[0])
        return validator.scaled_update(sent, 0.5, None)["w"]

    whole, already = measured(trained, 2), measured(thin, 2)
    sent = codec.decode(codec.encode(trained)[0], shapes)["w"]  # what the codec kept of it
    torch.testing.assert_close(whole.norm(), 0.5 * sent.norm())  # its own norm, scaled
    assert int((whole != 0).sum()) == 4 * 4  # four of each 4 x 4 chunk's 16 entries, of 8 kept
    # thinned by the validator or by the miner: the same direction
    torch.testing.assert_close(whole / whole.norm(), already / already.norm())
    torch.testing.assert_close(measured(trained, 1), 0.5 * sent)  # as sent


@pytest.mark.parametrize(("own", "random", "member"), [(1.0, 1.0, False), (0.5, 0.5, False),
                                                        (1.0, 0.5, False), (0.5, 0.5, True)])  # fmt: skip
def test_evaluation_measures_at_the_steps_asked_for_and_the_member_check_at_the_aggregates(
    monkeypatch: pytest.MonkeyPatch, own: float, random: float, member: bool
) -> None:
    """validator.own_step scales what the own pages (and controls) see, validator.random_step
    what the random pages see, both as fractions of the aggregate's scale; the lead's member
    check keeps that scale whatever they are."""
    from gauntlet.node import validator as validator_module

    config = GauntletConfig.model_validate(
        {"validator": {"own_step": own, "random_step": random, "measure_novel": False}}
    )
    decoder = Decoder(1, Limits(max_bytes=1 << 22), DenseCodec(), SHAPES, "cpu")
    rt = SimpleNamespace(config=config, decoder=decoder, last_aggregate=None)
    validator = Validator(rt=rt, files=None, secret=b"s", state=ValidatorScores(), observer=None)  # type: ignore[arg-type]
    seen: dict[str, object] = {}

    def evaluate_peers(rt, window, secret, updates, **kwargs):  # type: ignore[no-untyped-def]
        seen["updates"], seen["kwargs"] = updates, kwargs
        return {}

    monkeypatch.setattr(validator_module, "evaluate_peers", evaluate_peers)
    delta = _random(3)
    sent = _sent(3, delta)
    sent = Contribution(
        3, "hk3", "ok", tensors=sent.tensors, manifest=SimpleNamespace(page_ids=[5])
    )  # type: ignore[arg-type]
    validator.measure(7, [sent], {3: 0.25}, [3], member_check=member)
    _, update = seen["updates"][3]  # type: ignore[index]
    applied = update()
    step = 1.0 if member else own
    for name, t in delta.items():
        torch.testing.assert_close(applied[name], 0.25 * step * t)
    assert seen["kwargs"]["random_step"] == pytest.approx(1.0 if member else random / own)  # type: ignore[index]
