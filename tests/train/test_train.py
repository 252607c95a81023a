"""Inner loop, pseudo-gradient, outer step and fingerprints on the tiny model."""

from __future__ import annotations

import torch

from gauntlet.model import build_model, causal_lm_loss
from gauntlet.train.evaluate import mean_loss
from gauntlet.train.fingerprint import coordinates, fingerprint, max_abs_difference
from gauntlet.train.inner import InnerSettings, TrainingStopped, snapshot, train_inner
from gauntlet.train.outer import applied, apply_delta


def _batch(seed: int, batch: int = 4, length: int = 33) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # A learnable pattern: repeating short byte sequences.
    base = torch.randint(0, 16, (batch, 8), generator=gen)
    return base.repeat(1, length // 8 + 1)[:, :length]


def test_inner_loop_lowers_loss_and_delta_is_start_minus_end() -> None:
    model = build_model("tiny", seed=0)
    start = snapshot(model)
    result = train_inner(model, [_batch(1)], causal_lm_loss, InnerSettings(steps=15, lr=3e-3))
    assert result.losses[-1] < result.losses[0]
    assert result.tokens == 15 * 4 * 32
    for name, p in model.named_parameters():
        torch.testing.assert_close(result.delta[name], start[name] - p.detach())


def test_applying_the_delta_to_the_start_reproduces_the_trained_model() -> None:
    model = build_model("tiny", seed=0)
    result = train_inner(model, [_batch(2)], causal_lm_loss, InnerSettings(steps=5, lr=1e-3))
    trained = snapshot(model)
    fresh = build_model("tiny", seed=0)
    apply_delta(fresh, result.delta, lr=1.0)
    for name, p in fresh.named_parameters():
        torch.testing.assert_close(p.detach(), trained[name], atol=1e-6, rtol=0)


def test_applied_restores_the_base_model_exactly() -> None:
    model = build_model("tiny", seed=3)
    base = snapshot(model)
    delta = {name: torch.randn_like(p) for name, p in model.named_parameters()}
    batch = _batch(4)
    before = mean_loss(model, [batch], causal_lm_loss, max_batches=1)
    with applied(model, delta, 0.5, base):
        changed = mean_loss(model, [batch], causal_lm_loss, max_batches=1)
    assert changed != before
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), base[name])


def test_fingerprint_coordinates_depend_only_on_public_values() -> None:
    sizes = [("a", 10), ("b", 1000)]
    assert coordinates(5, sizes, 8) == coordinates(5, list(reversed(sizes)), 8)
    assert coordinates(5, sizes, 8) != coordinates(6, sizes, 8)


def test_fingerprint_matches_for_same_model_and_differs_after_a_step() -> None:
    a, b = build_model("tiny", seed=0), build_model("tiny", seed=0)
    assert max_abs_difference(fingerprint(a, 7), fingerprint(b, 7)) == 0.0
    apply_delta(b, {n: torch.full_like(p, 0.01) for n, p in b.named_parameters()}, lr=1.0)
    assert max_abs_difference(fingerprint(a, 7), fingerprint(b, 7)) > 0.005


def test_a_stop_request_ends_training_before_the_next_step() -> None:
    """A node asked to stop (SIGINT) leaves training within a step (issue 16: ~15 s)."""
    model = build_model("tiny", 0)
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # three steps, then the signal arrives

    try:
        train_inner(model, [_batch(1)], causal_lm_loss, InnerSettings(steps=50, lr=1e-3),
                    should_stop=should_stop)  # fmt: skip
    except TrainingStopped as stopped:
        assert "before step 3 of 50" in str(stopped)
    else:
        raise AssertionError("training ran to its end")
    assert len(asked) == 4
