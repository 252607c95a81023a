"""Training throughput (tokens/s) and model FLOPs utilisation (MFU) per model config.

One training step = forward, causal-LM loss, backward, AdamW step, on random
tokens (throughput does not depend on the data). Prints one JSON object.

FLOPs per token (PaLM appendix B; torchtitan counts the same way):

    6 * N  +  12 * L * d * T

N: parameters minus the token embedding (a lookup costs no matmul FLOPs; the
untied output head is a real matmul and counts). 6 = 2 (multiply-add) x 3
(forward, and backward for activations and for weights). 12 * L * d * T: the
attention scores q.k and the weighted sum of v, over T positions per token, in
L layers of width d, forward and backward; the causal mask's skipped half is
not subtracted. MFU = FLOPs/token * tokens/s / peak FLOP/s of the device.

Peak FLOP/s: for known GPUs the vendor's dense bf16 figure (table below; only
with --dtype bf16); otherwise (CPU, fp32, unknown GPU) it is *measured* as the
best rate of a timed large square matmul in the run's dtype, so on CPU "MFU"
means the fraction of what this machine's BLAS reaches on one big matmul.

    .venv/bin/python bench/train.py                 # CPU: tiny and small, short runs
    .venv/bin/python bench/train.py --quick         # smoke run (< 15 s on CPU)
    python bench/train.py --config 150m --config 1.2b --device cuda --dtype bf16 [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.model import MODEL_CONFIGS, Transformer, build_model, causal_lm_loss  # noqa: E402
from gauntlet.model.runtime import autocast, prepare_for_training  # noqa: E402

# Dense (no 2:4 sparsity) bf16 tensor-core peaks, FLOP/s, from the vendors' datasheets.
# Matched against torch.cuda.get_device_name() in order, first hit wins.
GPU_BF16_PEAK: list[tuple[str, str, float]] = [
    ("H100 PCIe", "H100 PCIe bf16 dense", 756e12),
    ("H100", "H100 SXM bf16 dense", 989e12),
    ("H200", "H200 bf16 dense (same as H100 SXM)", 989e12),
    ("A100", "A100 bf16 dense", 312e12),
]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops(device: str, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Best FLOP/s of an n x n @ n x n matmul (2 n^3 FLOPs) over ``repeats`` runs."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: BLAS thread pool, cuBLAS handle and kernel choice
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def table_peak(device: str, dtype: str) -> dict[str, Any] | None:
    """The datasheet figure for a known GPU in bf16; None means measure it."""
    if torch.device(device).type == "cuda" and dtype == "bf16":
        name = torch.cuda.get_device_name(device)
        for key, label, flops in GPU_BF16_PEAK:
            if key in name:
                return {"flops": flops, "source": f"table: {label}"}
    return None


def flops_per_token(name: str, seq_len: int) -> tuple[int, int, int]:
    """(total params, non-embedding params N, 6*N + 12*L*d*T) for the named config."""
    args = MODEL_CONFIGS[name]
    with torch.device("meta"):  # counting needs shapes only
        model = Transformer(args)
    total = sum(p.numel() for p in model.parameters())
    n = total - model.tok_embeddings.weight.numel()
    return total, n, 6 * n + 12 * args.n_layers * args.dim * seq_len


def bench_config(
    name: str, *, device: str, dtype: str, batch: int, seq_len: int, steps: int, warmup: int,
    compile: bool,
) -> dict[str, Any]:  # fmt: skip
    args = MODEL_CONFIGS[name]
    seq_len = min(seq_len, args.max_seq_len)
    total, n_nonemb, fpt = flops_per_token(name, seq_len)
    model = prepare_for_training(build_model(name, seed=0), device=device, compile=compile)
    fused = torch.device(device).type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=fused)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab_size, (batch, seq_len + 1), generator=g).to(device)
    amp = autocast(device) if dtype == "bf16" else contextlib.nullcontext()
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for step in range(warmup + steps):
        _sync(device)
        t = time.perf_counter()
        with amp:
            loss = causal_lm_loss(model, tokens)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if step >= warmup:  # warm-up steps pay for compile, allocator growth, AdamW state
            times.append(time.perf_counter() - t)
            losses.append(loss.item())
    step_s = statistics.median(times)
    tokens_per_s = batch * seq_len / step_s
    row: dict[str, Any] = {
        "config": name,
        "params": total,
        "non_embedding_params": n_nonemb,
        "batch": batch,
        "seq_len": seq_len,
        "dtype": dtype,
        "compile": compile,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "step_time_s": round(step_s, 4),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": fpt,
        "achieved_tflops": round(fpt * tokens_per_s / 1e12, 4),
        "mfu": None,  # filled in by main() once the peak is known
        "loss_first_timed": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
    }
    if torch.device(device).type == "cuda":
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default: bf16 on cuda, else fp32")
    parser.add_argument("--batch", type=int, help="sequences per step")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (capped at max_seq_len)")
    parser.add_argument("--steps", type=int, help="timed steps")
    parser.add_argument("--warmup", type=int, help="untimed steps first")
    parser.add_argument("--compile", action="store_true", help="torch.compile each block")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny, a few short steps")
    a = parser.parse_args()
    cuda = torch.device(a.device).type == "cuda"
    dtype = a.dtype or ("bf16" if cuda else "fp32")
    if dtype == "bf16" and not cuda:
        parser.error("bf16 runs through CUDA autocast; on CPU the model trains in fp32")
    if a.quick:
        configs, batch, seq_len, steps, warmup = a.config or ["tiny"], 4, 64, 3, 1
    elif cuda:
        configs, batch, seq_len, steps, warmup = a.config or ["150m", "1.2b"], 4, 2048, 10, 3
    else:
        configs, batch, seq_len, steps, warmup = a.config or ["tiny", "small"], 4, 256, 4, 1
    batch, seq_len = a.batch or batch, a.seq_len or seq_len
    steps, warmup = a.steps or steps, a.warmup if a.warmup is not None else warmup
    if a.compile:
        warmup = max(warmup, 1)  # the first compiled step is compilation, never timed
    table = table_peak(a.device, dtype)
    n = 1024 if a.quick else (8192 if cuda else 2048)
    repeats = 3 if a.quick else 5
    # Timed before and after the runs, best kept: a noisy neighbour on a shared
    # CPU during a single measurement would understate the peak and inflate MFU.
    before = 0.0 if table else matmul_flops(a.device, DTYPES[dtype], n, repeats)
    results = [
        bench_config(
            name,
            device=a.device,
            dtype=dtype,
            batch=batch,
            seq_len=seq_len,
            steps=steps,
            warmup=warmup,
            compile=a.compile,
        )
        for name in configs
    ]
    peak = table or {
        "flops": max(before, matmul_flops(a.device, DTYPES[dtype], n, repeats)),
        "source": f"measured: best of 2x{repeats} {dtype} matmuls {n}^3, "
        "timed before and after the training runs",
    }
    for row in results:
        row["mfu"] = round(row["flops_per_token"] * row["tokens_per_s"] / peak["flops"], 4)
    report = {
        "bench": "train",
        "quick": a.quick,
        "step": "forward + causal-LM loss + backward + AdamW, random tokens",
        "flops_formula": "flops_per_token = 6*N + 12*L*d*T; N = params - token embedding",
        "mfu_formula": "mfu = flops_per_token * tokens_per_s / peak_flops",
        "peak": peak,
        "machine": machine_info(a.device),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
