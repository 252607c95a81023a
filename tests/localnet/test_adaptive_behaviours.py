"""The adaptive adversaries deviate exactly where they say they do."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gauntlet.compress.codec import build_codec
from gauntlet.config import GauntletConfig
from gauntlet.data import PageDataset
from gauntlet.localnet.adaptive import (
    Boost,
    Coast,
    Lazy,
    PageFit,
    PartTimer,
    Shrink,
    SignFlip,
    SleeperBoost,
    SpoilControl,
    Sybil,
    Thin,
    WeakControl,
)
from gauntlet.localnet.behaviours import BEHAVIOURS
from gauntlet.localnet.skim import Skim
from gauntlet.model import build_model, causal_lm_loss
from gauntlet.node.peers import Peer
from gauntlet.score.copies import explain
from gauntlet.train.evaluate import mean_loss
from gauntlet.train.inner import InnerSettings, snapshot, train_inner
from gauntlet.train.outer import applied, restore
from protocol.assignment import assign_pages
from protocol.schemas import DenseCodecParams, TopKCodecParams

PLAIN_RT = SimpleNamespace(config=GauntletConfig())
TST_RT = SimpleNamespace(
    config=GauntletConfig.model_validate(
        {"train": {"superposition_bag": 4, "superposition_until": 6}}
    )
)


def _delta(value: float = 1.0) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4, 4), value), "b": torch.full((4,), value)}


def test_every_adaptive_behaviour_is_registered() -> None:
    for cls in (
        Sybil, Shrink, Lazy, PartTimer, SignFlip, WeakControl, SpoilControl, Boost, SleeperBoost,
        Coast,
    ):  # fmt: skip
        assert BEHAVIOURS[cls.name] is cls


def test_lazy_trains_fewer_pages_than_it_declares() -> None:
    assert Lazy(trained=1).training_pages(PLAIN_RT, 3, [5, 6, 7, 8, 9]) == [5]  # type: ignore[arg-type]
    # in a superposition phase one page of compute covers `bag` pages (docs/tst.md)
    assert Lazy(trained=1).training_pages(TST_RT, 3, list(range(20))) == [0, 1, 2, 3]  # type: ignore[arg-type]
    assert Lazy(trained=1).training_pages(TST_RT, 6, list(range(20))) == [0]  # type: ignore[arg-type]


def test_shrink_scales_the_update() -> None:
    out = asyncio.run(Shrink(factor=0.5).update(None, 3, _delta()))  # type: ignore[arg-type]
    assert float(out["w"][0, 0]) == 0.5


def test_sign_flip_is_honest_first_then_flips() -> None:
    flip = SignFlip(honest_windows=2)
    signs = [float(asyncio.run(flip.update(None, w, _delta()))["b"][0]) for w in range(10, 14)]  # type: ignore[arg-type]
    assert signs == [1.0, 1.0, -1.0, -1.0]


def test_a_part_timer_uploads_noise_of_an_honest_norm_when_not_working() -> None:
    timer = PartTimer(period=4)
    delta = _delta(0.25)
    worked = asyncio.run(timer.update(None, 8, delta))  # type: ignore[arg-type]
    idle = asyncio.run(timer.update(None, 9, delta))  # type: ignore[arg-type]
    assert worked is delta
    assert not torch.equal(idle["w"], delta["w"])
    torch.testing.assert_close(idle["w"].norm(), delta["w"].norm())
    assert timer.training_pages(PLAIN_RT, 9, [1, 2, 3]) == [1]  # type: ignore[arg-type]


def _flat(delta: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in delta.values()])


def test_a_booster_adds_the_last_aggregate_just_under_what_a_replay_explains() -> None:
    """Its upload keeps the trained update's norm, and the last aggregate explains exactly
    the share it chose of it (R² by the replay check's own least squares), even when the
    trained update already leans toward the aggregate."""
    gen = torch.Generator().manual_seed(3)
    aggregate = {"w": torch.randn(32, 32, generator=gen), "b": torch.randn(32, generator=gen)}
    trained = {n: 0.3 * t + torch.randn(t.shape, generator=gen) for n, t in aggregate.items()}
    before = explain(_flat(trained).numpy(), _flat(aggregate).numpy()[None], max_sources=1)
    for share in (0.5, 0.75, 0.89):
        rt = SimpleNamespace(last_aggregate=aggregate)
        out = asyncio.run(Boost(share=share).update(rt, 5, trained))  # type: ignore[arg-type]
        torch.testing.assert_close(_flat(out).norm(), _flat(trained).norm())
        found = explain(_flat(out).numpy(), _flat(aggregate).numpy()[None], max_sources=1)
        assert abs(found.explained - share) < 1e-4, (share, found, before)
    assert before.explained < 0.2  # the aggregate part is the booster's, not the training's
    first = SimpleNamespace(last_aggregate=None)  # no outer step yet: nothing free to add
    assert asyncio.run(Boost().update(first, 0, trained)) is trained  # type: ignore[arg-type]


def test_a_booster_that_carries_nothing_sends_what_the_codec_keeps_and_drops_the_rest() -> None:
    """``carry=False``: the upload is the boosted update as the codec sends it alone, so the
    node's own encoding keeps it whole and carries nothing into the next window; the default
    booster's upload is dense, and the node carries what the codec leaves of it."""
    codec = build_codec(TopKCodecParams(chunk=4, topk=4, dct=False, quant="f32"))
    gen = torch.Generator().manual_seed(7)
    rt = SimpleNamespace(
        codec=codec, shapes={"w": (8, 8)}, last_aggregate={"w": torch.randn(8, 8, generator=gen)}
    )
    trained = {"w": torch.randn(8, 8, generator=gen)}
    fresh = asyncio.run(Boost(share=0.85, carry=False).update(rt, 3, trained))  # type: ignore[arg-type]
    carried = asyncio.run(Boost(share=0.85).update(rt, 3, trained))  # type: ignore[arg-type]
    assert int((fresh["w"] != 0).sum()) == 4 * 4  # four chunks of 4x4, four values kept each
    _, left = codec.encode(fresh, None)
    assert float(left["w"].abs().max()) < 1e-6  # the node carries nothing
    sent, left = codec.encode(carried, None)
    torch.testing.assert_close(codec.decode(sent, rt.shapes, "cpu")["w"], fresh["w"])
    torch.testing.assert_close(fresh["w"] + left["w"], carried["w"])  # the rest is carried
    assert float(left["w"].norm()) > 0.3 * float(carried["w"].norm())
    dense = SimpleNamespace(codec=build_codec(DenseCodecParams()), shapes={"w": (8, 8)},
                            last_aggregate=rt.last_aggregate)  # fmt: skip
    out = asyncio.run(Boost(share=0.85, carry=False).update(dense, 3, trained))  # type: ignore[arg-type]
    torch.testing.assert_close(out["w"], carried["w"])  # a dense codec keeps everything


def test_a_weak_control_keeps_its_update_buried_in_noise_of_a_set_size() -> None:
    weak = WeakControl(noise=3.0)
    delta = {"w": torch.randn(64, 64, generator=torch.Generator().manual_seed(1))}
    out = asyncio.run(weak.update(None, 4, delta))  # type: ignore[arg-type]
    buried = out["w"] - delta["w"]
    torch.testing.assert_close(buried.norm(), 3.0 * delta["w"].norm())
    cosine = float((out["w"] * delta["w"]).sum() / (out["w"].norm() * delta["w"].norm()))
    assert 0.2 < cosine < 0.45  # about 1 / sqrt(1 + 3²): still points the honest way, weakly
    assert weak.training_pages(PLAIN_RT, 4, [1, 2, 3]) == [1]  # type: ignore[arg-type]


def test_a_spoiler_raises_the_loss_on_its_partners_declared_pages(
    stdlib_dataset_dir: Path,
) -> None:
    """SpoilControl (scenarios/spoil-control.toml) keeps its honest update and adds a step
    up the loss of its partner's assigned pages (public), so that as the partner's control
    it predicts a loss rise there; the miner's own model is not touched."""
    config = GauntletConfig.model_validate({"train": {"seq_len": 64, "batch_size": 4}})
    dataset = PageDataset(stdlib_dataset_dir)
    model = build_model("tiny", 0)
    partner = Peer(7, "5Gpartner", None)

    async def miners(chain: object) -> tuple[None, list[Peer]]:
        return None, [Peer(3, "5Gother", None), partner]

    rt = SimpleNamespace(
        config=config, dataset=dataset, model=model, device=torch.device("cpu"),
        peers=SimpleNamespace(miners=miners), chain=None,
    )  # fmt: skip
    window = 5
    pages = assign_pages(
        netuid=config.chain.netuid, uid=7, hotkey="5Gpartner", window=window,
        dataset_id=dataset.dataset_id, num_pages=dataset.num_train_pages,
        pages_per_window=config.data.pages_per_window,
    )[:3]  # fmt: skip
    base = snapshot(model)
    own = dataset.batches([0, 1], seq_len=64, batch_size=4, seed=0)
    honest = train_inner(model, own, causal_lm_loss, InnerSettings(steps=4, lr=3e-3)).delta
    restore(model, base)
    spoiled = asyncio.run(
        SpoilControl("5Gpartner", pages=3, strength=0.5).update(rt, window, honest)
    )  # type: ignore[arg-type]
    for name, p in model.named_parameters():
        assert torch.equal(p, base[name])  # the gradient was taken on a copy
    added = sum(float((spoiled[n] - honest[n]).norm()) ** 2 for n in honest) ** 0.5
    norm = sum(float(t.norm()) ** 2 for t in honest.values()) ** 0.5
    assert abs(added - 0.5 * norm) < 1e-3 * norm

    def partner_loss(delta: dict[str, torch.Tensor]) -> float:
        batches = dataset.batches(pages, seq_len=64, batch_size=4, seed=window)
        with applied(model, delta, config.train.outer_lr, base):
            return mean_loss(model, batches, causal_lm_loss, max_batches=2)

    assert partner_loss(spoiled) > partner_loss(honest)
    # a missing partner leaves the update as it is
    alone = SpoilControl("5Gnobody")
    assert asyncio.run(alone.update(rt, window, honest)) is honest  # type: ignore[arg-type]


def test_a_coaster_works_full_windows_then_declares_and_trains_less_and_repeats() -> None:
    """Windows count from the first it sees: ``full_windows`` on every assigned page, then
    ``coast_windows`` on the first ``coast`` pages (declared as such, so its claim is true),
    then the cycle again; its updates are never touched (honest work, less of it). In a
    superposition phase a page of compute covers ``bag`` pages, as for every behaviour."""
    coaster = Coast(full_windows=2, coast=1, coast_windows=3)
    pages = [3, 4, 5]
    declared = [coaster.declared_pages(PLAIN_RT, w, pages) for w in range(10, 17)]  # type: ignore[arg-type]
    assert declared == [pages, pages, [3], [3], [3], pages, pages]
    assert coaster.training_pages(PLAIN_RT, 12, [3]) == [3]  # type: ignore[arg-type]
    delta = _delta()
    assert asyncio.run(coaster.update(PLAIN_RT, 12, delta)) is delta  # type: ignore[arg-type]
    in_phase = Coast(full_windows=1, coast=1, coast_windows=5)
    assert in_phase.declared_pages(TST_RT, 0, list(range(20))) == list(range(20))  # type: ignore[arg-type]
    assert in_phase.declared_pages(TST_RT, 1, list(range(20))) == [0, 1, 2, 3]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="full_windows"):
        Coast(coast=0)


