"""What a miner's update is measured as when its compute falls: the error feedback's carry.

A miner compresses ``Δ + e`` each window and keeps what the codec left out as the next
residual ``e`` (``compress.error_decay`` 1: nothing is forgotten). A miner that worked 5
pages a window and drops to 2 still holds a residual built from 5-page updates, and the
next uploads send it. docs/scoring.md ("The rating's memory") left open whether that carry
is why burst and coast miners' low windows were measured like more work than they did,
and whether it is paid back in their full windows (a shift in time) or is extra.

This script trains a real tiny model as a small network would, on the stdlib pages, the
codec and scale as the localnet uses them: every window each miner trains one pass over
fresh pages from the shared model, encodes with its error feedback, the decoded updates
are scaled to their median norm (``compress.normalise = per_peer``) and each is measured
alone on the window's random pages (the random-page gain a rating is built from), then
the model steps by the steady miners' mean. A burst miner trains exactly what the steady
miner of its pages trains that window (the same pages, the same batches), so the two
differ only by the residual each carries in: their difference in a window is the carry,
without the pages' noise. Miners:

- ``steady N`` (N = 1..5 pages every window): the honest reference;
- ``burst``: ``--full`` (5) pages for ``--cycle`` windows, then ``--low`` (2) for as many,
  repeated, carrying its residual as every miner does;
- ``burst, reset``: the same schedule, its residual dropped whenever its pages drop, so
  its low windows send only what they trained.

Printed per phase of the cycle (its first two low windows, the later ones, the first two
full ones, the later ones): each burst's gain minus the steady miner's of the same pages,
window by window (mean and standard error: the carry itself), and the pages its mean gain
"measured like" on the steady miners' curve of the same windows (piecewise linear between
their mean gains); over the whole run, the pages each burst's mean gain measured like. If
the carry only shifts credit in time, the carrying burst's low windows measure above
``--low`` pages, its full ones below ``--full``, and the run at its average pages.

    .venv/bin/python bench/carry.py                     # ~3 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench import tiny_network as net  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.rating_horizon import burst_phase, in_full_phase  # noqa: E402
from bench.validator_window import BenchNode  # noqa: E402
from gauntlet.compress.aggregate import peer_scales  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402

STEADY = (1, 2, 3, 4, 5)
BURSTS = ("burst", "burst, reset")
PHASES = ("low, first 2", "low, later", "full, first 2", "full, later")


def pages_at(miner: str, window: int, args: argparse.Namespace) -> int:
    """Pages ``miner`` trains in ``window``: steady ones always the same, bursts by phase."""
    if miner.startswith("steady"):
        return int(miner.split()[1])
    return args.full if in_full_phase(window, args.cycle) else args.low


def pages_like(gain: float, steady: dict[int, float]) -> float | None:
    """The pages at which the steady miners' gain curve (piecewise linear between their
    mean gains, in pages) reaches ``gain``, extrapolated along the end segment beyond it;
    ``None`` where the curve is not increasing (its windows too noisy to read)."""
    points = sorted(steady.items())
    if any(b[1] <= a[1] for a, b in itertools.pairwise(points)):
        return None
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if gain <= y1 or x1 == points[-1][0]:
            return x0 + (gain - y0) * (x1 - x0) / (y1 - y0)
    return None


class Network:
    """The shared model, the miners' uploads and residuals of one run."""

    def __init__(self, node: BenchNode, args: argparse.Namespace) -> None:
        self.node, self.args = node, args
        self.uploads = net.Uploads(node)
        self.miners = [f"steady {n}" for n in STEADY] + list(BURSTS)
        self.rng = random.Random(args.seed)

    def upload(self, miner: str, delta: net.Delta, window: int) -> net.Delta:
        """What the validators decode of ``miner``'s upload; advances its residual."""
        dropped = window > 0 and pages_at(miner, window, self.args) < pages_at(
            miner, window - 1, self.args
        )
        if miner == "burst, reset" and dropped:
            self.uploads.reset(miner)
        return self.uploads.decoded(miner, delta)

    def window(self, window: int) -> dict[str, float]:
        """One window: train, upload, measure each update alone, step. Random-page gains."""
        node, args = self.node, self.args
        base = snapshot(node.model)
        pool = self.rng.sample(range(node.dataset.num_train_pages), sum(STEADY) + 8)
        random_pages, pool = pool[:8], pool[8:]
        trained = {}  # pages -> Δ: a burst trains exactly what the steady miner of its pages does
        for n in STEADY:
            pages, pool = pool[:n], pool[n:]
            trained[n] = net.train_update(node, pages, args.seed * 100_003 + window * 101 + n, base)
        decoded = {
            m: self.upload(m, trained[pages_at(m, window, args)], window) for m in self.miners
        }
        scales = peer_scales([delta_norm(d) for d in decoded.values()], "per_peer", None)
        at_median = {
            m: net.scaled(d, scale) for (m, d), scale in zip(decoded.items(), scales, strict=True)
        }
        seed = args.seed * 7919 + window
        before = net.mean_loss(node, random_pages, seed)
        gains = {
            m: before - net.mean_loss(node, random_pages, seed, d) for m, d in at_median.items()
        }
        # the bursts do not move the model
        net.step(node, [at_median[f"steady {n}"] for n in STEADY])
        return gains


