"""The miner's inner loop: a few optimizer steps on assigned pages, then Δ = θ_start − θ_end."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from gauntlet.compress.dense import Delta


@dataclass(frozen=True)
class InnerResult:
    delta: Delta  # θ_start − θ_end, float32, same names as model.named_parameters()
    losses: list[float]
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.inf


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached float32 copy of every parameter (θ at the start of the window)."""
    return {name: p.detach().to(torch.float32).clone() for name, p in model.named_parameters()}


def pseudo_gradient(model: nn.Module, start: dict[str, torch.Tensor]) -> Delta:
    return {
        name: start[name] - p.detach().to(torch.float32) for name, p in model.named_parameters()
    }


def train_inner(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    grad_clip: float,
    device: torch.device | str = "cpu",
) -> InnerResult:
    """Run ``steps`` AdamW steps, cycling ``batches`` if it is shorter; leaves θ_end in ``model``.

    The inner optimizer starts fresh each window: its state is local to the
    window, like DiLoCo's inner loop, and nothing of it leaves the miner.
    """
    start = snapshot(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    tokens = 0
    began = time.perf_counter()
    for batch in itertools.islice(itertools.cycle(list(batches)), steps):
        batch = batch.to(device)
        loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        tokens += batch.shape[0] * (batch.shape[1] - 1)
    return InnerResult(pseudo_gradient(model, start), losses, tokens, time.perf_counter() - began)
