"""The miner's inner loop: a few optimizer steps on assigned pages, then Δ = θ_start − θ_end."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from gauntlet.compress.dense import Delta
from gauntlet.model.runtime import autocast
from gauntlet.train.distributed import DistContext


class TrainingStopped(Exception):
    """The node is stopping: training left off between two steps (its result is void)."""


@dataclass(frozen=True)
class InnerResult:
    delta: Delta  # θ_start − θ_end, float32, same names as model.named_parameters()
    losses: list[float]  # this rank's loss per step
    tokens: int  # tokens processed by all ranks together
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class InnerSettings:
    steps: int
    lr: float | Callable[[int], float]  # a constant, or step-in-window -> learning rate
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.9  # SGD only


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached float32 copy of every parameter (θ at the start of the window)."""
    return {name: p.detach().to(torch.float32).clone() for name, p in model.named_parameters()}


def pseudo_gradient(model: nn.Module, start: dict[str, torch.Tensor]) -> Delta:
    return {
        name: start[name] - p.detach().to(torch.float32) for name, p in model.named_parameters()
    }


def _optimizer(model: nn.Module, settings: InnerSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=0.0,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
        )
    return torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=settings.weight_decay)


def train_inner(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    settings: InnerSettings,
    *,
    device: torch.device | str = "cpu",
    dist: DistContext | None = None,
    should_stop: Callable[[], bool] | None = None,
    until: Callable[[], bool] | None = None,
) -> InnerResult:
    """Run ``settings.steps`` optimizer steps, cycling ``batches`` if it is shorter.

    Leaves θ_end in ``model``. Batches are global ``[B, T+1]`` token tensors; under
    ``torch.distributed`` each rank takes its slice and DDP averages gradients, so
    the result equals one process training on whole batches. The optimizer starts
    fresh each window: its state is local to the window, as in DiLoCo's inner loop.
    ``should_stop`` is asked before each step; when it says so, :class:`TrainingStopped`
    is raised (a node asked to stop leaves within a step, not at the window's end).
    ``until`` is asked too: when it says so, training ends early and its result holds the
    steps taken (``len(losses)``; none: a zero Δ), e.g. at a window's deadline. Under
    ``torch.distributed`` it is enough that one rank (the leader) is given ``until``.
    """
    dist = dist or DistContext()
    start = snapshot(model)
    trained = dist.wrap(model)
    optimizer = _optimizer(model, settings)
    schedule = settings.lr if callable(settings.lr) else (lambda _step, lr=settings.lr: lr)
    model.train()
    losses: list[float] = []
    tokens = 0
    began = time.perf_counter()
    for step, batch in enumerate(itertools.islice(itertools.cycle(list(batches)), settings.steps)):
        if should_stop is not None and should_stop():
            raise TrainingStopped(f"stopped before step {step} of {settings.steps}")
        # Under torchrun every rank asks (a collective): the leader's deadline stops them
        # all at the same step, so their pseudo-gradients stay equal.
        if dist.any(until is not None and until()):
            break
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
        local = dist.shard(batch).to(device)
        with autocast(device):  # bf16 matmuls on CUDA; parameters and optimizer stay fp32
            loss = loss_fn(trained, local)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        tokens += batch.shape[0] * (batch.shape[1] - 1)
    return InnerResult(pseudo_gradient(model, start), losses, tokens, time.perf_counter() - began)
