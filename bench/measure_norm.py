"""The norm an update is measured at, and whether many cheap hotkeys can set it.

Scoring applies each update at the aggregate's scale (``compress.normalise = per_peer``:
every update at the median norm of the window's passed contributions), so scaling an
update down gains nothing. A median counts hotkeys: one operator's many one-page hotkeys
(``scenarios/boost-operator.toml``: 9 of 14) make it a one-page norm, also once the peer
set has left them out of the aggregate, which then steps at its members' median.
docs/scoring.md ("The norm an update is measured at") has the localnet runs; this script
measures the mechanism alone on a real tiny model.

Every window, from the shared model: honest miners train 1..5 pages, the operator's
``--cheap`` hotkeys one page each; every update goes through the localnet's codec with
its own error feedback. Each honest update is measured alone on the window's secret
random pages (relative gain, as validators report it) at two norms: the median of the
honest updates (``members``: what the aggregate applies once the peer set leaves the
cheap hotkeys out) and the median of all of them (``all passed``: what evaluation
measures at). The model then steps by the honest mean at the members' median. Printed per
norm: the first window's gains (from the initial model, where a rating starts) and, over
the later windows, each miner's mean gain, the mean rank correlation of gain with pages,
and how often the 5-page miner's update beat the 4-page one's.

    .venv/bin/python bench/measure_norm.py             # about a minute on 2 CPU cores
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

from bench import tiny_network as net  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.validator_window import BenchNode  # noqa: E402
from gauntlet.compress.aggregate import median_norm  # noqa: E402
from gauntlet.localnet.results import spearman  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402

HONEST = (1, 2, 3, 4, 5)
NORMS = ("members", "all passed")
RANDOM_PAGES = 8


def window(
    node: BenchNode, uploads: net.Uploads, w: int, cheap: int, rng: random.Random, seed: int
) -> dict[str, Any]:
    """One window: every miner trains and uploads; each honest update measured at both
    norms; the model steps by the honest mean at the members' median. Gains and norms."""
    base = snapshot(node.model)
    pool = rng.sample(range(node.dataset.num_train_pages), RANDOM_PAGES + sum(HONEST) + cheap)
    random_pages, pool = pool[:RANDOM_PAGES], pool[RANDOM_PAGES:]
    honest: dict[int, net.Delta] = {}
    for n in HONEST:
        pages, pool = pool[:n], pool[n:]
        honest[n] = uploads.decoded(
            n, net.train_update(node, pages, seed * 100_003 + w * 101 + n, base)
        )
    cheap_norms = []
    for i in range(cheap):
        pages, pool = pool[:1], pool[1:]
        update = net.train_update(node, pages, seed * 100_003 + w * 101 + 50 + i, base)
        cheap_norms.append(delta_norm(uploads.decoded(("cheap", i), update)))
    norms = {n: delta_norm(u) for n, u in honest.items()}
    medians = {
        "members": median_norm(list(norms.values())),
        "all passed": median_norm(list(norms.values()) + cheap_norms),
    }
    eval_seed = seed * 7919 + w
    before = net.mean_loss(node, random_pages, eval_seed)
    gains = {  # relative, as validators report them (scoring.relative_improvement)
        label: {
            n: 1
            - net.mean_loss(node, random_pages, eval_seed, net.scaled(u, median / norms[n]))
            / before
            for n, u in honest.items()
        }
        for label, median in medians.items()
    }
    net.step(node, [net.scaled(u, medians["members"] / norms[n]) for n, u in honest.items()])
    return {
        "gains": gains,
        "norms": {n: round(v, 4) for n, v in norms.items()},
        "median_ratio": medians["all passed"] / medians["members"],
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per norm: the first window's gains; over the later windows each miner's mean gain,
    the mean rank correlation of gain with pages, and the 5-page update's wins over the
    4-page one's."""
    later = rows[1:]
    out: dict[str, Any] = {}
    for label in NORMS:
        first = rows[0]["gains"][label]
        per_window = [r["gains"][label] for r in later]
        out[label] = {
            "first_window_gain": {n: round(g, 5) for n, g in first.items()},
            "first_window_rank_correlation": spearman(list(HONEST), [first[n] for n in HONEST]),
            "later_mean_gain": {
                n: round(statistics.mean(g[n] for g in per_window), 5) for n in HONEST
            }
            if later
            else {},
            "later_mean_rank_correlation": round(
                statistics.mean(
                    spearman(list(HONEST), [g[n] for n in HONEST]) or 0.0 for g in per_window
                ),
                3,
            )
            if later
            else None,
            "later_5_over_4_pages": sum(g[5] > g[4] for g in per_window),
            "later_windows": len(per_window),
        }
    out["median_all_over_members"] = round(statistics.mean(r["median_ratio"] for r in rows), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--cheap", type=int, default=9, help="one operator's one-page hotkeys")
    net.add_network_options(parser)
    started = time.perf_counter()
    args, node = net.open_node(parser)
    uploads, rng = net.Uploads(node), random.Random(args.seed)
    rows = [window(node, uploads, w, args.cheap, rng, args.seed) for w in range(args.windows)]
    report = {
        "bench": "measure_norm",
        "settings": net.settings(args),
        "codec": node.config.compress.codec_params().model_dump(),
        **summarise(rows),
        "windows": [
            {
                "gains": {
                    lbl: {n: round(g, 5) for n, g in r["gains"][lbl].items()} for lbl in NORMS
                },
                "norms": r["norms"],
                "median_all_over_members": round(r["median_ratio"], 3),
            }
            for r in rows
        ],
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
