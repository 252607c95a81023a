"""Codec throughput, payload size and reconstruction error on a 1.2B-shaped parameter set.

The shapes are ``gauntlet.compress.sizes.ASSUMED_1B2`` (LLaMA-style, dim 2048, 22
layers, 32k vocabulary, ~1.17B parameters). On CPU the bench uses a representative
subset, the token embeddings and the first two transformer blocks, and says so in
its JSON; ``--all-layers`` runs the whole model (needs ~25 GB of memory). Δ is
Gaussian noise (scale 1e-3): no spatial correlation, so the DCT's gain here is a
lower bound on real pseudo-gradients. Throughput is MB/s of dense float32 input.

    .venv/bin/python bench/codec.py              # the 1.2B subset, several codec settings
    .venv/bin/python bench/codec.py --quick      # a small smoke run (< 10 s)
    .venv/bin/python bench/codec.py --table      # bytes/param per model config (docs/codec.md)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.compress import build_codec  # noqa: E402
from gauntlet.compress.sizes import ASSUMED_1B2, model_shapes, payload_bytes, size_table  # noqa: E402
from gauntlet.model import ModelArgs  # noqa: E402
from protocol.schemas import DenseCodecParams, TopKCodecParams  # noqa: E402

MB = 1024 * 1024
SETTINGS: dict[str, DenseCodecParams | TopKCodecParams] = {
    "dense": DenseCodecParams(),
    "topk c64 k32 dct u8": TopKCodecParams(chunk=64, topk=32, dct=True, quant="u8"),
    "topk c64 k128 dct f16": TopKCodecParams(chunk=64, topk=128, dct=True, quant="f16"),
    "topk c64 k32 raw u8": TopKCodecParams(chunk=64, topk=32, dct=False, quant="u8"),
}
QUICK_ARGS = ModelArgs(
    vocab_size=1024, dim=256, n_layers=1, n_heads=4, n_kv_heads=2, ffn_hidden=768
)


def subset(shapes: dict[str, tuple[int, ...]], all_layers: bool) -> dict[str, tuple[int, ...]]:
    if all_layers:
        return shapes
    keep = ("tok_embeddings.", "layers.0.", "layers.1.")
    return {n: s for n, s in shapes.items() if n.startswith(keep)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_setting(
    params: DenseCodecParams | TopKCodecParams,
    delta: dict[str, torch.Tensor],
    shapes: dict[str, tuple[int, ...]],
    device: str,
    repeats: int,
) -> dict[str, Any]:
    codec = build_codec(params)
    n_params = sum(math.prod(s) for s in shapes.values())
    dense_mb = 4 * n_params / MB
    encode_s, decode_s = [], []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        payload, _ = codec.encode(delta)
        _sync(device)
        encode_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = codec.decode(payload, shapes, device)
        _sync(device)
        decode_s.append(time.perf_counter() - t)
    err = sum(float((out[n] - delta[n]).norm() ** 2) for n in shapes)
    ref = sum(float(delta[n].norm() ** 2) for n in shapes)
    nbytes = payload_bytes(codec.specs(shapes))
    row: dict[str, Any] = {
        "codec": params.model_dump(),
        "compress_MBps": round(dense_mb / min(encode_s), 1),
        "decompress_MBps": round(dense_mb / min(decode_s), 1),
        "payload_bytes": nbytes,
        "bytes_per_param": round(nbytes / n_params, 5),
        "ratio_vs_fp32": round(4 * n_params / nbytes, 1),
        "relative_error": round(math.sqrt(err / ref), 4),
    }
    if isinstance(params, DenseCodecParams) and device == "cpu":
        row["note"] = "dense encode of a CPU float32 tensor is a zero-copy view: no real work"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    parser.add_argument("--table", action="store_true", help="print bytes/param per model config")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--all-layers", action="store_true", help="every 1.2B layer (big)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.table:
        print(json.dumps(size_table(SETTINGS), indent=2))
        return
    model_args = QUICK_ARGS if args.quick else ASSUMED_1B2
    shapes = subset(model_shapes(model_args), args.all_layers or args.quick)
    g = torch.Generator().manual_seed(0)
    delta = {n: (1e-3 * torch.randn(s, generator=g)).to(args.device) for n, s in shapes.items()}
    results = {
        label: run_setting(p, delta, shapes, args.device, 1 if args.quick else args.repeats)
        for label, p in SETTINGS.items()
    }
    n_params = sum(math.prod(s) for s in shapes.values())
    print(
        json.dumps(
            {
                "bench": "codec",
                "quick": args.quick,
                "shapes": "quick: dim 256, 1 block, vocab 1024"
                if args.quick
                else f"ASSUMED_1B2 {model_args}"
                + ("" if args.all_layers else "; subset: tok_embeddings + layers.0 + layers.1"),
                "params_benchmarked": n_params,
                "delta": "Gaussian, std 1e-3, one window, no prior error feedback",
                "machine": machine_info(args.device),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
