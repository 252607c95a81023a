"""Codec throughput, payload size, reconstruction error and aggregation cost.

Three parts, one JSON object:

* ``results``: encode (with a carried error-feedback residual, as a miner runs it) and
  decode MB/s, bytes/param and relative error of one window, per codec setting, on
  Gaussian Δ (scale 1e-3) for 1.2B shapes (``gauntlet.compress.sizes.ASSUMED_1B2``).
  On CPU the shapes are a representative subset, the token embeddings and the first
  two transformer blocks, and the JSON says so; ``--all-layers`` runs the whole model
  (needs ~25 GB of memory). Gaussian noise has no spatial correlation, so the DCT's
  gain here is a lower bound.
* ``real``: the same on a real pseudo-gradient, θ_start − θ_end after ``--real-steps``
  AdamW steps of the ``--real-model`` config on the stdlib token dataset
  (``--real-model none`` skips it).
* ``aggregate``: ``decode_batch`` of ``--peers`` peers' payloads of one 1.2B block
  into one dense update, per normalisation mode, beside a lower bound measured in the
  same run on the same payloads: one ``index_add_`` of every peer's (dequantised)
  values into a zero coefficient tensor plus one inverse transform
  (``ChunkLayout.from_chunks``), per parameter; its inputs are prepared untimed.
  ``--profile`` adds where one ``per_peer`` aggregate's time goes (``profile``: operator
  calls, host-to-device copies, host waits on the device, the top events by self time).

Throughput is MB/s of dense float32 input. The machine's load average is printed
at the start and the end (a shared machine's figures are noisy).

    .venv/bin/python bench/codec.py              # all three parts (a few minutes on 2 cores)
    .venv/bin/python bench/codec.py --quick      # a small smoke run (< 20 s)
    .venv/bin/python bench/codec.py --table      # bytes/param per model config (docs/codec.md)

The script only uses the codec's public interface (``build_codec``, ``encode``,
``decode``, ``decode_batch``, ``specs``) and ``ChunkLayout``/``dequantise``, so the
same file runs against an older checkout of ``gauntlet/`` for before/after figures.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from gauntlet.compress import build_codec  # noqa: E402
from gauntlet.compress.chunking import ChunkLayout  # noqa: E402
from gauntlet.compress.quant import dequantise  # noqa: E402
from gauntlet.compress.sizes import ASSUMED_1B2, model_shapes, payload_bytes, size_table  # noqa: E402
from gauntlet.model import ModelArgs  # noqa: E402
from protocol.schemas import DenseCodecParams, TopKCodecParams  # noqa: E402

try:
    from protocol.schemas import SparseCodecParams
except ImportError:  # an older checkout, for before/after figures
    SparseCodecParams = None  # type: ignore[assignment,misc]

MB = 1024 * 1024
SETTINGS: dict[str, Any] = {
    "dense": DenseCodecParams(),
    "topk c64 k32 dct u8": TopKCodecParams(chunk=64, topk=32, dct=True, quant="u8"),
    "topk c64 k128 dct f16": TopKCodecParams(chunk=64, topk=128, dct=True, quant="f16"),
    "topk c64 k32 raw u8": TopKCodecParams(chunk=64, topk=32, dct=False, quant="u8"),
}
if SparseCodecParams is not None:  # absent from checkouts before the sparse codec
    # 103 B per 4096 values, the default top-k's 104: the comparison at equal bytes
    SETTINGS["sparse c4096 k54 b2"] = SparseCodecParams(chunk=4096, topk=54, bits=2)
    SETTINGS["sparse c4096 k32 b2"] = SparseCodecParams(chunk=4096, topk=32, bits=2)
AGGREGATE_SETTINGS = ("topk c64 k32 dct u8", "sparse c4096 k54 b2")
QUICK_ARGS = ModelArgs(
    vocab_size=1024, dim=256, n_layers=1, n_heads=4, n_kv_heads=2, ffn_hidden=768
)
Shapes = dict[str, tuple[int, ...]]


def subset(shapes: Shapes, prefixes: tuple[str, ...] | None) -> Shapes:
    if prefixes is None:
        return shapes
    return {n: s for n, s in shapes.items() if n.startswith(prefixes)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync(device)
    began = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - began, out


def _sq(t: torch.Tensor) -> float:
    return float(t.double().pow(2).sum())


def run_setting(
    params: Any,
    delta: dict[str, torch.Tensor],
    shapes: Shapes,
    device: str,
    repeats: int,
    previous: dict[str, torch.Tensor] | None = None,
    same_delta: bool = False,
) -> dict[str, Any]:
    """Encode ``delta`` carrying the residual of the ``previous`` window's Δ (as a miner
    does; default: another Gaussian of the same scale), then decode."""
    codec = build_codec(params)
    n_params = sum(math.prod(s) for s in shapes.values())
    dense_mb = 4 * n_params / MB
    if previous is None:
        g = torch.Generator().manual_seed(2)
        previous = {n: (1e-3 * torch.randn(s, generator=g)).to(device) for n, s in shapes.items()}
    _, error = codec.encode(previous)
    del previous
    # A miner gives its trained Δ up to the encoder (``reuse_delta``, where the checkout has
    # it): each timed encode gets its own copy, made untimed, as training makes a fresh Δ.
    # ``same_delta``: every encode reads the one Δ and keeps it (no copy, no reuse).
    reuse = not same_delta and "reuse_delta" in inspect.signature(codec.encode).parameters
    kwargs = {"reuse_delta": True} if reuse else {}
    encode_s, decode_s = [], []
    for _ in range(repeats):
        given = delta if same_delta else {n: t.clone() for n, t in delta.items()}
        seconds, (payload, _) = _timed(
            device, lambda given=given: codec.encode(given, error or None, **kwargs)
        )
        del given
        encode_s.append(seconds)
        seconds, out = _timed(device, lambda p=payload: codec.decode(p, shapes, device))
        decode_s.append(seconds)
    # error of the window alone: what the receivers get against what was to be sent
    target = {n: delta[n] + error[n] if n in error else delta[n] for n in shapes}
    err = sum(_sq(out[n] - target[n]) for n in shapes)
    ref = sum(_sq(target[n]) for n in shapes)
    nbytes = payload_bytes(codec.specs(shapes))
    row: dict[str, Any] = {
        "codec": params.model_dump(),
        "compress_MBps": round(dense_mb / min(encode_s), 1),
        "decompress_MBps": round(dense_mb / min(decode_s), 1),
        "payload_bytes": nbytes,
        "bytes_per_param": round(nbytes / n_params, 5),
        "ratio_vs_fp32": round(4 * n_params / nbytes, 1),
        "relative_error": round(math.sqrt(err / ref), 4),
        "encode_reuses_delta": reuse,
        "encode_input": "the same Δ every time" if same_delta else "a fresh copy per encode",
    }
    if isinstance(params, DenseCodecParams) and device == "cpu":
        row["note"] = "dense encode of a CPU float32 tensor is a zero-copy view: no real work"
    return row


# Not a node config: the 1.2B model's block shapes (dim 2048, SwiGLU 5632, GQA 16/8) in
# two layers with the byte dataset's 256-token vocabulary, so a CPU can train it (95M
# parameters) and the real pseudo-gradient has the shapes of the Gaussian ``results``.
BLOCKS_1B2 = "1.2b-blocks"


def _real_model(model_name: str) -> torch.nn.Module:
    """``build_model`` for a node config; for ``BLOCKS_1B2`` its meta-device init inline,
    since ``build_model`` takes only a config name and this file also runs against older
    checkouts (before/after figures), which a new model helper would not reach."""
    from gauntlet.model import build_model

    if model_name != BLOCKS_1B2:
        return build_model(model_name, seed=0)
    from dataclasses import replace

    from gauntlet.model.transformer import Transformer

    with torch.device("meta"):
        model = Transformer(replace(ASSUMED_1B2, n_layers=2, vocab_size=256))
    model.to_empty(device="cpu")
    model.init_weights(torch.Generator().manual_seed(0))
    return model


def real_deltas(
    model_name: str,
    steps: int,
    device: str,
    dataset_dir: Path,
    max_tokens: int,
    cache: Path | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Shapes]:
    """Two consecutive windows' θ_start − θ_end of a fresh ``model_name`` (a node config,
    or ``BLOCKS_1B2``), ``steps`` AdamW steps each (lr 2e-3, 4 x 256 tokens) on the stdlib
    token dataset (prepared on first use): the first window's residual is carried into the
    second, as a miner does. ``cache``: a file the two Δs are saved to, or loaded from when
    it exists, so a before/after pair of runs (this file against two checkouts) encodes
    the very same tensors."""
    if cache is not None and cache.exists():
        saved = torch.load(cache, map_location=device, weights_only=True)
        first, second = saved["first"], saved["second"]
        return first, second, {n: tuple(t.shape) for n, t in second.items()}
    from gauntlet.data import ensure_dataset
    from gauntlet.model import causal_lm_loss
    from gauntlet.train.inner import InnerSettings, train_inner

    dataset = ensure_dataset(dataset_dir, page_tokens=4096, max_tokens=max_tokens)
    model = _real_model(model_name).to(device)
    pages = list(range(min(16, dataset.num_train_pages)))
    batches = list(dataset.batches(pages, seq_len=256, batch_size=4, seed=0))
    windows = []
    for w in range(2):
        result = train_inner(
            model,
            batches[w * steps : (w + 1) * steps],
            causal_lm_loss,
            InnerSettings(steps=steps, lr=2e-3),
            device=device,
        )
        windows.append(result.delta)
    if cache is not None:
        torch.save({"first": windows[0], "second": windows[1]}, cache)
    return windows[0], windows[1], {n: tuple(t.shape) for n, t in windows[1].items()}


def _sparse_inputs(
    codec: Any, payloads: list[dict[str, np.ndarray]], shapes: Shapes, device: str
) -> dict[str, tuple[ChunkLayout, torch.Tensor, torch.Tensor]]:
    """Per parameter: every peer's flat coefficient positions and dequantised values."""
    params = codec.params
    out = {}
    for name, shape in shapes.items():
        sparse = SparseCodecParams is not None and isinstance(params, SparseCodecParams)
        layout = codec._layout(shape)[0] if sparse else ChunkLayout(shape, params.chunk)
        base = torch.arange(layout.n_chunks, device=device)[:, None] * layout.chunk_elems
        positions, values = [], []
        for tensors in payloads:
            if sparse:  # packed indices and values: the codec's own readers
                idx = codec.indices(tensors, name, device)
                positions.append((base + idx).reshape(-1))
                values.append(codec.values(tensors, name, device).reshape(-1))
                continue
            idx = torch.from_numpy(tensors[f"{name}.idx"].astype(np.int64)).to(device)
            parts = {
                s: torch.from_numpy(np.array(tensors[f"{name}.{s}"])).to(device)
                for s in ("val", "lo", "scale")
                if f"{name}.{s}" in tensors
            }
            positions.append((base + idx).reshape(-1))
            values.append(dequantise(parts, params.quant).reshape(-1))
        out[name] = (layout, torch.cat(positions), torch.cat(values))
    return out


