"""Run the inner loop under torchrun (gloo) and save rank 0's pseudo-gradient.

Used by test_distributed.py as: python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py
OUT [STOP_AFTER]; with STOP_AFTER only rank 0 is given a deadline, after that many steps.
"""

from __future__ import annotations

import sys

import torch
from safetensors.torch import save_file

from gauntlet.model import build_model, causal_lm_loss
from gauntlet.train.distributed import init_from_env, shutdown
from gauntlet.train.inner import InnerSettings, train_inner

STEPS, BATCH, LENGTH = 4, 8, 65


def batches() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    return [torch.randint(0, 256, (BATCH, LENGTH), generator=generator) for _ in range(STEPS)]


def leader_deadline(is_leader: bool, stop_after: int | None):
    """Rank 0's ``until``: stop before step ``stop_after``; the other ranks get none."""
    if stop_after is None or not is_leader:
        return None
    asked = iter(range(10**6))
    return lambda: next(asked) >= stop_after


def main(out: str, stop_after: int | None) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    dist = init_from_env("cpu")
    model = build_model("tiny", seed=0)
    settings = InnerSettings(steps=STEPS, lr=1e-3)
    until = leader_deadline(dist.is_leader, stop_after)
    result = train_inner(model, batches(), causal_lm_loss, settings, dist=dist, until=until)
    print(f"rank={dist.rank} steps={len(result.losses)}", flush=True)
    echoed = dist.broadcast_json({"rank0_loss": result.losses[0]})
    if dist.is_leader:
        save_file({name: t.contiguous() for name, t in result.delta.items()}, out)
        print(f"world={dist.world_size} loss={result.losses[0]:.6f} echoed={echoed}")
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
