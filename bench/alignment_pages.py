"""How much of the last aggregate an honest update carries, by its pages, and what a
one-page booster gains when the alignment limit is one number for every update.

The validator measures no update with more alignment (cosine) with the last aggregate than
the window's limit (docs/scoring.md, "What is new"), and the limit is one number: the
median of the window's alignments, or its pay-weighted median where lower. An honest
update's alignment grows with the data it saw: its part along the aggregate adds up page
by page while its own noise adds up like a random walk, so the odds ``cos² / (1 − cos²)``
grow about in proportion to the pages. A one-page booster (``boost``: the trained page plus
the last aggregate, ``scenarios/boost-operator-limit.toml``) lowered to the limit is then
measured with the alignment of a many-page update, which is what it earns beyond honest
one-page work.

Every window, from the shared model: honest miners train 1..5 (and 9) pages, the
operator's ``--boosters`` one page each and boost it (share ``--share`` of the upload, as
the localnet behaviour does); every upload goes through the localnet's codec with its own
error feedback. Each update's cosine with the last aggregate is measured, and the honest
and one booster's updates are measured alone on the window's secret random pages
(relative gain, at the median norm of all the window's updates, as validators do) under
two limits:

- ``one limit``: the honest updates' median alignment, for every update (today's rule when
  the honest miners hold most of the pay);
- ``per page``: the honest updates' median of ``odds / pages`` (k), and for an update that
  declared n pages the cosine whose odds are ``k · n``.

The model then steps by the mean of all updates at that norm (the aggregate, the operator
included, as before a peer set is in force). Printed: per page count the mean cosine and
``odds / pages`` (constant if the model above holds), and per limit the mean gains.

    .venv/bin/python bench/alignment_pages.py --dataset-dir /tmp/ds/stdlib   # ~2 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench import tiny_network as net  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.validator_window import BenchNode  # noqa: E402
from gauntlet.compress.aggregate import median_norm  # noqa: E402
from gauntlet.localnet.adaptive import boosted  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402
from gauntlet.train.novelty import alignment, limit_alignment  # noqa: E402

HONEST = (1, 2, 3, 4, 5, 9)
RULES = ("as sent", "one limit", "per page")
RANDOM_PAGES = 8


def odds(cosine: float) -> float:
    """``cos² / (1 − cos²)`` of a positive cosine (0 at or under 0)."""
    c = max(0.0, min(cosine, 0.999999))
    return c * c / (1 - c * c)


def cosine_of_odds(value: float) -> float:
    """The cosine in [0, 1) whose :func:`odds` is ``value``."""
    return (value / (1 + value)) ** 0.5


def limits(cosines: dict[Any, float], pages: dict[Any, int]) -> dict[str, dict[Any, float]]:
    """Each rule's limit for each update (key -> cosine), from the honest updates' cosines
    (the keys that are page counts; the boosters' keys are tuples)."""
    honest = {key: c for key, c in cosines.items() if isinstance(key, int)}
    one = statistics.median(honest.values())
    k = statistics.median(odds(c) / key for key, c in honest.items())
    return {
        "as sent": dict.fromkeys(cosines, 1.0),
        "one limit": dict.fromkeys(cosines, one),
        "per page": {key: cosine_of_odds(k * pages[key]) for key in cosines},
    }


@dataclass
class Window:
    """One window's uploads, as validators decode them: ``updates`` keyed by page count
    (honest) or ``("boost", i)``, their declared ``pages`` and ``norms``, the ``median``
    norm, the ``aggregate`` (the mean of every update at that norm), and the secret
    ``random_pages`` with the ``eval_seed`` their batches are cut with."""

    updates: dict[Any, net.Delta]
    pages: dict[Any, int]
    norms: dict[Any, float]
    median: float
    aggregate: net.Delta
    random_pages: list[int]
    eval_seed: int

    def at_median(self, update: net.Delta, key: Any) -> net.Delta:
        """``update`` (``key``'s, or a version of it) scaled as ``key``'s upload is to the
        window's median norm: what the aggregate and evaluation apply."""
        return net.scaled(update, self.median / self.norms[key])


def train_window(
    node: BenchNode,
    uploads: net.Uploads,
    last: net.Delta | None,
    w: int,
    args: argparse.Namespace,
    rng: random.Random,
) -> Window:
    """Every miner trains from the shared model and uploads (honest miners ``HONEST``
    pages, ``args.boosters`` one-page boosters adding ``last`` as ``args.share`` of the
    upload); the model is left where it was. Also used by bench/marginal_gain.py."""
    base = snapshot(node.model)
    pool = rng.sample(
        range(node.dataset.num_train_pages), RANDOM_PAGES + sum(HONEST) + args.boosters
    )
    random_pages, pool = pool[:RANDOM_PAGES], pool[RANDOM_PAGES:]
    seed = args.seed * 100_003 + w * 101
    updates: dict[Any, net.Delta] = {}
    pages: dict[Any, int] = {}
    for n in HONEST:
        chosen, pool = pool[:n], pool[n:]
        updates[n] = uploads.decoded(n, net.train_update(node, chosen, seed + n, base))
        pages[n] = n
    for i in range(args.boosters):
        chosen, pool = pool[:1], pool[1:]
        trained = net.train_update(node, chosen, seed + 50 + i, base)
        key = ("boost", i)
        updates[key] = uploads.decoded(key, boosted(trained, last, args.share))
        pages[key] = 1
    norms = {key: delta_norm(u) for key, u in updates.items()}
    median = median_norm(list(norms.values()))
    aggregate = {
        name: sum(u[name] * (median / norms[key]) for key, u in updates.items()) / len(updates)
        for name in updates[HONEST[0]]
    }
    return Window(updates, pages, norms, median, aggregate, random_pages, args.seed * 7919 + w)


MEASURED = [*HONEST, ("boost", 0)]


def window(
    node: BenchNode,
    uploads: net.Uploads,
    last: net.Delta | None,
    w: int,
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[dict[str, Any] | None, net.Delta]:
    """One window: every miner trains and uploads; with a last aggregate, each update's
    cosine with it and the random-page gains under each rule. Returns them (None in the
    first window) and this window's aggregate; the model steps by it."""
    win = train_window(node, uploads, last, w, args, rng)
    if last is None:
        net.step(node, [win.aggregate])
        return None, win.aggregate
    cosines = {key: alignment(u, last) for key, u in win.updates.items()}
    rule_limits = limits(cosines, win.pages)
    before = net.mean_loss(node, win.random_pages, win.eval_seed)
    gains = {rule: gains_alone(node, win, last, rule_limits[rule], before) for rule in RULES}
    net.step(node, [win.aggregate])
    row = {
        "cosines": {label(key): round(c, 4) for key, c in cosines.items()},
        "limits": {
            rule: {label(k): round(v, 4) for k, v in lim.items()}
            for rule, lim in rule_limits.items()
            if rule != "as sent"
        },
        "gains": gains,
    }
    return row, win.aggregate


def gains_alone(
    node: BenchNode, win: Window, last: net.Delta, limit: dict[Any, float], before: float
) -> dict[str, float]:
    """Each of :data:`MEASURED`'s relative random-page gains applied alone to the model at
    the window's median norm, its alignment with ``last`` lowered to ``limit[key]`` (1: as
    sent), against the loss ``before``. Also used by bench/marginal_gain.py."""
    gains = {}
    for key in MEASURED:
        update = {name: t.clone() for name, t in win.updates[key].items()}
        lowered = limit_alignment(update, last, limit[key])
        after = net.mean_loss(node, win.random_pages, win.eval_seed, win.at_median(lowered, key))
        gains[label(key)] = 1 - after / before
    return gains


def label(key: Any) -> str:
    """A miner's name in the report: ``"<n> pages"`` or ``"booster <i>"``."""
    return f"{key} pages" if isinstance(key, int) else f"booster {key[1]}"


def summarise(rows: list[dict[str, Any]], boosters: int) -> dict[str, Any]:
    """Per page count the mean cosine and odds / pages; per rule the mean gains and the
    booster's gain over the honest one-page one's."""
    labels = [label(n) for n in HONEST]
    booster_labels = [label(("boost", i)) for i in range(boosters)]
    out: dict[str, Any] = {
        "mean_cosine": {
            name: round(statistics.mean(r["cosines"][name] for r in rows), 4)
            for name in labels + booster_labels[:1]
        },
        "mean_odds_per_page": {
            name: round(statistics.mean(odds(r["cosines"][name]) / n for r in rows), 4)
            for name, n in zip(labels, HONEST, strict=True)
        },
        "mean_booster_cosine": round(
            statistics.mean(r["cosines"][b] for r in rows for b in booster_labels), 4
        ),
    }
    out["mean_gain"] = {}
    for rule in RULES:
        mean = {
            name: round(statistics.mean(r["gains"][rule][name] for r in rows), 5)
            for name in [*labels, "booster 0"]
        }
        out["mean_gain"][rule] = mean
    out["booster_over_honest_one_page"] = {
        rule: round(
            statistics.mean(
                r["gains"][rule]["booster 0"] - r["gains"][rule]["1 pages"] for r in rows
            ),
            5,
        )
        for rule in RULES
    }
    return out


def add_window_options(parser: argparse.ArgumentParser) -> None:
    """The options :func:`train_window` reads, with the tiny network's. Also used by
    bench/marginal_gain.py."""
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--boosters", type=int, default=9, help="one operator's one-page hotkeys")
    parser.add_argument("--share", type=float, default=0.3, help="the boost's share of the upload")
    net.add_network_options(parser)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_window_options(parser)
    started = time.perf_counter()
    args, node = net.open_node(parser)
    uploads, rng = net.Uploads(node), random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    last: net.Delta | None = None
    for w in range(args.windows):
        row, last = window(node, uploads, last, w, args, rng)
        if row is not None:
            rows.append(row)
    report = {
        "bench": "alignment_pages",
        "settings": net.settings(args),
        "codec": node.config.compress.codec_params().model_dump(),
        **summarise(rows, args.boosters),
        "windows": rows,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
