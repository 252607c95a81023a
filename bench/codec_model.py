"""A whole model's codec paths: validate one payload, decode one, aggregate many.

``bench/codec.py`` times one 1.2B block. This times what a node does each window with
whole 1.2B payloads (or the parameters under ``--subset``), per codec:

- ``validate_s``: ``codec.validate`` of one payload (the checks a validator runs on every
  contribution it opens, on the CPU);
- ``decode_s``: ``codec.decode`` of one payload onto ``--device`` (twice per evaluated
  peer on a validator);
- ``aggregate_<mode>_s``: ``codec.decode_batch`` of ``--peers`` payloads (``--distinct``
  different updates, repeated) onto ``--device`` (every node, every window);

each the fastest of ``--repeats`` runs, all runs listed beside it, and a checksum of the
result's bits (``*_checksum``) so two runs compare bitwise. It uses only the codecs'
public interface, and puts the checkout's root last on ``sys.path``, so ``PYTHONPATH``
can point it at another checkout's ``gauntlet`` and ``protocol`` (before/after figures
from one machine; ``bench/results/h200-2026-12-04`` has such a pair).

    .venv/bin/python bench/codec_model.py --device cpu --subset layers.2   # 3 blocks on CPU
    python bench/codec_model.py --device cuda                             # 1.2B on a GPU
    PYTHONPATH=/old/checkout python bench/codec_model.py --device cuda    # the old code
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.compress.codec import build_codec  # noqa: E402
from gauntlet.compress.sizes import ASSUMED_1B2, model_shapes  # noqa: E402
from protocol.schemas import SparseCodecParams, TopKCodecParams  # noqa: E402

T = TypeVar("T")
CODECS = {
    "topk c64 k32 dct u8": TopKCodecParams(chunk=64, topk=32, dct=True, quant="u8"),
    "sparse c4096 k54 b2": SparseCodecParams(chunk=4096, topk=54, bits=2),
}
# checksum: a weighted sum of the result's bits (int32 views) modulo a Mersenne prime; the
# weights cycle over a prime period so a swap of two entries changes it
PERIOD, MODULUS = 1_000_003, (1 << 61) - 1


def checksum(delta: dict[str, torch.Tensor]) -> int:
    """Of every tensor's float32 bits, in name order: equal results give equal sums."""
    total = 0
    for name in sorted(delta):
        bits = delta[name].reshape(-1).contiguous().view(torch.int32).long()
        weights = torch.arange(bits.numel(), device=bits.device) % PERIOD + 1
        total = (total * 31 + int((bits * weights).sum())) % MODULUS
    return total


def fastest(run: Callable[[], T], repeats: int, device: str) -> tuple[T, float, list[float]]:
    """``run()``'s last result, its fastest time and every time (seconds, GPU-synced)."""

    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    out: Any = None
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        out = run()
        sync()
        times.append(round(time.perf_counter() - start, 4))
    return out, min(times), times


def bench_codec(
    params: TopKCodecParams | SparseCodecParams,
    shapes: dict[str, tuple[int, ...]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    codec = build_codec(params)
    g = torch.Generator(device=args.device).manual_seed(0)
    distinct = []
    for i in range(args.distinct):  # Gaussian Δ of growing scale: norms differ per peer
        delta = {
            n: 1e-3 * (i + 1) * torch.randn(s, generator=g, device=args.device)
            for n, s in shapes.items()
        }
        distinct.append(codec.encode(delta)[0])
        del delta
    payloads = [distinct[i % args.distinct] for i in range(args.peers)]
    row: dict[str, Any] = {
        "payload_mb": round(sum(a.nbytes for a in distinct[0].values()) / 2**20, 1),
        "peers": args.peers,
        "distinct_updates": args.distinct,
    }
    _, row["validate_s"], row["validate_all_s"] = fastest(
        lambda: codec.validate(distinct[0], shapes), args.repeats, args.device
    )
    out, row["decode_s"], row["decode_all_s"] = fastest(
        lambda: codec.decode(distinct[0], shapes, args.device), args.repeats, args.device
    )
    row["decode_checksum"] = checksum(out)
    del out
    for mode in ("none", "per_peer"):

        def aggregate(normalise: Any = mode) -> dict[str, torch.Tensor]:
            return codec.decode_batch(payloads, shapes, normalise=normalise, device=args.device)

        out, row[f"aggregate_{mode}_s"], row[f"aggregate_{mode}_all_s"] = fastest(
            aggregate, args.repeats, args.device
        )
        row[f"aggregate_{mode}_checksum"] = checksum(out)
        del out
    if torch.device(args.device).type == "cuda":
        row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(args.device) / 2**30, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--subset", default="", help="only parameters whose name starts so")
    parser.add_argument("--peers", type=int, default=16, help="payloads aggregated")
    parser.add_argument("--distinct", type=int, default=4, help="different updates among them")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path")
    args = parser.parse_args()
    if not 1 <= args.distinct <= args.peers:
        parser.error("--distinct must be between 1 and --peers")
    shapes = {n: s for n, s in model_shapes(ASSUMED_1B2).items() if n.startswith(args.subset)}
    if not shapes:
        parser.error(f"no parameter of the 1.2B model starts with {args.subset!r}")
    report = {
        "bench": "codec_model",
        "model": "ASSUMED_1B2" + (f", parameters starting {args.subset!r}" if args.subset else ""),
        "params": sum(math.prod(s) for s in shapes.values()),
        "gauntlet": str(Path(sys.modules["gauntlet"].__file__ or "").parent),
        "results": {label: bench_codec(p, shapes, args) for label, p in CODECS.items()},
        "machine": machine_info(args.device),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
