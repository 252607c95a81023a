"""The synthetic window bench/validator.py times the validator's code on: a dataset of
random text, a config per model, and signed miner contributions in a filesystem bucket,
each fetched and opened through the validator's own gather path.

Each synthetic peer's Δ is one gradient step on its own pages (``--delta gradient``: it
lowers the loss on every page, like an honest update early in training, so the window's
controls take part) or random noise (``--delta gaussian``, RMS ``--delta-std``: it helps
no page, so no control is measured), compressed with the network's codec.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gauntlet.compress.codec import Codec, param_shapes
from gauntlet.config.schema import GauntletConfig
from gauntlet.data import PageDataset, prepare_dataset
from gauntlet.model import causal_lm_loss
from gauntlet.node.gather import Decoder, open_payload
from gauntlet.node.peers import Peer
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.train.fingerprint import fingerprint
from protocol.assignment import assign_pages
from protocol.container import Limits, encode_payload
from protocol.keys import contribution_key
from protocol.schemas import CodecParams, ContributionManifest
from protocol.signing import keypair_from_uri

WINDOW = 7  # any window: it seeds pages and fingerprints, nothing depends on its value
SECRET = bytes(range(32))
MIN_TRAIN_PAGES = 64  # pages in the synthetic dataset that miners may be assigned


@dataclass(frozen=True)
class EvalSettings:
    """Per model: what one loss measurement reads (validator.* and train.seq_len)."""

    eval_batches: int
    eval_batch_size: int
    seq_len: int
    peers: int
    repeats: int  # timed runs of the shared part and of evaluate_peers; the fastest is kept


@dataclass(frozen=True)
class BenchNode:
    """The four things evaluation reads of a node (``gauntlet.node.evaluation.EvalNode``)."""

    config: GauntletConfig
    dataset: PageDataset
    model: nn.Module
    device: torch.device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_dataset(root: Path, page_tokens: int, train_pages: int, validation_pages: int) -> Path:
    """Random printable bytes, byte tokenizer: train + validation pages of ``page_tokens``."""
    pages = train_pages + validation_pages
    rng = random.Random(0)
    text = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz .,\n", k=pages * page_tokens))
    (root / "corpus").mkdir()
    (root / "corpus" / "random.txt").write_text(text)
    out = root / "data"
    prepare_dataset(
        [root / "corpus"],
        out,
        page_tokens=page_tokens,
        validation_fraction=validation_pages / pages,
        max_tokens=pages * page_tokens,
    )
    return out


def build_config(
    model: str, device: str, s: EvalSettings, args: argparse.Namespace
) -> GauntletConfig:
    overrides: dict[str, Any] = {
        "model": {"name": model},
        "train": {"device": device, "seq_len": s.seq_len},
        "validator": {
            "eval_batches": s.eval_batches,
            "eval_batch_size": s.eval_batch_size,
            "validation_pages": args.validation_pages,
            **({"random_pages": args.random_pages} if args.random_pages else {}),
        },
        "data": {"pages_per_window": args.pages_per_window},
        "compress": {"codec": args.codec, **({"topk": args.topk} if args.topk else {})},
    }
    return GauntletConfig.model_validate(overrides)


def page_tokens_for(s: EvalSettings, pages_per_window: int) -> int:
    """Pages large enough that a peer's own pages fill ``eval_batches`` full batches."""
    needed = s.eval_batches * s.eval_batch_size * (s.seq_len + 1)
    return max(4096, math.ceil(needed / pages_per_window))


def gradient_delta(node: BenchNode, pages: list[int], rms: float) -> dict[str, torch.Tensor]:
    """One gradient step on one batch of ``pages``, scaled to an RMS of ``rms`` per
    parameter: applied as θ − outer_lr·Δ it lowers the loss on most text at a fresh
    model, as an honest update does early in training."""
    cfg = node.config
    batch = next(
        iter(
            node.dataset.batches(
                pages, seq_len=cfg.train.seq_len, batch_size=cfg.validator.eval_batch_size, seed=0
            )
        )
    )
    node.model.zero_grad(set_to_none=True)
    causal_lm_loss(node.model, batch.to(node.device)).backward()
    grads = {n: p.grad.detach().float().cpu() for n, p in node.model.named_parameters()}
    node.model.zero_grad(set_to_none=True)
    total = math.sqrt(sum(float(g.pow(2).sum()) for g in grads.values()))
    count = sum(g.numel() for g in grads.values())
    scale = rms * math.sqrt(count) / max(total, 1e-12)
    return {n: g * scale for n, g in grads.items()}


def contribution(
    node: BenchNode, codec: Codec, uid: int, args: argparse.Namespace, gen: torch.Generator
) -> tuple[Peer, bytes, list[int]]:
    """A miner's signed payload for WINDOW (Δ per ``--delta``); returns its peer, bytes, pages."""
    cfg = node.config
    keypair = keypair_from_uri(f"//bench/validator/{uid}")
    pages = assign_pages(
        netuid=cfg.chain.netuid,
        uid=uid,
        hotkey=keypair.ss58_address,
        window=WINDOW,
        dataset_id=node.dataset.dataset_id,
        num_pages=node.dataset.num_train_pages,
        pages_per_window=cfg.data.pages_per_window,
    )
    if args.delta == "gradient":
        delta = gradient_delta(node, pages, args.delta_std)
    else:
        delta = {
            name: args.delta_std * torch.randn(p.shape, generator=gen)
            for name, p in node.model.named_parameters()
        }
    tensors, _ = codec.encode(delta)
    manifest = ContributionManifest(
        netuid=cfg.chain.netuid,
        window=WINDOW,
        uid=uid,
        hotkey=keypair.ss58_address,
        model=cfg.model.name,
        fingerprint=fingerprint(node.model, WINDOW),
        page_ids=pages,
        codec=CodecParams(codec.params),
        tensors_sha256="0" * 64,  # filled in by encode_payload
    )
    data = encode_payload(tensors, manifest, keypair)
    return Peer(uid, keypair.ss58_address, None), data, pages


async def fetch_all(
    node: BenchNode, codec: Codec, peers: list[Peer], store: FilesystemStore, limits: Limits
) -> tuple[list[Any], list[float]]:
    """Each peer through the validator's gather path, one at a time; (contributions, seconds)."""
    shapes = param_shapes(node.model)
    out, times = [], []
    for peer in peers:
        sync(node.device)
        t = time.perf_counter()
        data = await store.get(contribution_key(WINDOW, peer.hotkey), max_bytes=limits.max_bytes)
        decoder = Decoder(node.config.chain.netuid, limits, codec, shapes, node.device)
        c = open_payload(peer.uid, peer.hotkey, WINDOW, data, decoder)
        sync(node.device)
        times.append(time.perf_counter() - t)
        if not c.ok:
            raise RuntimeError(f"synthetic contribution {peer.uid} rejected: {c.status} {c.reason}")
        out.append(c)
    return out, times


def timed(device: torch.device, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    sync(device)
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    sync(device)
    return result, time.perf_counter() - t