def test_a_sleeper_mines_honestly_first_then_trains_less_and_boosts() -> None:
    """For its first ``honest_windows`` windows (from the first it sees) it trains every
    assigned page and uploads what it trained; from then on ``trained`` pages, boosted
    exactly like ``boost``, and it declares only the pages it trains (a lower budget)."""
    gen = torch.Generator().manual_seed(4)
    aggregate = {"w": torch.randn(16, 16, generator=gen), "b": torch.randn(16, generator=gen)}
    trained = {n: torch.randn(t.shape, generator=gen) for n, t in aggregate.items()}
    rt = SimpleNamespace(config=GauntletConfig(), last_aggregate=aggregate)
    sleeper = SleeperBoost(honest_windows=2, trained=1, share=0.8)
    for window in (7, 8):  # honest: all pages, the update as trained
        assert sleeper.declared_pages(rt, window, [3, 4, 5]) == [3, 4, 5]  # type: ignore[arg-type]
        assert sleeper.training_pages(rt, window, [3, 4, 5]) == [3, 4, 5]  # type: ignore[arg-type]
        assert asyncio.run(sleeper.update(rt, window, trained)) is trained  # type: ignore[arg-type]
    assert sleeper.declared_pages(rt, 9, [3, 4, 5]) == [3]  # type: ignore[arg-type]
    assert sleeper.training_pages(rt, 9, [3]) == [3]  # type: ignore[arg-type]
    boosted = asyncio.run(sleeper.update(rt, 9, trained))  # type: ignore[arg-type]
    plain = asyncio.run(Boost(share=0.8).update(rt, 9, trained))  # type: ignore[arg-type]
    for name in trained:
        torch.testing.assert_close(boosted[name], plain[name])
    with pytest.raises(ValueError, match="honest_windows"):
        SleeperBoost(trained=0)


