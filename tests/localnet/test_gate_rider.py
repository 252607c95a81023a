"""The gate-rider behaviour (scenarios/gate-rider.toml): honest first, then the strongest
ascent on general data that its own copy of the lead's member check passes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gauntlet.config import GauntletConfig
from gauntlet.data import PageDataset
from gauntlet.localnet.adaptive import gradient_on
from gauntlet.localnet.gate_rider import GateRider, _across, _losses
from gauntlet.model import build_model, causal_lm_loss
from gauntlet.node.checks import delta_norm
from gauntlet.train.inner import InnerSettings, snapshot, train_inner
from gauntlet.train.novelty import inner
from gauntlet.train.outer import restore


def test_its_check_is_the_member_check_with_a_margin() -> None:
    rider = GateRider(margin=0.5)
    assert rider._passes(0.10, 0.04)  # loses under half of what its own pages gain
    assert not rider._passes(0.10, 0.06)
    assert not rider._passes(-0.01, -0.05)  # its own pages must gain, whatever the rest does
    assert GateRider(margin=0.0)._passes(0.10, 0.099)  # no margin: the lead's rule itself
    with pytest.raises(ValueError, match="margin"):
        GateRider(margin=1.0)


def test_the_ascent_has_no_component_along_the_own_pages_gradient() -> None:
    own = {"w": torch.randn(8, 8), "b": torch.randn(8)}
    harm = {"w": torch.randn(8, 8), "b": torch.randn(8)}
    across = _across(harm, own)
    assert abs(inner(across, own)) < 1e-4 * delta_norm(harm) * delta_norm(own)
    assert delta_norm(across) > 0


PAGES = [0, 1]  # the tiny miner's own pages


def _tiny_miner(dataset_dir: Path) -> tuple[SimpleNamespace, dict[str, torch.Tensor]]:
    """A miner's runtime on the tiny model at θ_w (its model restored after training) and
    the honest update of 8 steps on :data:`PAGES`."""
    config = GauntletConfig.model_validate({"train": {"seq_len": 64, "batch_size": 4}})
    dataset = PageDataset(dataset_dir)
    model = build_model("tiny", 0)
    base = snapshot(model)
    own = dataset.batches(PAGES, seq_len=64, batch_size=4, seed=0)
    honest = train_inner(model, own, causal_lm_loss, InnerSettings(steps=8, lr=3e-3)).delta
    restore(model, base)
    rt = SimpleNamespace(
        config=config, dataset=dataset, model=model, device=torch.device("cpu"), hotkey="5Grider"
    )
    return rt, honest


def test_honest_first_then_an_ascent_of_the_honest_norm_that_its_check_passes(
    stdlib_dataset_dir: Path,
) -> None:
    rt, honest = _tiny_miner(stdlib_dataset_dir)
    model, pages = rt.model, PAGES
    base = snapshot(model)

    rider = GateRider(honest_windows=1, margin=0.0)
    assert rider.training_pages(rt, 0, pages) == pages  # type: ignore[arg-type]
    assert asyncio.run(rider.update(rt, 0, honest)) is honest  # type: ignore[arg-type]
    ridden = asyncio.run(rider.update(rt, 1, honest))  # type: ignore[arg-type]
    for name, p in model.named_parameters():
        assert torch.equal(p, base[name])  # measured and differentiated on copies
    assert ridden is not honest  # early in training some ascent passes
    assert abs(delta_norm(ridden) - delta_norm(honest)) < 1e-4 * delta_norm(honest)
    probe = [5, 6, 7, 8]  # the model is θ_w again, as the rider measured it
    before = (_losses(rt, model, pages, 1), _losses(rt, model, probe, 1))  # type: ignore[arg-type]
    gain, _ = rider._check(rt, model, 1, ridden, probe, before)  # type: ignore[arg-type]
    assert gain > 0  # what the lead's first condition needs


def test_an_ascent_as_long_as_the_update_costs_its_own_pages_too(
    stdlib_dataset_dir: Path,
) -> None:
    """What bounds the ride (docs/runs.md, "Gate-rider run"): an ascent on general data,
    with its component along the own pages' gradient removed, still raises the loss on the
    own pages, so at the update's own length the first condition of the check fails."""
    rt, honest = _tiny_miner(stdlib_dataset_dir)
    model, pages, far = rt.model, PAGES, [40, 41]
    harm = _across(gradient_on(rt, far, 1), gradient_on(rt, pages, 1))  # type: ignore[arg-type]
    step = delta_norm(honest) / delta_norm(harm)
    ridden = {name: t - step * harm[name] for name, t in honest.items()}

    rider = GateRider(margin=0.0)
    rider.pages = pages
    before = (_losses(rt, model, pages, 1), _losses(rt, model, far, 1))  # type: ignore[arg-type]
    honest_gain, _ = rider._check(rt, model, 1, honest, far, before)  # type: ignore[arg-type]
    ridden_gain, ridden_loss = rider._check(rt, model, 1, ridden, far, before)  # type: ignore[arg-type]
    assert honest_gain > 0 and ridden_loss > 0  # the ascent does raise the far pages' loss
    assert ridden_gain < 0 and not rider._passes(ridden_gain, ridden_loss)
