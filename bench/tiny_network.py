"""What the tiny-network benches (carry.py, measure_norm.py) share; import after the
sys.path line: their options and node (the tiny model, the localnet's codec settings, the
stdlib pages), a miner's update trained on pages from the shared model, its upload through
the codec with its own error feedback as the validators decode it, the loss with one
update applied alone, and the outer step."""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import torch

from bench.stdlib_pages import add_dataset_options, parse_and_open
from bench.validator_window import BenchNode
from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.config.schema import GauntletConfig
from gauntlet.model import build_model, causal_lm_loss
from gauntlet.node.evaluation import losses_on
from gauntlet.train.inner import InnerSettings, snapshot, train_inner
from gauntlet.train.outer import applied, apply_delta, restore

Delta = dict[str, torch.Tensor]


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """The options every tiny-network bench takes: the measurement, the codec, the data."""
    parser.add_argument("--eval-batches", type=int, default=8, help="random-page batches")
    parser.add_argument("--topk", type=int, default=GauntletConfig().localnet.topk)
    add_dataset_options(parser)


def open_node(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, BenchNode]:
    """The command line (with :func:`add_network_options`) and a CPU node holding the tiny
    model (seeded by ``--seed``), the localnet's codec settings and the stdlib pages."""
    args, dataset = parse_and_open(parser)
    config = GauntletConfig.model_validate(
        {"compress": {"topk": args.topk}, "validator": {"eval_batches": args.eval_batches}}
    )
    model = build_model(config.model.name, args.seed)
    return args, BenchNode(config, dataset, model, torch.device("cpu"))


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """A run's command line as its report prints it."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def train_update(node: BenchNode, pages: list[int], seed: int, base: Delta) -> Delta:
    """One pass of the inner optimiser over ``pages`` (batches cut with ``seed``) from
    ``base``, the model restored to ``base`` after: the miner's pseudo-gradient."""
    cfg = node.config.train
    batches = list(
        node.dataset.batches(pages, seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=seed)
    )
    result = train_inner(
        node.model, batches, causal_lm_loss, InnerSettings(len(batches), cfg.inner_lr)
    )
    restore(node.model, base)
    return result.delta


class Uploads:
    """The network's codec and each miner's residual (``compress.error_decay``)."""

    def __init__(self, node: BenchNode) -> None:
        compress = node.config.compress
        self.codec = build_codec(compress.codec_params(), error_decay=compress.error_decay)
        self.shapes = param_shapes(node.model)
        self.residual: dict[Hashable, Delta | None] = {}

    def reset(self, miner: Hashable) -> None:
        """Drop ``miner``'s residual: its next upload sends only what it trained."""
        self.residual[miner] = None

    def decoded(self, miner: Hashable, delta: Delta) -> Delta:
        """What the validators decode of ``miner``'s upload of ``delta``; keeps what the
        codec left out as its next residual."""
        tensors, residual = self.codec.encode(delta, self.residual.get(miner))
        self.residual[miner] = residual
        return self.codec.decode(tensors, self.shapes)


def mean_loss(node: BenchNode, pages: list[int], seed: int, update: Delta | None = None) -> float:
    """Mean loss (nats/token) on ``pages`` (batches cut with ``seed``), with ``update``
    applied alone at ``train.outer_lr`` when given (the model restored after)."""
    if update is None:
        return statistics.mean(losses_on(node, pages, seed))
    with applied(node.model, update, node.config.train.outer_lr, snapshot(node.model)):
        return statistics.mean(losses_on(node, pages, seed))


def scaled(update: Delta, scale: float) -> Delta:
    """``update`` times ``scale`` (a new dict of new tensors)."""
    return {k: t * scale for k, t in update.items()}


def mean_update(updates: list[Delta]) -> Delta:
    """The element-wise mean of ``updates`` (the window's aggregate, unnormalised)."""
    return {k: torch.stack([u[k] for u in updates]).mean(0) for k in updates[0]}


def step(node: BenchNode, updates: list[Delta]) -> None:
    """The outer step: the model moves by the mean of ``updates`` at ``train.outer_lr``."""
    apply_delta(node.model, mean_update(updates), node.config.train.outer_lr)


def first_order_gains(
    node: BenchNode, pages: list[int], seed: int, deltas: Mapping[Hashable, Delta]
) -> dict[Hashable, float]:
    """Each update's gain on ``pages`` to first order, ``lr · <g, Δ>`` (nats/token), from
    the gradient ``g`` of their loss at the model as it is: one forward and backward pass
    for all the updates (the batches ``losses_on`` cuts with ``seed``) instead of one
    forward each. Used by bench/controls.py and bench/marginal_gain.py."""
    model, config = node.model, node.config
    batches = node.dataset.batches(
        pages,
        seq_len=config.train.seq_len,
        batch_size=config.validator.eval_batch_size,
        seed=seed,
    )
    model.eval()
    model.zero_grad(set_to_none=True)
    count, lr = config.validator.eval_batches, config.train.outer_lr
    for batch in itertools.islice(batches, count):
        (causal_lm_loss(model, batch) / count).backward()
    grad = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    gains = {u: lr * sum(float((grad[k] * d[k]).sum()) for k in grad) for u, d in deltas.items()}
    model.zero_grad(set_to_none=True)
    model.train()
    return gains