def test_a_thin_miner_sends_its_largest_coefficients_and_carries_the_rest() -> None:
    """Each upload keeps at most a quarter of the codec's coefficients a chunk, its largest
    (of this window's update plus what it carried); what it sends and what it carries add
    up to all it trained, so over its uploads nothing is lost."""
    codec = build_codec(TopKCodecParams(chunk=4, topk=8, dct=False, quant="f32"))
    rt = SimpleNamespace(codec=codec, shapes={"w": (8, 8)})
    thin = Thin(factor=4)
    gen = torch.Generator().manual_seed(5)
    trained = [{"w": torch.randn(8, 8, generator=gen)} for _ in range(3)]
    sent_total = torch.zeros(8, 8)
    for window, delta in enumerate(trained):
        carried = thin.carry["w"].clone() if thin.carry else torch.zeros(8, 8)
        out = asyncio.run(thin.update(rt, window, delta))  # type: ignore[arg-type]
        whole = delta["w"] + carried
        for r in range(0, 8, 4):
            for c in range(0, 8, 4):
                block, kept = whole[r : r + 4, c : c + 4], out["w"][r : r + 4, c : c + 4]
                largest = block.abs().flatten().topk(2).indices.sort().values
                assert torch.equal(kept.flatten().nonzero().flatten(), largest)
        torch.testing.assert_close(out["w"] + thin.carry["w"], whole)
        sent_total += out["w"]
    torch.testing.assert_close(sent_total + thin.carry["w"], sum(d["w"] for d in trained))
    dense = SimpleNamespace(codec=build_codec(DenseCodecParams()), shapes={"w": (8, 8)})
    assert asyncio.run(Thin().update(dense, 0, trained[0])) is trained[0]  # type: ignore[arg-type]