def lower_bound(
    dct: bool,
    inputs: dict[str, tuple[ChunkLayout, torch.Tensor, torch.Tensor]],
    device: str,
) -> float:
    """Seconds for one index_add_ of all peers' values plus one inverse per parameter."""

    def run() -> None:
        for layout, positions, values in inputs.values():
            zero = torch.zeros(layout.n_chunks * layout.chunk_elems, device=device)
            summed = zero.index_add_(0, positions, values)
            layout.from_chunks(summed.view(layout.n_chunks, layout.chunk_elems), dct)

    return _timed(device, run)[0]


def run_aggregate(
    params: Any, shapes: Shapes, peers: int, device: str, repeats: int, profile: bool = False
) -> dict[str, Any]:
    codec = build_codec(params)
    g = torch.Generator().manual_seed(1)
    payloads = [
        codec.encode(
            {n: (1e-3 * torch.randn(s, generator=g)).to(device) for n, s in shapes.items()}
        )[0]
        for _ in range(peers)
    ]
    inputs = _sparse_inputs(codec, payloads, shapes, device)
    dct = bool(getattr(params, "dct", False))
    bound = min(lower_bound(dct, inputs, device) for _ in range(max(2, repeats)))
    seconds = {}
    for mode in ("none", "per_peer", "clip"):
        seconds[mode] = min(
            _timed(
                device,
                lambda mode=mode: codec.decode_batch(
                    payloads, shapes, normalise=mode, clip_norm=1.0, device=device
                ),
            )[0]
            for _ in range(repeats)
        )
    report = {
        "peers": peers,
        "params": sum(math.prod(s) for s in shapes.values()),
        "aggregate_s": {m: round(s, 4) for m, s in seconds.items()},
        "lower_bound_s": round(bound, 4),
        "aggregate_over_lower_bound": {m: round(s / bound, 2) for m, s in seconds.items()},
    }
    if profile:
        report["profile"] = profile_aggregate(codec, payloads, shapes, device)
    return report


