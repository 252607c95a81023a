"""The outer step every node applies identically: θ_{w+1} = θ_w − lr · aggregate(Δ_i).

The aggregate itself (normalisation, mean) is :func:`gauntlet.compress.aggregate.aggregate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from gauntlet.compress.dense import Delta


@torch.no_grad()
def apply_delta(model: nn.Module, delta: Delta, lr: float) -> None:
    """θ ← θ − lr · Δ, in place."""
    for name, p in model.named_parameters():
        p.sub_(delta[name].to(device=p.device, dtype=p.dtype), alpha=lr)


@torch.no_grad()
def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        p.copy_(state[name])


@contextmanager
def applied(
    model: nn.Module, delta: Delta, lr: float, base: dict[str, torch.Tensor]
) -> Iterator[nn.Module]:
    """Temporarily θ_w − lr·Δ; restores ``base`` (a snapshot of θ_w) exactly on exit.

    One snapshot serves every peer evaluated in a window, so the validator never
    deep-copies the model per peer.
    """
    apply_delta(model, delta, lr)
    try:
        yield model
    finally:
        restore(model, base)
