"""Validator cost per evaluated peer, and how many peers fit in a window, per model config.

The validator's own code runs, timed, on a synthetic window of signed contributions in a
filesystem bucket (bench/validator_window.py: each peer's Δ is a gradient step on its own
pages by default, so the window's controls take part as in a real window):

- ``open_s`` (every valid contribution): a store GET and ``gauntlet.node.gather.open_payload``:
  read, container and signature checks, sha256 and codec validation (no dense decode);
- ``measure_s`` (every valid contribution): ``gauntlet.node.checks.measure_updates``, the
  update's L2 norm and its count-sketch for copy and replay detection, read from the
  payload without decoding it, every contribution's at once (as the node does), divided
  by their number;
- ``decode_s`` (up to twice per evaluated peer): ``gauntlet.node.gather.decode_update``,
  the dense update from the validated payload, its alignment with the last aggregate
  lowered to the window's median (``gauntlet.node.measured_update.measured_update``, as
  the validator does with ``validator.measure_novel``; the sum of two contributions
  stands in for the aggregate);
- ``align_s`` (per evaluated peer): ``gauntlet.node.measured_update.update_cosines``,
  each update's cosine with the last aggregate read from its payload (the last
  aggregate transformed once per parameter for all; no decode), whose median is the
  most any is measured with;
- ``evaluate_s`` (per evaluated peer): ``gauntlet.node.evaluation.evaluate_peers``
  minus its shared part: loss on the peer's own pages before, apply its Δ
  alone, loss on its own pages and on the secret random pages after, restore θ_w,
  then its own batches shared out among the control updates (``validator.control_updates``);
  each update is given as the validator gives it, a function that decodes it when it is
  applied (one dense update held at a time); ``forwards_per_peer`` (in passes of
  ``eval_batches`` batches), ``applies_per_peer`` and ``decodes_per_peer`` count the
  measurements, apply/restore pairs and decodes it made, ``forward_s`` and ``apply_s``
  time one of each, and ``evaluate_model_s`` = forwards × forward_s + applies × apply_s
  + decodes × decode_s checks that they account for ``evaluate_s``;
- ``shared_before_s`` (once per window): the snapshot of θ_w and the loss on
  the secret random pages before any update, i.e. what ``evaluate_peers`` does
  once for all peers (timed by calling the same functions);
- ``validation_s`` (once per window): the global validation loss before and
  after the outer step (two ``loss_on`` over ``validator.validation_pages``).

Memory: the checks decode no update, and ``updates_held_evaluation`` counts the decoded
updates alive at once during ``evaluate_peers`` (one: it does not grow with ``--peers``),
of ``update_mb`` each; on a GPU ``evaluate_peak_gpu_mb`` is how far allocated memory
peaked above where it stood during ``evaluate_peers`` (the snapshot of θ_w, one update,
activations).

Peers a validator can fully handle (fetch, check and evaluate) in one window:

    per_peer_s       = open_s + measure_s + align_s + evaluate_s
    evaluate_s      ~= forwards_per_peer x forward_s + applies_per_peer x apply_s
                       + decodes_per_peer x decode_s
    forwards_per_peer = 4 (own before, own after, random after; the controls share one)
    fixed_s          = shared_before_s + validation_s
    peers_per_window = floor(max(0, window_seconds - fixed_s) / per_peer_s)

Not counted: chain and network waits, the aggregate and outer step, weights,
state and journal writes (all small next to the losses). A valid contribution
that is not evaluated still costs ``open_s + measure_s``.

Window budgets (``--window-seconds``, repeatable) default to the localnet's
(blocks_per_window x localnet.block_time) and a Bittensor network's
(blocks_per_window x 12 s); the validator evaluates window w during w+1, so it
has one window's time for it.

    .venv/bin/python bench/validator.py                      # CPU: tiny and 150m
    .venv/bin/python bench/validator.py --models tiny --peers 2 --eval-batches 1
    python bench/validator.py --device cuda                  # 150m and 1.2b, bf16 autocast
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from bench.validator_window import (  # noqa: E402
    MIN_TRAIN_PAGES,
    SECRET,
    WINDOW,
    BenchNode,
    EvalSettings,
    build_config,
    contribution,
    fetch_all,
    make_dataset,
    page_tokens_for,
    timed,
)
from gauntlet.compress.codec import build_codec, param_shapes  # noqa: E402
from gauntlet.config.schema import GauntletConfig  # noqa: E402
from gauntlet.model import MODEL_CONFIGS  # noqa: E402
from gauntlet.node import evaluation  # noqa: E402
from gauntlet.node.checks import measure_updates  # noqa: E402
from gauntlet.node.evaluation import evaluate_peers, loss_on, secret_pages  # noqa: E402
from gauntlet.node.gather import Decoder, decode_update  # noqa: E402
from gauntlet.node.measured_update import (  # noqa: E402
    measured_update,
    update_cosines,
    window_limits,
)
from gauntlet.node.runtime import load_data_and_model  # noqa: E402
from gauntlet.storage.filesystem import FilesystemStore  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402
from gauntlet.train.outer import applied  # noqa: E402
from protocol.container import Limits  # noqa: E402
from protocol.keys import contribution_key  # noqa: E402

BITTENSOR_BLOCK_SECONDS = 12.0  # Aura slot duration on finney and testnet

# CPU defaults keep the whole run near 2-3 minutes on 2 cores; GPU defaults are
# a realistic validator (config defaults for batches, full 2048-token sequences).
CPU_DEFAULTS = {
    "tiny": EvalSettings(eval_batches=4, eval_batch_size=8, seq_len=128, peers=4, repeats=3),
    "150m": EvalSettings(eval_batches=2, eval_batch_size=8, seq_len=128, peers=2, repeats=1),
}
GPU_DEFAULTS = {
    "tiny": EvalSettings(eval_batches=4, eval_batch_size=8, seq_len=128, peers=4, repeats=3),
    "150m": EvalSettings(eval_batches=4, eval_batch_size=8, seq_len=2048, peers=4, repeats=2),
    "1.2b": EvalSettings(eval_batches=4, eval_batch_size=8, seq_len=2048, peers=4, repeats=2),
}
FALLBACK = EvalSettings(eval_batches=1, eval_batch_size=4, seq_len=128, peers=2, repeats=1)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Held:
    """Decoded updates alive at once (each is counted until its tensors are freed)."""

    def __init__(self) -> None:
        self.alive = 0
        self.most = 0

    def track(self, delta: Any) -> Any:
        self.alive += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(next(iter(delta.values())), self._freed)
        return delta

    def _freed(self) -> None:
        self.alive -= 1


def gpu_peak_above(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float | None]:
    """``fn()`` and how far allocated GPU memory peaked above where it stood, in MiB (None
    on a CPU, whose allocator keeps no such count)."""
    if device.type != "cuda":
        return fn(), None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    return result, round((torch.cuda.max_memory_allocated(device) - before) / 2**20, 1)


class Counter:
    """Counts what ``evaluate_peers`` measures: batches through the model and apply/restore
    pairs (wrapping the functions it calls, which are not changed), and the decodes of the
    updates it is given (:meth:`decoding`)."""

    def __init__(self) -> None:
        self.batches = 0
        self.applies = 0
        self.decodes = 0
        self.held = Held()

    def decoding(
        self, contribution: Any, decoder: Decoder, last: Any, limit: float | None
    ) -> Callable[[], Any]:
        """The update as the validator gives it to evaluation: decoded when applied, its
        alignment with the last aggregate ``last`` lowered to ``limit``."""

        def decode() -> Any:
            self.decodes += 1
            return self.held.track(measured_update(contribution, decoder, 1.0, last, limit))

        return decode

    @contextmanager
    def counting(self) -> Iterator[None]:
        original_losses: Callable[..., list[float]] = evaluation.batch_losses
        original_applied = evaluation.applied

        def losses(*args: Any, **kwargs: Any) -> list[float]:
            out = original_losses(*args, **kwargs)
            self.batches += len(out)
            return out

        def apply(*args: Any, **kwargs: Any) -> Any:
            self.applies += 1
            return original_applied(*args, **kwargs)

        evaluation.batch_losses, evaluation.applied = losses, apply  # type: ignore[assignment]
        try:
            yield
        finally:
            evaluation.batch_losses, evaluation.applied = original_losses, original_applied


def bench_model(
    model: str, device: str, s: EvalSettings, args: argparse.Namespace, budgets: dict[str, float]
) -> dict[str, Any]:
    config = build_config(model, device, s, args)
    with tempfile.TemporaryDirectory(prefix="gauntlet-bench-validator-") as tmp:
        root = Path(tmp)
        page_tokens = page_tokens_for(s, args.pages_per_window)
        train_pages = max(MIN_TRAIN_PAGES, config.validator.random_pages)
        data_dir = make_dataset(root, page_tokens, train_pages, args.validation_pages)
        data = {"dataset_dir": str(data_dir), "page_tokens": page_tokens}  # as made
        config = config.model_copy(update={"data": config.data.model_copy(update=data)})
        dataset, net = load_data_and_model(config, torch.device(device))
        node = BenchNode(config, dataset, net, torch.device(device))
        codec = build_codec(config.compress.codec_params(), error_decay=1.0)
        gen = torch.Generator().manual_seed(0)
        store = FilesystemStore(root / "buckets", "miners")
        peers, pages_of, largest = [], {}, 0
        for uid in range(1, s.peers + 1):
            peer, data, pages = contribution(node, codec, uid, args, gen)
            asyncio.run(store.put(contribution_key(WINDOW, peer.hotkey), data))
            peers.append(peer)
            pages_of[uid] = pages
            largest = max(largest, len(data))
        limits = Limits(max_bytes=max(config.storage.max_payload_bytes, largest))
        contributions, open_times = asyncio.run(fetch_all(node, codec, peers, store, limits))
        decoder = Decoder(config.chain.netuid, limits, codec, param_shapes(net), node.device)
        # the checks' norms and sketches, read from every payload together (as the node does)
        measure_total_s = timed(
            node.device, measure_updates, contributions, decoder, config.scoring
        )[1]
        # the last aggregate, as a sum of two contributions (along no single one of them)
        last = decode_update(contributions[0], decoder)
        if len(contributions) > 1:
            for name, t in decode_update(contributions[-1], decoder).items():
                last[name].add_(t)
        cosines, align_total_s = timed(node.device, update_cosines, contributions, decoder, last)
        limit, above = window_limits(cosines)
        limits = dict.fromkeys(above, limit)  # as the validator: only those above are lowered
        decode_times = [
            timed(node.device, measured_update, c, decoder, 1.0, last, limits.get(c.uid))[1]
            for c in contributions
        ]
        validation = dataset.validation_page_ids()[: config.validator.validation_pages]
        loss_on(node, validation, seed=0)  # warm-up: thread pools, allocator, kernels
        _, val_before = timed(node.device, loss_on, node, validation, seed=0)
        _, val_after = timed(node.device, loss_on, node, validation, seed=0)

        def shared_before() -> float:
            snapshot(node.model)
            return loss_on(node, secret_pages(node, SECRET, WINDOW), seed=WINDOW)

        shared_s, total_s, forward_s, apply_s = math.inf, math.inf, math.inf, math.inf
        random = secret_pages(node, SECRET, WINDOW)
        base = snapshot(node.model)
        first = decode_update(contributions[0], decoder)
        lr = config.train.outer_lr
        for _ in range(s.repeats):
            shared_s = min(shared_s, timed(node.device, shared_before)[1])
            forward_s = min(forward_s, timed(node.device, loss_on, node, random, WINDOW)[1])
            apply_s = min(apply_s, timed(node.device, _apply_restore, node, first, lr, base)[1])
            counter = Counter()
            updates = {
                c.uid: (pages_of[c.uid], counter.decoding(c, decoder, last, limits.get(c.uid)))
                for c in contributions
            }
            with counter.counting():
                (evaluations, seconds), evaluate_peak_gpu_mb = gpu_peak_above(
                    node.device,
                    lambda updates=updates: timed(
                        node.device, evaluate_peers, node, WINDOW, SECRET, updates
                    ),
                )
            total_s = min(total_s, seconds)
        params = sum(p.numel() for p in net.parameters())
    open_s = statistics.mean(open_times)
    measure_s = measure_total_s / len(contributions)
    decode_s = statistics.mean(decode_times)
    evaluate_s = max(total_s - shared_s, 0.0) / len(updates)
    # evaluate_peers measures the random pages before once for every peer: the rest is
    # theirs, in passes of eval_batches batches (a control's share is a part of one)
    forwards_per_peer = (counter.batches / s.eval_batches - 1) / len(updates)
    applies_per_peer = counter.applies / len(updates)
    decodes_per_peer = counter.decodes / len(updates)
    align_s = align_total_s / len(contributions)
    per_peer_s = open_s + measure_s + align_s + evaluate_s
    fixed_s = shared_s + val_before + val_after
    tokens_per_loss = s.eval_batches * s.eval_batch_size * s.seq_len
    return {
        "model": model,
        "params": params,
        "codec": codec.params.model_dump(),
        "payload_bytes": largest,
        "peers_timed": len(updates),
        "repeats": s.repeats,
        "eval_batches": s.eval_batches,
        "eval_batch_size": s.eval_batch_size,
        "seq_len": s.seq_len,
        "tokens_per_loss": tokens_per_loss,
        "pages_per_window": args.pages_per_window,
        "page_tokens": page_tokens,
        "validation_pages": args.validation_pages,
        "random_pages": config.validator.random_pages,
        "open_s": round(open_s, 4),
        "measure_s": round(measure_s, 4),
        "align_s": round(align_s, 4),
        "decode_s": round(decode_s, 4),
        "evaluate_s": round(evaluate_s, 4),
        "delta": args.delta,
        "forwards_per_peer": round(forwards_per_peer, 3),
        "applies_per_peer": round(applies_per_peer, 3),
        "decodes_per_peer": round(decodes_per_peer, 3),
        "update_mb": round(4 * params / 2**20, 1),
        "updates_held_evaluation": counter.held.most,
        "evaluate_peak_gpu_mb": evaluate_peak_gpu_mb,
        "forward_s": round(forward_s, 4),
        "apply_s": round(apply_s, 4),
        "evaluate_model_s": round(
            forwards_per_peer * forward_s
            + applies_per_peer * apply_s
            + decodes_per_peer * decode_s,
            4,
        ),
        "per_peer_s": round(per_peer_s, 4),
        "shared_before_s": round(shared_s, 4),
        "validation_s": round(val_before + val_after, 4),
        "fixed_s": round(fixed_s, 4),
        "evaluate_peers_total_s": round(total_s, 4),
        "peers_per_window": {
            name: max(0, math.floor((seconds - fixed_s) / per_peer_s))
            for name, seconds in budgets.items()
        },
        "losses_first_peer": {
            k: round(v, 4)
            for k, v in dataclasses.asdict(evaluations[min(evaluations)]).items()
            if k in ("own_before", "own_after", "random_before", "random_after")
        },
    }


def _apply_restore(node: BenchNode, delta: Any, lr: float, base: Any) -> None:
    with applied(node.model, delta, lr, base):
        pass


def window_budgets(args: argparse.Namespace) -> dict[str, float]:
    if args.window_seconds:
        return {f"{w:g}s": w for w in args.window_seconds}
    cfg = GauntletConfig()
    bpw = cfg.chain.blocks_per_window
    return {
        f"localnet ({bpw} x {cfg.localnet.block_time:g} s)": bpw * cfg.localnet.block_time,
        f"bittensor ({bpw} x {BITTENSOR_BLOCK_SECONDS:g} s)": bpw * BITTENSOR_BLOCK_SECONDS,
    }


def settings_for(model: str, cuda: bool, args: argparse.Namespace) -> EvalSettings:
    base = (GPU_DEFAULTS if cuda else CPU_DEFAULTS).get(model, FALLBACK)
    return EvalSettings(
        eval_batches=args.eval_batches or base.eval_batches,
        eval_batch_size=args.eval_batch_size or base.eval_batch_size,
        seq_len=args.seq_len or base.seq_len,
        peers=args.peers or base.peers,
        repeats=args.repeats or base.repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--window-seconds", type=float, action="append", help="window budget")
    parser.add_argument("--peers", type=int, help="synthetic peers evaluated (>= 1)")
    parser.add_argument("--repeats", type=int, help="timed evaluations, fastest kept")
    parser.add_argument("--eval-batches", type=int, help="validator.eval_batches")
    parser.add_argument("--eval-batch-size", type=int, help="validator.eval_batch_size")
    parser.add_argument("--seq-len", type=int, help="train.seq_len (evaluation uses it too)")
    parser.add_argument("--pages-per-window", type=int, default=2, help="data.pages_per_window")
    parser.add_argument(
        "--validation-pages", type=int, default=4, help="validator.validation_pages"
    )
    parser.add_argument("--random-pages", type=int, help="validator.random_pages")
    parser.add_argument("--codec", choices=["topk", "dense"], default="topk", help="compress.codec")
    parser.add_argument("--topk", type=int, help="compress.topk (default: the config's)")
    parser.add_argument(
        "--delta",
        choices=["gradient", "gaussian"],
        default="gradient",
        help="synthetic Δ: a gradient step on the peer's pages (controls take part) or noise",
    )
    parser.add_argument(
        "--delta-std", type=float, default=1e-3, help="RMS of the synthetic Δ per parameter"
    )
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA GPU is visible")
    for flag in ("peers", "repeats", "eval_batches", "eval_batch_size", "seq_len", "random_pages"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    models = args.models or (["150m", "1.2b"] if cuda else ["tiny", "150m"])
    budgets = window_budgets(args)
    # A busy neighbour on a shared host slows every timing; the load says how busy it was.
    host = {**machine_info(args.device), "load_average_at_start": _load()}
    results = [
        bench_model(name, args.device, settings_for(name, cuda, args), args, budgets)
        for name in models
    ]
    report = {
        "bench": "validator",
        "step": "per peer: get + open_payload (verify + validate), measure_updates (norm and "
        "sketch from the payload, no decode), update_cosines (cosine with the "
        "last aggregate from the payload, no decode), evaluate_peers (own before, own after and "
        "random after with its Δ alone, decoded when applied; own batches shared out among "
        "the control updates); once: snapshot + random before, validation loss before and "
        "after the outer step",
        "formula": "peers_per_window = floor(max(0, window_seconds - fixed_s) / per_peer_s); "
        "per_peer_s = open_s + measure_s + align_s + evaluate_s; "
        "evaluate_s ~= forwards_per_peer * forward_s + applies_per_peer * apply_s "
        "+ decodes_per_peer * decode_s; "
        "fixed_s = shared_before_s + validation_s",
        "autocast": "bf16 on cuda, fp32 on cpu",
        "window_seconds": budgets,
        "machine": {**host, "load_average_at_end": _load()},
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