# profiler event names of a host-to-device copy and of the host waiting on the device
_HOST_TO_DEVICE = ("Memcpy HtoD",)
_WAITS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::_local_scalar_dense")


def profile_aggregate(
    codec: Any, payloads: list[dict[str, np.ndarray]], shapes: Shapes, device: str, top: int = 12
) -> dict[str, Any]:
    """Where one ``per_peer`` aggregate's time goes (``torch.profiler``, after a warm run):
    the operators called, host-to-device copies and host waits on the device counted, and
    the ``top`` events by self time on the device (on a CPU: by self CPU time). What the
    GPU's distance from the lower bound is made of, for the next change to aim at."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])

    def run() -> None:
        codec.decode_batch(payloads, shapes, normalise="per_peer", device=device)
        _sync(device)

    run()
    with profile(activities=activities) as prof:
        seconds = _timed(device, run)[0]
    events = prof.key_averages()

    def self_us(e: Any) -> float:
        return float(e.self_device_time_total if on_gpu else e.self_cpu_time_total)

    def counted(names: tuple[str, ...]) -> int:
        return sum(e.count for e in events if any(n in e.key for n in names))

    ranked = sorted(events, key=self_us, reverse=True)[:top]
    return {
        "mode": "per_peer",
        "seconds_profiled": round(seconds, 4),
        "ranked_by": "self device time" if on_gpu else "self CPU time",
        "aten_calls": sum(e.count for e in events if e.key.startswith("aten::")),
        "host_to_device_copies": counted(_HOST_TO_DEVICE),
        "host_waits": counted(_WAITS),
        "self_cpu_ms_total": round(sum(e.self_cpu_time_total for e in events) / 1e3, 3),
        "self_device_ms_total": round(
            sum(e.self_device_time_total for e in events) / 1e3 if on_gpu else 0.0, 3
        ),
        "top": [
            {
                "event": e.key,
                "count": e.count,
                "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 3),
                "self_device_ms": round(e.self_device_time_total / 1e3 if on_gpu else 0.0, 3),
            }
            for e in ranked
        ],
    }


def workspace_report(shapes: Shapes) -> dict[str, Any]:
    """The codec's kept CPU scratch buffers after every setting has encoded, decoded and
    aggregated (``gauntlet.compress.workspace``): what a node holds on top of the model,
    per slot and against the largest parameter's float32 size."""
    # imported here: checkouts older than the workspace module run the other parts
    from gauntlet.compress.workspace import kept_bytes

    kept = kept_bytes()
    largest = 4 * max(math.prod(s) for s in shapes.values())
    total = sum(kept.values())
    return {
        "kept_bytes": total,
        "largest_param_bytes": largest,
        "kept_over_largest": round(total / largest, 2),
        "slots": kept,
    }


