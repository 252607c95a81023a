"""Loss measurement without gradients (validator scoring, validation loss)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn

from gauntlet.model.runtime import autocast


@torch.no_grad()
def mean_loss(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    max_batches: int,
    device: torch.device | str = "cpu",
) -> float:
    """Mean of per-batch losses over at most ``max_batches`` batches (nats/token)."""
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
    return sum(losses) / len(losses)
