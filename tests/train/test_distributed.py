"""One miner across 2 gloo processes computes the same pseudo-gradient as 1 process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gauntlet.train.distributed import DistContext

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(tmp_path: Path, nproc: int, *stop_after: str) -> dict[str, torch.Tensor]:
    """Rank 0's Δ; every rank must have taken the same number of steps (``STOP_AFTER`` when
    given: the worker's rank 0 stops there)."""
    out = tmp_path / f"delta-{nproc}-{'-'.join(stop_after)}.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(WORKER), str(out), *stop_after]
    if nproc > 1:
        argv = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), str(WORKER), str(out), *stop_after,
        ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"world={nproc}" in completed.stdout
    steps = re.findall(r"rank=\d+ steps=(\d+)", completed.stdout)  # the ranks' lines may mix
    assert steps == [(stop_after or ("4",))[0]] * nproc, completed.stdout
    return load_file(str(out))


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_stop_at_the_leaders_deadline(
    tmp_path: Path,
) -> None:
    """Rank 0's Δ equals one process's, step for step; only rank 0 knows the window's
    deadline (after 3 of the worker's 4 steps here), and the other rank stops with it (a rank
    left in a step's collective would hang)."""
    single, double = _run(tmp_path, 1, "3"), _run(tmp_path, 2, "3")
    assert single.keys() == double.keys()
    for name in single:
        one, two = single[name], double[name]
        # The all-reduce sums the two halves' gradients in another order than one process
        # does, and AdamW divides each step by the root of the gradient's own square, so an
        # element whose gradient is near zero can move by a few 1e-6 more or less (one of
        # 2048 in a CI run: 9.9e-6 against 2.1e-3). Every element but a few must agree to
        # float rounding, and the tensor as a whole to a part in 10^3; a rank that trained
        # on other data or skipped the reduction differs in most elements.
        close = torch.isclose(two, one, atol=2e-6, rtol=1e-4)
        assert close.float().mean() >= 0.995, (name, int((~close).sum()), one.numel())
        assert (two - one).norm() <= 1e-3 * one.norm() + 1e-9, name
    assert any(t.abs().max() > 0 for t in single.values())


def test_shard_slices_the_batch_per_rank() -> None:
    batch = torch.arange(8).reshape(4, 2)
    assert torch.equal(DistContext(rank=1, world_size=2).shard(batch), batch[2:])
    assert torch.equal(DistContext().shard(batch), batch)
    with pytest.raises(ValueError):
        DistContext(rank=0, world_size=3).shard(batch)