def paired(rows: list[dict[str, float]], miner: str, reference: str) -> dict[str, float]:
    """Mean and standard error of ``miner``'s gain minus ``reference``'s, window by window
    (both measured on the same random pages, so the window's own level cancels)."""
    diffs = [r[miner] - r[reference] for r in rows]
    sem = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {"mean": round(statistics.mean(diffs), 5), "sem": round(sem, 5)}


def summarise(rows: list[dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    """Per phase of the cycle, each miner's mean gain and the pages a burst's mean gain
    measured like on the steady miners' curve of the same windows; over the whole run, the
    pages the bursts' mean gain measured like (to set against their average pages)."""
    kept = [(w, r) for w, r in enumerate(rows) if w >= args.skip]
    by_phase = {p: [r for w, r in kept if burst_phase(w, args.cycle) == p] for p in PHASES}
    steady_names = {n: f"steady {n}" for n in STEADY}
    phases = {}
    for phase, phase_rows in by_phase.items():
        if not phase_rows:
            continue
        means = {m: statistics.mean(r[m] for r in phase_rows) for m in phase_rows[0]}
        curve = {n: means[name] for n, name in steady_names.items()}
        like = {b: pages_like(means[b], curve) for b in BURSTS}
        trained = args.low if phase.startswith("low") else args.full
        same = f"steady {trained}"
        phases[phase] = {
            "windows": len(phase_rows),
            "trained": trained,
            "vs_steady_same_pages": {b: paired(phase_rows, b, same) for b in BURSTS},
            "mean_gain": {m: round(g, 5) for m, g in means.items()},
            "pages_measured_like": {b: None if v is None else round(v, 2) for b, v in like.items()},
        }
    means = {m: statistics.mean(r[m] for _, r in kept) for m in rows[0]}
    curve = {n: means[name] for n, name in steady_names.items()}
    like = {b: pages_like(means[b], curve) for b in BURSTS}
    return {
        "phases": phases,
        "mean_gain": {m: round(g, 5) for m, g in means.items()},
        "average_pages": (args.full + args.low) / 2,
        "run_pages_measured_like": {b: None if v is None else round(v, 2) for b, v in like.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--cycle", type=int, default=5, help="windows per phase of a burst")
    parser.add_argument("--full", type=int, default=5, help="a burst's pages in its full phase")
    parser.add_argument("--low", type=int, default=2, help="a burst's pages in its low phase")
    parser.add_argument("--skip", type=int, default=5, help="first windows left out (warm-up)")
    net.add_network_options(parser)
    started = time.perf_counter()
    args, node = net.open_node(parser)
    network = Network(node, args)
    rows = [network.window(w) for w in range(args.windows)]
    report = {
        "bench": "carry",
        "settings": net.settings(args),
        "codec": node.config.compress.codec_params().model_dump(),
        "error_decay": node.config.compress.error_decay,
        **summarise(rows, args),
        "gains": [{m: round(g, 5) for m, g in r.items()} for r in rows],
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info("cpu"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
