"""Designs of the own-page advantage's control, compared on the same updates.

The control predicts what an update that did not train on a miner's own pages does for
them (docs/scoring.md, "Own-page advantage"). This script measures, on a real tiny
model and the stdlib pages, the own-page advantage of honest miners (trained on their
pages) and of wrong-data miners (trained on pages far from all their own, declaring their
assigned ones) under three designs, from one matrix of measurements:

- ``every batch``: ``--before-controls`` (2) controls, each measured on all own batches
  (the design before issue 18: 2 extra passes per peer);
- ``shared out``: ``validator.control_updates`` (4) controls, the own batches shared out
  among them (``gauntlet.score.control.batch_shares``: one extra pass per peer; four in all);
- ``two passes``: the shared-out design on the first half of every measurement's batches
  (own before and after, the control, the random pages): the two forward-pass equivalents
  per peer that issue 18 asked for, bought with half the tokens, so the cost of that budget
  in the advantages' noise shows beside the others (controls qualify and are drawn from the
  half-measured random gains, as they would be);
- ``update-scaled``: three passes, no loss before: each shared-out control's *update* is
  multiplied by the strength ratio (instead of its measured improvement, which needs the
  own pages' loss before), exact random gains;
- ``linear two``: two passes per peer, all the rest shared: the update-scaled control with
  every random gain taken to first order, ``lr · <g, Δ>``, from one gradient ``g`` of the
  random pages' loss at θ_w for the whole window. ``random_gains`` prints how well those
  first-order gains follow the measured ones on the same updates (means, Pearson and rank
  correlation).
- ``marginal three``: three passes per peer (own before, own after, the shared-out
  control), the random pages measured where an update lands rather than alone: each
  update's marginal gain to the window's aggregate, to first order, ``lr · <g, Δ_i> / N``
  from one gradient ``g`` of the random pages' loss at ``θ_w − lr · mean_j Δ_j`` (one
  forward and backward for the window; bench/marginal_gain.py measured it against leave
  one out). Those gains pick the controls (``strong_controls``) and scale them
  (``strength_ratio``), as the exact gains alone do in ``shared out``; ``marginal_gains``
  prints them for honest and wrong-data updates.
- ``matched three``: three passes per peer (own after, random after, the shared-out
  control), no loss before: the controls are drawn (secretly, as ``control_peers`` draws)
  from the ``2 × --controls`` strong updates nearest the miner's in random gain (by the
  ratio of the gains), and each one's loss is the prediction unscaled, so the strength
  correction is made by choosing rather than by scaling (``scaled_control`` with a ratio
  of 1 needs no loss before: ``b - (b - a) = a``).

The controls of both are drawn as the validator draws them (``control_peers``: the
secret's first 2 are among its first 4). Each trial is one window: fresh page
assignments, ``--honest`` honest updates and ``--wrong`` wrong-data ones from the same
model, at the median norm (as the aggregate scales them; on the random pages ``--random-step``
times it, ``validator.random_step``). ``--warm-steps`` trains the
shared model first, so gains are those of a later window. Printed per design: the wrong-
data advantages' mean, standard deviation, maximum and the fraction above the indicator
margin (per page: ``n · A > margin``), the honest ones' mean and minimum, and
``separation``: the fraction of (honest, wrong-data) pairs the honest advantage wins.
``--eval-batches 8 --eval-batch-size 4`` cuts the node's tokens finer, so the half-token
``two passes`` keeps all four controls.

    .venv/bin/python bench/controls.py                  # ~1-2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from bench.stdlib_pages import add_dataset_options, parse_and_open  # noqa: E402
from bench.tiny_network import first_order_gains, mean_update  # noqa: E402
from bench.validator import BenchNode  # noqa: E402
from gauntlet.config.schema import GauntletConfig  # noqa: E402
from gauntlet.localnet.behaviours import far_pages  # noqa: E402
from gauntlet.localnet.results import spearman  # noqa: E402
from gauntlet.model import build_model, causal_lm_loss  # noqa: E402
from gauntlet.node.evaluation import (  # noqa: E402
    control_peers,
    losses_on,
    own_batch_seed,
    secret_pages,
)
from gauntlet.score.control import (  # noqa: E402
    batch_shares,
    scaled_control,
    strength_ratio,
    strong_controls,
)
from gauntlet.train.inner import InnerSettings, snapshot, train_inner  # noqa: E402
from gauntlet.train.outer import applied, restore  # noqa: E402

PAGES_PER_MINER = 2
DESIGNS = (
    "every batch",
    "shared out",
    "two passes",
    "update-scaled",
    "linear two",
    "marginal three",
    "matched three",
)


def _train(node: BenchNode, pages: list[int], steps: int, seed: int) -> dict[str, torch.Tensor]:
    base = snapshot(node.model)
    batches = node.dataset.batches(pages, seq_len=64, batch_size=8, seed=seed)
    result = train_inner(node.model, batches, causal_lm_loss, InnerSettings(steps=steps, lr=3e-3))
    restore(node.model, base)
    return result.delta


def _at_median_norm(deltas: dict[int, dict[str, torch.Tensor]]) -> dict[int, dict]:
    norms = {u: math.sqrt(sum(float(t.norm()) ** 2 for t in d.values())) for u, d in deltas.items()}
    median = statistics.median(norms.values())
    return {u: {k: t * median / norms[u] for k, t in d.items()} for u, d in deltas.items()}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def one_window(
    node: BenchNode, rng: random.Random, trial: int, args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """Advantages of every miner of one window under both designs."""
    n_pages = node.dataset.num_train_pages
    miners = args.honest + args.wrong
    starts = rng.sample(range(0, n_pages - 1, PAGES_PER_MINER), miners)
    declared = {u: [s, s + 1] for u, s in enumerate(starts)}
    wrong = set(range(args.honest, miners))
    trained = {u: far_pages(declared[u], n_pages) if u in wrong else declared[u] for u in declared}
    deltas = _at_median_norm(
        {u: _train(node, trained[u], args.steps, trial * 100 + u) for u in declared}
    )
    secret = trial.to_bytes(32, "big")
    window = trial + 1
    base = snapshot(node.model)
    lr = node.config.train.outer_lr
    random_pages = secret_pages(node, secret, window)
    random_before = losses_on(node, random_pages, window)
    half = max(1, len(random_before) // 2)
    seeds = {u: own_batch_seed(secret, window, u) for u in declared}
    before = {u: losses_on(node, declared[u], seeds[u]) for u in declared}
    after, gains, half_gains = {}, {}, {}
    for u in declared:
        with applied(node.model, deltas[u], lr, base):
            after[u] = losses_on(node, declared[u], seeds[u])
        with applied(node.model, deltas[u], lr * args.random_step, base):
            random_after = losses_on(node, random_pages, window)
        gains[u] = _mean(random_before) - _mean(random_after)
        half_gains[u] = _mean(random_before[:half]) - _mean(random_after[:half])
    strong, half_strong = strong_controls(gains), strong_controls(half_gains)
    drawn = {u: control_peers(secret, window, u, strong, args.controls) for u in declared}
    half_drawn = {u: control_peers(secret, window, u, half_strong, args.controls) for u in declared}
    marginal = _marginal_gains(node, random_pages, window, deltas, base)
    marginal_strong = strong_controls(marginal)
    marginal_drawn = {
        u: control_peers(secret, window, u, marginal_strong, args.controls) for u in declared
    }
    matched_drawn = {
        u: control_peers(
            secret, window, u, _nearest(strong, gains, u, 2 * args.controls), args.controls
        )
        for u in declared
    }
    every_drawn = [
        *drawn.values(),
        *half_drawn.values(),
        *marginal_drawn.values(),
        *matched_drawn.values(),
    ]
    under: dict[tuple[int, int], list[float]] = {}  # (miner, control) -> all own batches
    for c in sorted({c for cs in every_drawn for c in cs}):
        with applied(node.model, deltas[c], lr, base):
            for u in declared:
                if any(c in d[u] for d in (drawn, half_drawn, marginal_drawn, matched_drawn)):
                    under[(u, c)] = losses_on(node, declared[u], seeds[u])
    out: dict[str, dict[str, list[float]]] = {d: {"honest": [], "wrong": []} for d in DESIGNS}
    out["controls"] = {"drawn": [float(len(cs)) for cs in drawn.values() if cs]}
    linear = first_order_gains(node, random_pages, window, deltas)
    out["gains"] = {"exact": [gains[u] for u in declared], "linear": [linear[u] for u in declared]}
    out["marginal_gains"] = {
        "honest": [marginal[u] for u in declared if u not in wrong],
        "wrong": [marginal[u] for u in declared if u in wrong],
    }
    for design, g in (("update-scaled", gains), ("linear two", linear)):
        helpful = strong_controls(g)
        for u in declared:
            chosen = control_peers(secret, window, u, helpful, args.controls)
            if chosen:
                control = _update_scaled_control(
                    node, declared[u], seeds[u], chosen, deltas, g, u, base
                )
                kind = "wrong" if u in wrong else "honest"
                out[design][kind].append(_mean(control) - _mean(after[u]))
    for u in declared:
        kind = "wrong" if u in wrong else "honest"
        n = len(before[u])
        if drawn[u]:
            old = control_peers(secret, window, u, strong, args.before_controls)
            every = [[(under[(u, c)][j], gains[c]) for c in old] for j in range(n)]
            shared = _shared_out(under, u, drawn[u], n, gains)
            for design, per_batch in (("every batch", every), ("shared out", shared)):
                control = scaled_control(before[u], per_batch, gains[u])
                out[design][kind].append(_mean(control) - _mean(after[u]))
        if marginal_drawn[u]:
            per_batch = _shared_out(under, u, marginal_drawn[u], n, marginal)
            control = scaled_control(before[u], per_batch, marginal[u])
            out["marginal three"][kind].append(_mean(control) - _mean(after[u]))
        if matched_drawn[u]:
            per_batch = _shared_out(under, u, matched_drawn[u], n, gains)
            control = [sum(a for a, _ in cs) / len(cs) for cs in per_batch]
            out["matched three"][kind].append(_mean(control) - _mean(after[u]))
        h = max(1, n // 2)
        if half_drawn[u]:
            per_batch = _shared_out(under, u, half_drawn[u], h, half_gains)
            control = scaled_control(before[u][:h], per_batch, half_gains[u])
            out["two passes"][kind].append(_mean(control) - _mean(after[u][:h]))
    return out


def _nearest(strong: list[int], gains: dict[int, float], u: int, count: int) -> list[int]:
    """The ``count`` of ``strong`` (not ``u``) whose random gain is nearest ``u``'s, by the
    ratio of the gains (``u``'s floored at the smallest strong gain when it did not help)."""
    others = [c for c in strong if c != u]
    if not others:
        return []
    own = max(gains[u], min(gains[c] for c in others))
    return sorted(others, key=lambda c: abs(math.log(gains[c] / own)))[:count]


def _marginal_gains(
    node: BenchNode,
    pages: list[int],
    seed: int,
    deltas: dict[int, dict[str, torch.Tensor]],
    base: dict[str, torch.Tensor],
) -> dict[int, float]:
    """Each update's marginal gain on ``pages`` to the window's aggregate (the mean of
    ``deltas``, applied with the outer learning rate), to first order: its 1/N share of
    ``lr · <g, Δ>`` with ``g`` taken at the aggregate."""
    with applied(node.model, mean_update(list(deltas.values())), node.config.train.outer_lr, base):
        at_aggregate = first_order_gains(node, pages, seed, deltas)
    return {u: at_aggregate[u] / len(deltas) for u in deltas}


def _update_scaled_control(
    node: BenchNode,
    pages: list[int],
    seed: int,
    controls: list[int],
    deltas: dict[int, dict[str, torch.Tensor]],
    gains: dict[int, float],
    u: int,
    base: dict[str, torch.Tensor],
) -> list[float]:
    """Per own batch, the loss under its shared-out control applied at ``u``'s strength
    (the clamped square-root gain ratio multiplies the control's update, not its measured
    improvement), so no loss before is needed: one pass over the own batches."""
    lr = node.config.train.outer_lr
    by_batch: dict[int, float] = {}
    for c, indices in batch_shares(node.config.validator.eval_batches, controls).items():
        with applied(node.model, deltas[c], lr * strength_ratio(gains[u], gains[c]), base):
            by_batch.update(zip(indices, losses_on(node, pages, seed, only=indices), strict=True))
    return [by_batch[j] for j in sorted(by_batch)]


def _shared_out(
    under: dict[tuple[int, int], list[float]],
    u: int,
    controls: list[int],
    n: int,
    gains: dict[int, float],
) -> list[list[tuple[float, float]]]:
    """Per own batch ``j < n``, the one control it is shared out to: (its loss, its gain)."""
    owner = {j: c for c, idx in batch_shares(n, controls).items() for j in idx}
    return [[(under[(u, owner[j])][j], gains[owner[j]])] for j in range(n)]


def _gain_fit(gains: dict[str, list[float]]) -> dict[str, float | None]:
    exact, linear = gains["exact"], gains["linear"]
    rank = spearman(exact, linear)
    return {
        "exact_mean": round(statistics.mean(exact), 5),
        "linear_mean": round(statistics.mean(linear), 5),
        "correlation": round(statistics.correlation(exact, linear), 4),
        "rank_correlation": None if rank is None else round(rank, 4),
    }


def _separation(kinds: dict[str, list[float]]) -> float | None:
    """The fraction of (honest, wrong-data) pairs of advantages the honest one wins (ties
    count half): 1 separates them completely, 0.5 is chance."""
    honest, wrong = kinds["honest"], kinds["wrong"]
    if not honest or not wrong:
        return None
    wins = sum((h > w) + 0.5 * (h == w) for h in honest for w in wrong)
    return round(wins / (len(honest) * len(wrong)), 4)


def summarise(values: list[float], margin: float, pages: int) -> dict[str, Any]:
    return {
        "n": len(values),
        "mean": round(statistics.mean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "above_margin": round(sum(pages * v > margin for v in values) / len(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="windows")
    parser.add_argument("--honest", type=int, default=5)
    parser.add_argument("--wrong", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12, help="inner steps per update")
    parser.add_argument("--warm-steps", type=int, default=60, help="shared training first")
    parser.add_argument("--controls", type=int, default=GauntletConfig().validator.control_updates)
    parser.add_argument("--before-controls", type=int, default=2)
    parser.add_argument("--eval-batches", type=int, default=4)
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=GauntletConfig().validator.eval_batch_size,
        help="sequences a batch: halve it and double --eval-batches for the same tokens cut "
        "finer, so the half-token designs keep every control",
    )
    parser.add_argument(
        "--random-step",
        type=float,
        default=GauntletConfig().validator.random_step,
        help="the fraction of its scale an update's random-page gain is measured at",
    )
    parser.add_argument("--margin", type=float, default=GauntletConfig().scoring.indicator_margin)
    add_dataset_options(parser)
    started = time.perf_counter()
    args, dataset = parse_and_open(parser)
    config = GauntletConfig.model_validate(
        {
            "train": {"seq_len": 64},
            "validator": {
                "eval_batches": args.eval_batches,
                "eval_batch_size": args.eval_batch_size,
                "random_pages": 8,
            },
        }
    )
    node = BenchNode(config, dataset, build_model("tiny", args.seed), torch.device("cpu"))
    if args.warm_steps:
        warm = list(range(0, dataset.num_train_pages, 7))
        batches = dataset.batches(warm, seq_len=64, batch_size=8, seed=args.seed)
        train_inner(node.model, batches, causal_lm_loss, InnerSettings(args.warm_steps, 3e-3))
    rng = random.Random(args.seed)
    pooled: dict[str, dict[str, list[float]]] = {d: {"honest": [], "wrong": []} for d in DESIGNS}
    pooled["controls"] = {"drawn": []}
    pooled["gains"] = {"exact": [], "linear": []}
    pooled["marginal_gains"] = {"honest": [], "wrong": []}
    for trial in range(args.trials):
        for design, kinds in one_window(node, rng, trial, args).items():
            for kind, values in kinds.items():
                pooled[design][kind].extend(values)
    report = {
        "bench": "controls",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "designs": {
            "every batch": f"{args.before_controls} controls, each on every own batch",
            "shared out": f"{args.controls} controls, the own batches shared out among them",
            "two passes": "shared out, on the first half of every measurement's batches",
            "update-scaled": "shared out, each control's update scaled by the strength ratio",
            "linear two": "update-scaled, random gains to first order from a shared gradient",
            "marginal three": "shared out, random gains as marginal gains to the aggregate, "
            "to first order from one gradient at it",
            "matched three": "shared out among the strong updates nearest in random gain, "
            "unscaled: no loss before",
        },
        "controls_per_miner": round(statistics.mean(pooled.pop("controls")["drawn"]), 2),
        "random_gains": _gain_fit(pooled.pop("gains")),
        "marginal_gains": {
            kind: summarise(values, 0.0, 1) for kind, values in pooled.pop("marginal_gains").items()
        },
        "advantage": {
            design: {
                kind: summarise(values, args.margin, PAGES_PER_MINER)
                for kind, values in kinds.items()
            }
            for design, kinds in pooled.items()
        },
        "separation": {design: _separation(kinds) for design, kinds in pooled.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
