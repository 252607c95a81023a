"""An update's worth measured where it lands: its marginal gain to the window's aggregate,
against its gain applied alone.

Validators measure each update applied alone to θ_w at the aggregate's scale, so an update
is judged by where it alone would take the model. The network takes the aggregate, the
mean of the window's updates; one update moves it by a 1/N share of itself, a short step
from θ_agg. Alone, a one-page update overshoots (late in a localnet run its random-page
gain is negative) and adding the last aggregate, free, makes it overshoot less: the
limit-knowing operator's boosted one-page updates hurt the random pages by about half as
much as honest one-page updates (docs/scoring.md, "Weighted by pay"). At the aggregate,
its noise is averaged away with every other update's and what the free part adds is
already there.

Every window, as in bench/alignment_pages.py (honest miners of 1, 2, 3, 4, 5 and 9 pages,
``--boosters`` one-page boosters of one operator, the localnet's codec), the honest
updates and one booster are measured on the window's secret random pages three ways
(relative gains, positive helps):

- ``alone``: applied alone to θ_w, its alignment lowered to the honest median (the node's
  measurement, the "one limit" rule of bench/alignment_pages.py);
- ``leave one out``: the loss at θ_agg with the update's share taken back out, against
  the loss at θ_agg (one forward per update);
- ``first order``: the same to first order, ``lr · <g, Δ_i> / N`` from the gradient ``g``
  of the random pages' loss at θ_agg (one forward and backward for the whole window; a
  1/N share is a short step, where first order holds).

Printed per measure: the mean gains, the mean rank correlation of the honest gains with
pages, the booster's gain over the honest one-page one's, and how closely the first-order
gains follow the leave-one-out ones. ``--outer-momentum β`` makes the outer step
Nesterov's (``v ← β·v + aggregate``, step ``aggregate + β·v``), which the network does not
do: whether momentum the protocol applies itself leaves the boost's free momentum
nothing to add (an update's share of the step is then ``(1 + β) / N``).

    .venv/bin/python bench/marginal_gain.py --dataset-dir /tmp/ds/stdlib   # ~2 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from bench import tiny_network as net  # noqa: E402
from bench.alignment_pages import (  # noqa: E402
    HONEST,
    MEASURED,
    add_window_options,
    gains_alone,
    label,
    limits,
    train_window,
)
from bench.machine import machine_info  # noqa: E402
from bench.validator_window import BenchNode  # noqa: E402
from gauntlet.localnet.results import spearman  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402
from gauntlet.train.novelty import alignment  # noqa: E402
from gauntlet.train.outer import apply_delta, restore  # noqa: E402

MEASURES = ("alone", "leave one out", "first order")


def outer_step(
    aggregate: net.Delta, velocity: net.Delta | None, momentum: float
) -> tuple[net.Delta, net.Delta]:
    """The step the model takes for ``aggregate`` and the new velocity: with ``momentum``
    β, Nesterov's (``v ← β·v + g``, step ``g + β·v``); at 0 the aggregate itself."""
    if velocity is None:
        velocity = {name: torch.zeros_like(t) for name, t in aggregate.items()}
    velocity = {name: momentum * velocity[name] + g for name, g in aggregate.items()}
    step = {name: g + momentum * velocity[name] for name, g in aggregate.items()}
    return step, velocity


def window(
    node: BenchNode,
    uploads: net.Uploads,
    last: net.Delta | None,
    velocity: net.Delta | None,
    w: int,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[dict[str, dict[str, float]] | None, net.Delta, net.Delta]:
    """One window's gains by measure (None in the first, with no last aggregate to limit
    by), its aggregate and the outer velocity; the model takes the outer step
    (:func:`outer_step`, ``args.outer_momentum``). An update's share of that step is
    ``(1 + β) / N`` of it."""
    win = train_window(node, uploads, last, w, args, rng)
    step, velocity = outer_step(win.aggregate, velocity, args.outer_momentum)
    if last is None:
        net.step(node, [step])
        return None, win.aggregate, velocity
    pages, seed = win.random_pages, win.eval_seed
    shares = {key: win.at_median(win.updates[key], key) for key in MEASURED}
    share_of_step = (1 + args.outer_momentum) / len(win.updates)
    limit = limits({key: alignment(u, last) for key, u in win.updates.items()}, win.pages)
    before = net.mean_loss(node, pages, seed)
    gains = {"alone": gains_alone(node, win, last, limit["one limit"], before)}
    base = snapshot(node.model)
    apply_delta(node.model, step, node.config.train.outer_lr)  # where the network moves
    at_aggregate = net.mean_loss(node, pages, seed)
    gains["leave one out"] = {}
    for key in MEASURED:
        without = net.mean_loss(node, pages, seed, net.scaled(shares[key], -share_of_step))
        gains["leave one out"][label(key)] = (without - at_aggregate) / at_aggregate
    first = net.first_order_gains(
        node, pages, seed, {key: net.scaled(u, share_of_step) for key, u in shares.items()}
    )
    gains["first order"] = {label(key): g / at_aggregate for key, g in first.items()}
    restore(node.model, base)
    net.step(node, [step])
    return gains, win.aggregate, velocity


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """The correlation of two equal-length lists (None where either is constant)."""
    if len(xs) < 2 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return None
    return statistics.correlation(xs, ys)


def summarise(rows: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per measure: mean gains, mean rank correlation of the honest gains with pages, the
    booster's gain over the honest one-page update's; and the first-order gains against
    the leave-one-out ones."""
    names = [label(n) for n in HONEST]
    out: dict[str, Any] = {}
    for measure in MEASURES:
        per_window = [r[measure] for r in rows]
        out[measure] = {
            "mean_gain": {
                name: round(statistics.mean(g[name] for g in per_window), 6)
                for name in [*names, "booster 0"]
            },
            "mean_rank_correlation_with_pages": round(
                statistics.mean(
                    spearman(list(HONEST), [g[name] for name in names]) or 0.0 for g in per_window
                ),
                3,
            ),
            "booster_over_honest_one_page": round(
                statistics.mean(g["booster 0"] - g["1 pages"] for g in per_window), 6
            ),
            "booster_over_honest_one_page_in_windows": sum(
                g["booster 0"] > g["1 pages"] for g in per_window
            ),
        }
    loo = [g for r in rows for g in r["leave one out"].values()]
    lin = [g for r in rows for g in r["first order"].values()]
    correlation = pearson(loo, lin)
    out["first_order_against_leave_one_out"] = {
        "correlation": None if correlation is None else round(correlation, 4),
        "rank_correlation": spearman(loo, lin),
    }
    out["windows_measured"] = len(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_window_options(parser)
    parser.add_argument(
        "--outer-momentum", type=float, default=0.0, help="Nesterov momentum of the outer step"
    )
    started = time.perf_counter()
    args, node = net.open_node(parser)
    uploads, rng = net.Uploads(node), random.Random(args.seed)
    rows: list[dict[str, dict[str, float]]] = []
    last: net.Delta | None = None
    velocity: net.Delta | None = None
    for w in range(args.windows):
        row, last, velocity = window(node, uploads, last, velocity, w, args, rng)
        if row is not None:
            rows.append(row)
    report = {
        "bench": "marginal_gain",
        "settings": net.settings(args),
        "codec": node.config.compress.codec_params().model_dump(),
        **summarise(rows),
        "windows": [{m: {k: round(v, 6) for k, v in r[m].items()} for m in MEASURES} for r in rows],
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
