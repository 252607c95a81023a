"""Token-Superposition Training against plain training on the same model and compute.

Two arms from the same initial weights, each ``--steps`` AdamW steps of the same batch
(``--batch`` sequences of ``--seq-len`` positions), so the same FLOPs per step:

* ``plain``: next-token training throughout;
* ``tst``: the first ``--ratio`` of the steps in superposition (each position the mean
  embedding of ``--bag`` tokens, trained to predict the next bag's tokens), then plain
  next-token training on the same model and optimiser, as the paper prescribes.

Data: a shuffled pass over the dataset's training pages per phase (a superposition step
reads ``bag`` times the tokens). Every ``--eval-every`` steps both arms are measured with
the plain next-token loss on the held-out validation pages (the same batches for both).

Prints one JSON object: the machine, per seed and arm the data tokens/s of each phase,
the validation curve against steps (= FLOPs, equal per step), data tokens and seconds,
and the summary: the superposition phase's tokens/s over plain's, and each arm's final
validation loss (equal compute). FLOPs per step: 6 N T B + 12 L d T^2 B (bench/train.py's
count; the bag's mean of embeddings adds no matmul).

    .venv/bin/python bench/tst.py                       # tiny, 2 seeds, ~2 min on 2 cores
    .venv/bin/python bench/tst.py --steps 20 --seeds 0  # smoke run
    python bench/tst.py --config small --device cuda --steps 2000 --bag 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.data import PageDataset, ensure_dataset  # noqa: E402
from gauntlet.model import build_model, causal_lm_loss, superposition_loss  # noqa: E402
from gauntlet.model.runtime import autocast  # noqa: E402
from gauntlet.train.evaluate import mean_loss  # noqa: E402


def flops_per_step(model: torch.nn.Module, batch: int, positions: int) -> float:
    args = model.args  # type: ignore[attr-defined]
    params = sum(p.numel() for n, p in model.named_parameters() if n != "tok_embeddings.weight")
    return float(
        6 * params * positions * batch + 12 * args.n_layers * args.dim * positions**2 * batch
    )


def stream(dataset: PageDataset, seq_len: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    """Shuffled passes over the training pages, one after another."""
    pages = list(range(dataset.num_train_pages))
    for epoch in itertools.count():
        yield from dataset.batches(pages, seq_len=seq_len, batch_size=batch, seed=seed + epoch)


def run_arm(
    dataset: PageDataset, args: argparse.Namespace, seed: int, superposition_steps: int
) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = build_model(args.config, seed=seed).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    validation = list(
        dataset.batches(
            dataset.validation_page_ids(), seq_len=args.seq_len, batch_size=args.batch, seed=0
        )
    )[: args.eval_batches]
    bagged = stream(dataset, (args.seq_len + 1) * args.bag - 1, args.batch, seed=1000 * seed)
    plain = stream(dataset, args.seq_len, args.batch, seed=1000 * seed + 500)
    flops = flops_per_step(model, args.batch, args.seq_len)
    curve: list[dict[str, float]] = []
    tokens = 0
    phase_time = {"superposition": 0.0, "plain": 0.0}
    phase_tokens = {"superposition": 0, "plain": 0}

    def evaluate(step: int) -> None:
        loss = mean_loss(
            model, validation, causal_lm_loss, max_batches=len(validation), device=args.device
        )
        curve.append(
            {
                "step": step,
                "flops": step * flops,
                "tokens": tokens,
                "train_seconds": round(elapsed, 3),
                "val_loss": round(loss, 4),
            }
        )

    elapsed = 0.0  # training time so far (evaluations excluded)
    evaluate(0)
    model.train()
    for step in range(1, args.steps + 1):
        in_superposition = step <= superposition_steps
        phase = "superposition" if in_superposition else "plain"
        batch = next(bagged if in_superposition else plain).to(args.device)
        began = time.perf_counter()
        with autocast(args.device):
            if in_superposition:
                loss = superposition_loss(model, batch, args.bag)
            else:
                loss = causal_lm_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize(args.device)
        took = time.perf_counter() - began
        elapsed += took
        used = batch.shape[0] * (batch.shape[1] - (args.bag if in_superposition else 1))
        tokens += used
        if step not in (1, superposition_steps + 1):  # a phase's first step warms kernels up
            phase_time[phase] += took
            phase_tokens[phase] += used
        if step % args.eval_every == 0 or step == args.steps or step == superposition_steps:
            evaluate(step)
            model.train()
    return {
        "tokens_per_s": {
            p: round(phase_tokens[p] / phase_time[p], 1) for p in phase_time if phase_time[p] > 0
        },
        "switch_step": superposition_steps or None,
        "final_val_loss": curve[-1]["val_loss"],
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--bag", type=int, default=4)
    parser.add_argument("--ratio", type=float, default=0.3, help="share of steps in superposition")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--dataset-dir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.dataset_dir or Path(tempfile.gettempdir()) / "gauntlet-bench-dataset"
    dataset = ensure_dataset(directory, page_tokens=4096, max_tokens=4_000_000)
    switch = round(args.steps * args.ratio)
    runs = {
        seed: {
            "plain": run_arm(dataset, args, seed, 0),
            "tst": run_arm(dataset, args, seed, switch),
        }
        for seed in args.seeds
    }
    ratio = [
        r["tst"]["tokens_per_s"]["superposition"] / r["plain"]["tokens_per_s"]["plain"]
        for r in runs.values()
    ]
    print(
        json.dumps(
            {
                "bench": "tst",
                "machine": machine_info(args.device),
                "settings": {
                    k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                },
                "flops_per_step": flops_per_step(
                    build_model(args.config, 0), args.batch, args.seq_len
                ),
                "summary": {
                    "superposition_tokens_per_s_over_plain": round(statistics.mean(ratio), 2),
                    "final_val_loss": {
                        arm: [runs[s][arm]["final_val_loss"] for s in args.seeds]
                        for arm in ("plain", "tst")
                    },
                },
                "runs": runs,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
