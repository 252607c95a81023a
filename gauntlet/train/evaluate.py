"""Loss measurement without gradients (validator scoring, validation loss)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn

from gauntlet.model.runtime import autocast


def mean_loss(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    max_batches: int,
    device: torch.device | str = "cpu",
) -> float:
    """Mean of per-batch losses over at most ``max_batches`` batches (nats/token)."""
    losses = batch_losses(model, batches, loss_fn, max_batches=max_batches, device=device)
    return sum(losses) / len(losses)


@torch.no_grad()
def batch_losses(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    max_batches: int,
    device: torch.device | str = "cpu",
) -> list[float]:
    """The loss of each of at most ``max_batches`` batches (nats/token), in order."""
    was_training = model.training
    model.eval()
    try:
        with autocast(device):
            losses = [
                float(loss_fn(model, b.to(device))) for b in itertools.islice(batches, max_batches)
            ]
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("no batches to evaluate")
    return losses