def test_a_page_fit_miner_declares_its_pages_and_trains_each_several_times() -> None:
    """It declares ``trained`` pages of its stream and trains each ``repeat`` times in a
    row (its compute, ``trained * repeat`` pages); without noise it uploads what it
    trained, with noise the update buried like ``weak-control``'s."""
    rt = SimpleNamespace(config=GauntletConfig())
    fit = PageFit(repeat=3, trained=2)
    declared = fit.declared_pages(rt, 4, [7, 8, 9])  # type: ignore[arg-type]
    assert declared == [7, 8]
    assert fit.training_pages(rt, 4, declared) == [7, 7, 7, 8, 8, 8]  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(6)
    delta = {"w": torch.randn(16, 16, generator=gen)}
    assert asyncio.run(fit.update(rt, 4, delta)) is delta  # type: ignore[arg-type]
    buried = asyncio.run(PageFit(noise=2.0).update(rt, 4, delta))  # type: ignore[arg-type]
    noise = buried["w"] - delta["w"]
    assert float(noise.norm()) == pytest.approx(2.0 * float(delta["w"].norm()), rel=1e-5)
    with pytest.raises(ValueError, match="repeat"):
        PageFit(repeat=0)


def test_a_skimmer_trains_some_pages_and_steps_down_each_other_declared_page_once(
    stdlib_dataset_dir: Path,
) -> None:
    """Skim (scenarios/skim.toml) declares its whole budget, trains the first pages and adds
    one gradient step of each other declared page, as long as a trained page's share of the
    update: applied, the update lowers those pages' loss more than the trained part alone
    does; the miner's own model is not touched."""
    config = GauntletConfig.model_validate({"train": {"seq_len": 64, "batch_size": 4}})
    dataset = PageDataset(stdlib_dataset_dir)
    model = build_model("tiny", 0)
    rt = SimpleNamespace(config=config, dataset=dataset, model=model, device=torch.device("cpu"))
    skim, window, assigned = Skim(trained=2), 3, [4, 9, 17, 30]
    assert skim.declared_pages(rt, window, assigned) == assigned  # type: ignore[arg-type]
    assert skim.training_pages(rt, window, assigned) == [4, 9]  # type: ignore[arg-type]
    base = snapshot(model)
    own = dataset.batches([4, 9], seq_len=64, batch_size=4, seed=0)
    trained = train_inner(model, own, causal_lm_loss, InnerSettings(steps=4, lr=3e-3)).delta
    restore(model, base)
    skimmed = asyncio.run(skim.update(rt, window, trained))  # type: ignore[arg-type]
    for name, p in model.named_parameters():
        assert torch.equal(p, base[name])  # the gradients were taken on a copy
    added = {n: skimmed[n] - trained[n] for n in trained}
    norm = sum(float(t.norm()) ** 2 for t in trained.values()) ** 0.5
    steps = sum(float(t.norm()) ** 2 for t in added.values()) ** 0.5
    # two steps of a page's share (norm / 2) each: between one share (parallel: 2 shares)
    assert norm / 2 < steps <= norm * (1 + 1e-4)

    def loss_on(pages: list[int], delta: dict[str, torch.Tensor]) -> float:
        batches = dataset.batches(pages, seq_len=64, batch_size=4, seed=window)
        with applied(model, delta, config.train.outer_lr, base):
            return mean_loss(model, batches, causal_lm_loss, max_batches=2)

    assert loss_on([17, 30], skimmed) < loss_on([17, 30], trained)
    # the next window starts afresh: with nothing skimmed the update is left as it is
    assert asyncio.run(skim.update(rt, window + 1, trained)) is trained  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Skim(strength=0)