PARTS = ("results", "real", "aggregate", "workspace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    parser.add_argument("--table", action="store_true", help="print bytes/param per model config")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--all-layers", action="store_true", help="every 1.2B layer (big)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peers", type=int, default=16, help="peers aggregated")
    parser.add_argument("--aggregate-repeats", type=int, default=2)
    parser.add_argument(
        "--real-model",
        default="small",
        help=f"model config for the real Δ, {BLOCKS_1B2!r} (two 1.2B blocks), or none",
    )
    parser.add_argument("--real-steps", type=int, default=8)
    parser.add_argument(
        "--real-cache",
        type=Path,
        default=None,
        help="save the real Δs here, or load them if the file exists (before/after pairs)",
    )
    parser.add_argument(
        "--same-delta",
        action="store_true",
        help="encode the one Δ every time (no copy, no reuse_delta): the old code's best case",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one per_peer aggregate per codec (torch.profiler): aggregate.profile",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--dataset-dir",
        type=Path,
        default=None,
        help="token dataset for the real Δ "
        "(default: the node's ~/.gauntlet/data/stdlib, prepared from the stdlib if missing)",
    )
    args = parser.parse_args()
    if args.table:
        print(json.dumps(size_table(SETTINGS), indent=2))
        return
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"unknown parts {sorted(parts - set(PARTS))}; known: {', '.join(PARTS)}")
    load_start = os.getloadavg()
    model_args = QUICK_ARGS if args.quick else ASSUMED_1B2
    every = model_shapes(model_args)
    keep = None if args.all_layers or args.quick else ("tok_embeddings.", "layers.0.", "layers.1.")
    shapes = subset(every, keep)
    repeats = 1 if args.quick else args.repeats
    report: dict[str, Any] = {
        "bench": "codec",
        "quick": args.quick,
        "shapes": "quick: dim 256, 1 block, vocab 1024"
        if args.quick
        else f"ASSUMED_1B2 {model_args}"
        + ("" if args.all_layers else "; subset: tok_embeddings + layers.0 + layers.1"),
        "params_benchmarked": sum(math.prod(s) for s in shapes.values()),
    }
    if "results" in parts:
        g = torch.Generator().manual_seed(0)
        delta = {n: (1e-3 * torch.randn(s, generator=g)).to(args.device) for n, s in shapes.items()}
        report["delta"] = "Gaussian, std 1e-3; encode carries the residual of one earlier window"
        report["results"] = {
            label: run_setting(p, delta, shapes, args.device, repeats, same_delta=args.same_delta)
            for label, p in SETTINGS.items()
        }
        del delta
    real_model = "tiny" if args.quick else args.real_model
    if "real" in parts and real_model != "none":
        report["real"] = run_real(args, real_model, repeats)
    if "aggregate" in parts:
        report["aggregate"] = aggregate_report(args)
    if "workspace" in parts:
        report["workspace"] = workspace_report(shapes)
    report["machine"] = {
        **machine_info(args.device),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


def run_real(args: argparse.Namespace, real_model: str, repeats: int) -> dict[str, Any]:
    steps = 2 if args.quick else args.real_steps
    # --quick (the test suite's run) keeps out of the node's dataset directory
    dataset_dir = args.dataset_dir or (
        Path(tempfile.gettempdir()) / "gauntlet-bench-codec"
        if args.quick
        else Path("~/.gauntlet/data/stdlib").expanduser()
    )
    first, second, real_shapes = real_deltas(
        real_model,
        steps,
        args.device,
        dataset_dir,
        300_000 if args.quick else 4_000_000,
        cache=args.real_cache,
    )
    return {
        "delta": f"θ_start − θ_end of {real_model}'s second window of {steps} AdamW steps "
        "(lr 2e-3, 4 x 256 tokens, stdlib pages), carrying the first window's residual",
        "params": sum(math.prod(s) for s in real_shapes.values()),
        "results": {
            label: run_setting(p, second, real_shapes, args.device, repeats, first, args.same_delta)
            for label, p in SETTINGS.items()
        },
    }


def aggregate_report(args: argparse.Namespace) -> dict[str, Any]:
    block = subset(model_shapes(QUICK_ARGS if args.quick else ASSUMED_1B2), ("layers.0.",))
    peers = 4 if args.quick else args.peers
    return {
        "shapes": ("quick: " if args.quick else "ASSUMED_1B2 ") + "layers.0 (one block)",
        "lower_bound": "per parameter: zeros + one index_add_ of all peers' dequantised values "
        "+ ChunkLayout.from_chunks (inputs prepared untimed)",
        "results": {
            label: run_aggregate(
                SETTINGS[label], block, peers, args.device, args.aggregate_repeats, args.profile
            )
            for label in AGGREGATE_SETTINGS
            if label in SETTINGS
        },
    }


if __name__ == "__main__":
    main()
