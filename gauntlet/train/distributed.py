"""One miner across several processes/GPUs with ``torch.distributed`` (DDP).

Launched by ``torchrun --nproc-per-node N gauntlet miner ...``: every rank holds
the full model and trains on its slice of each batch; DDP averages gradients,
so every rank ends the window with the same θ and the same pseudo-gradient,
equal to what one process would compute on the whole batch. Rank 0 alone talks
to the chain and the stores and broadcasts what the others need.
On CPU the same path runs under the gloo backend (tests use 2 processes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a batch ``[B, ...]`` (B divisible by world size)."""
        if not self.enabled:
            return batch
        if batch.shape[0] % self.world_size:
            raise ValueError(
                f"batch size {batch.shape[0]} is not divisible by world size {self.world_size}"
            )
        per_rank = batch.shape[0] // self.world_size
        return batch[self.rank * per_rank : (self.rank + 1) * per_rank]

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP-wrapped model for the inner loop (the bare model when not distributed)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def broadcast_json(self, value: Any) -> Any:
        """Rank 0's JSON-serialisable ``value`` on every rank (control data; never pickled)."""
        if not self.enabled:
            return value
        data = json.dumps(value).encode() if self.is_leader else b""
        length = torch.tensor([len(data)], dtype=torch.int64, device=self._device)
        dist.broadcast(length, src=0)
        buffer = torch.zeros(int(length.item()), dtype=torch.uint8, device=self._device)
        if self.is_leader:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buffer, src=0)
        return json.loads(bytes(buffer.cpu().tolist()))

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank; every rank must ask, at the same point (a
        collective). How the leader's deadline stops all ranks at the same step."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)], dtype=torch.int64, device=self._device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    @property
    def _device(self) -> torch.device:
        backend = dist.get_backend() if dist.is_initialized() else "gloo"
        return torch.device("cuda", self.local_rank) if backend == "nccl" else torch.device("cpu")

    @torch.no_grad()
    def broadcast_parameters(self, model: nn.Module) -> None:
        """Make every rank's parameters equal to rank 0's."""
        if self.enabled:
            for p in model.parameters():
                dist.broadcast(p.data, src=0)


def init_from_env(device: str) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment; single-process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
