"""What the rating pays after hundreds of windows: the horizon a localnet cannot run.

A localnet runs 12-40 windows; a subnet runs thousands. This feeds the validator's own
scoring (``journal_replay.replay``: ``advance_window`` on journal rows) with synthetic
windows whose measurements are drawn like the honest miners' in recorded localnet runs,
and reports, for each ``scoring.rating_memory`` given:

- ``steady``: two honest miners of each compute, 1-5 pages, ``--windows`` windows,
  ``--evaluated`` of them measured a window. Mean weight per page count in three stretches
  of the run (early, middle, end), and its per-page rate relative to the 5-page miners'.
  A rating that pays by what miners do now gives the same figures in every stretch.
- ``newcomer``: the same network, and halfway through a new hotkey with 5 pages
  registers. Windows until its weight first reaches the 5-page incumbents' mean, and its
  mean weight over the next ``--follow`` windows against theirs.
- ``coast``: halfway through, one 5-page miner drops to 2 pages and stays there. What it
  earns over the next ``--follow`` windows beyond a 2-page miner, in windows of the
  5-page pay it had: the one-off gain of a miner that stops working before it leaves.
- ``cycle_<period>``: two more hotkeys work in bursts, ``period`` windows at 5 pages and
  ``period`` at 1 (or 2): their weight per page of their average compute against the honest
  3-page miners'. Above 1, bursts would pay more than steady work of the same compute.
- ``cycle_5_carry``: the 5-window bursts measured like the pages ``bench/carry.py`` read
  off a real miner's uploads in each phase of that cycle: its error feedback sends in its
  low windows what its full ones left out, and pays it back in its next full ones.

Each window's match score (relative random-page gain) for a miner of ``p`` pages is the
window's common level plus ``GAIN_OFFSET[p] + GAIN_SD[p] * N(0, 1)``; its own-page
advantage is ``N(ADVANTAGE_MEAN[p], ADVANTAGE_SD[p])``. The constants are the honest
miners' measurements from window 6 on in nine recorded localnet runs (the three
``tests/score/data/adaptive_journals.json`` runs, and a 20-window adaptive, a 20-window
coast and a 40-window coast run, 2026-12-02, both validators: 217-221 measurements per
page count), as offsets from the window's honest median. Only the ranks and the
advantages matter to scoring, so the common level is a constant.

    .venv/bin/python bench/rating_horizon.py                       # memories 0 5 10 15 20
    .venv/bin/python bench/rating_horizon.py --memory 0 20 --windows 1000 --seeds 5
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_info  # noqa: E402
from gauntlet.node.journal_replay import replay  # noqa: E402
from gauntlet.score.config import ScoringConfig  # noqa: E402

# Honest measurements by pages, offsets from the window's honest median (see the docstring).
GAIN_OFFSET = {1: -0.0417, 2: -0.0086, 3: 0.0011, 4: 0.0069, 5: 0.0090}
GAIN_SD = {1: 0.0261, 2: 0.0124, 3: 0.0060, 4: 0.0085, 5: 0.0096}
ADVANTAGE_MEAN = {1: 0.055, 2: 0.048, 3: 0.041, 4: 0.034, 5: 0.031}
ADVANTAGE_SD = {1: 0.046, 2: 0.027, 3: 0.023, 4: 0.017, 5: 0.021}
# Pages a burst miner's updates measured like, by phase of a 5-window cycle (5 pages, then
# 1 or 2), carrying its residual: bench/carry.py, the mean of its seeds (docs/scoring.md,
# "The error feedback's carry"). Low windows send what earlier full ones left out, and the
# full windows after a low stretch send less than a steady 5-page miner's.
CARRY = {
    1: {"low, first 2": 1.92, "low, later": 1.72, "full, first 2": 4.22, "full, later": 5.03},
    2: {"low, first 2": 2.81, "low, later": 2.43, "full, first 2": 4.43, "full, later": 4.98},
}
CARRY_PERIOD = 5  # the cycle bench/carry.py measured
LEVEL = 0.01  # the window's common gain level: any constant gives the same ranks
LOSS_BEFORE = 3.0  # own-page loss before; scoring reads the advantage relative to it


def at_pages(table: dict[int, float], pages: float) -> float:
    """``table`` (by whole pages, 1-5) read at ``pages``, linearly between its entries:
    the measurement of an update that measures like a fractional number of pages."""
    if pages == int(pages):
        return table[int(pages)]
    low = min(max(int(pages), 1), 4)
    return table[low] + (table[low + 1] - table[low]) * (pages - low)


def in_full_phase(window: int, period: int) -> bool:
    """Whether ``window`` falls in the full half of a burst cycle (``period`` windows full,
    then ``period`` low)."""
    return (window // period) % 2 == 0


def burst_phase(window: int, period: int) -> str:
    """The phase of a burst cycle that ``window`` falls in, as ``CARRY`` and
    ``bench/carry.py`` name them."""
    full = in_full_phase(window, period)
    return ("full" if full else "low") + (", first 2" if window % period < 2 else ", later")


def network(pages_each: int = 2) -> dict[int, int]:
    """uid -> pages: ``pages_each`` honest miners of each compute from 1 to 5 pages."""
    return {uid: 1 + uid // pages_each for uid in range(5 * pages_each)}


def journal(
    schedule: list[dict[int, int]],
    evaluated: int,
    rng: random.Random,
    measured_like: list[dict[int, float]] | None = None,
) -> list[dict[str, Any]]:
    """Journal rows for ``schedule`` (per window, uid -> pages trained then; a uid present
    for the first time is a new hotkey): ``evaluated`` uids measured a window, at random.
    ``measured_like`` (per window, uid -> pages): where given, the miner's measurements
    are drawn as those of that many pages (the error feedback's carry, ``bench/carry.py``),
    while it still declares the pages it trained."""
    windows, known = [], set()
    for index, pages in enumerate(schedule):
        new = {str(uid): f"hotkey{uid}" for uid in pages if uid not in known}
        known |= set(pages)
        measured = set(rng.sample(sorted(pages), min(evaluated, len(pages))))
        rows: list[list[Any]] = []
        for uid in sorted(pages):
            if uid not in measured:
                rows.append([uid, "ok", 1.0])
                continue
            p = pages[uid]
            m = measured_like[index].get(uid, p) if measured_like else p
            gain = LEVEL + at_pages(GAIN_OFFSET, m) + at_pages(GAIN_SD, m) * rng.gauss(0.0, 1.0)
            advantage = rng.gauss(at_pages(ADVANTAGE_MEAN, m), at_pages(ADVANTAGE_SD, m))
            after = LOSS_BEFORE * (1.0 - 0.01 * p)
            rows.append([uid, "ok", 1.0, p, LOSS_BEFORE, after, gain, advantage])
        windows.append({"window": index, "hotkeys": new, "peers": rows})
    return windows


def mean_weight(weights: list[dict[int, float]], uids: list[int], start: int, end: int) -> float:
    """The mean over ``uids`` and windows ``[start, end)`` of their weights."""
    return statistics.fmean(weights[w].get(uid, 0.0) for w in range(start, end) for uid in uids)


def steady(
    config: ScoringConfig, windows: int, evaluated: int, rng: random.Random
) -> dict[str, Any]:
    pages = network()
    weights = replay(journal([pages] * windows, evaluated, rng), config)
    span = max(10, windows // 10)
    stretches = {
        "early": (span, 2 * span),
        "middle": (windows // 2 - span // 2, windows // 2 + span // 2),
        "end": (windows - span, windows),
    }
    out: dict[str, Any] = {}
    for name, (start, end) in stretches.items():
        by_pages = {
            p: mean_weight(weights, [u for u in pages if pages[u] == p], start, end)
            for p in range(1, 6)
        }
        top_rate = by_pages[5] / 5
        out[name] = {
            "windows": [start, end],
            "weight_by_pages_1_to_5": [round(by_pages[p], 4) for p in range(1, 6)],
            "per_page_vs_5_pages": [
                round(by_pages[p] / p / top_rate, 3) if top_rate > 0 else None for p in range(1, 6)
            ],
        }
    return out


def newcomer(
    config: ScoringConfig, windows: int, evaluated: int, follow: int, rng: random.Random
) -> dict[str, Any]:
    pages = network()
    joined = dict(pages)
    new_uid = max(pages) + 1
    joined[new_uid] = 5
    half = windows // 2
    schedule = [pages] * half + [joined] * follow
    weights = replay(journal(schedule, evaluated, rng), config)
    incumbents = [u for u in pages if pages[u] == 5]
    reached = next(
        (
            w - half
            for w in range(half, len(schedule))
            if weights[w].get(new_uid, 0.0) >= mean_weight(weights, incumbents, w, w + 1) > 0
        ),
        None,
    )
    new_mean = mean_weight(weights, [new_uid], half, len(schedule))
    old_mean = mean_weight(weights, incumbents, half, len(schedule))
    return {
        "windows_to_reach_incumbents": reached,
        "weight_vs_incumbents_over_follow": round(new_mean / old_mean, 3) if old_mean else None,
    }


def coast(
    config: ScoringConfig, windows: int, evaluated: int, follow: int, rng: random.Random
) -> dict[str, Any]:
    pages = network()
    coaster = max(u for u in pages if pages[u] == 5)
    after = dict(pages)
    after[coaster] = 2
    half = windows // 2
    weights = replay(journal([pages] * half + [after] * follow, evaluated, rng), config)
    before = mean_weight(weights, [coaster], half - follow // 2, half)
    twos = [u for u in pages if pages[u] == 2]
    excess = sum(
        weights[w].get(coaster, 0.0) - mean_weight(weights, twos, w, w + 1)
        for w in range(half, half + follow)
    )
    tail = max(1, follow // 5)
    end = len(weights)
    return {
        "excess_in_windows_of_its_full_pay": round(excess / before, 2) if before else None,
        "weight_at_the_end_vs_2_pages": round(
            mean_weight(weights, [coaster], end - tail, end)
            / max(mean_weight(weights, twos, end - tail, end), 1e-12),
            2,
        ),
    }


def cycle(
    config: ScoringConfig,
    windows: int,
    evaluated: int,
    period: int,
    rng: random.Random,
    carry: bool = False,
) -> dict[str, Any]:
    """Two more hotkeys that alternate, ``period`` windows each, between 5 pages and 1
    (3 on average) and between 5 and 2 (3.5): their weight per page of their average
    compute over the second half of the run, against the honest 3-page miners' per page.
    Above 1, working in bursts pays more than steady work of the same compute. ``carry``:
    their updates are measured like the pages ``bench/carry.py`` read off them in each
    phase of a 5-window cycle (``CARRY``), the error feedback's shift of credit in time."""
    if carry and period != CARRY_PERIOD:
        raise ValueError(f"the carry was measured on {CARRY_PERIOD}-window bursts, not {period}")
    pages = network()
    burst_1, burst_2 = max(pages) + 1, max(pages) + 2
    schedule = []
    for w in range(windows):
        full = in_full_phase(w, period)
        schedule.append({**pages, burst_1: 5 if full else 1, burst_2: 5 if full else 2})
    measured = (
        [
            {b: CARRY[low][burst_phase(w, period)] for b, low in ((burst_1, 1), (burst_2, 2))}
            for w in range(windows)
        ]
        if carry
        else None
    )
    weights = replay(journal(schedule, evaluated, rng, measured), config)
    half = windows // 2
    threes = mean_weight(weights, [u for u in pages if pages[u] == 3], half, windows) / 3
    if threes <= 0:
        return {"5_and_1_vs_3_pages": None, "5_and_2_vs_3_pages": None}
    return {
        "5_and_1_vs_3_pages": round(mean_weight(weights, [burst_1], half, windows) / 3 / threes, 3),
        "5_and_2_vs_3_pages": round(
            mean_weight(weights, [burst_2], half, windows) / 3.5 / threes, 3
        ),
    }


def mean_of(runs: list[Any]) -> Any:
    """The mean of ``runs`` (equal-shaped dicts of numbers or None), key by key."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: mean_of([r[k] for r in runs]) for k in first}
    if isinstance(first, list) and any(isinstance(x, float) or x is None for x in first):
        return [mean_of([r[i] for r in runs]) for i in range(len(first))]
    if isinstance(first, list):
        return first
    values = [r for r in runs if r is not None]
    if not values:
        return None
    return round(statistics.fmean(values), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", type=float, nargs="+", default=[0.0, 5.0, 10.0, 15.0, 20.0])
    parser.add_argument("--windows", type=int, default=600)
    parser.add_argument("--follow", type=int, default=100)
    parser.add_argument("--evaluated", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--periods", type=int, nargs="+", default=[5, 10, 40])
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    for memory in args.memory:
        config = ScoringConfig(rating_memory=memory)
        runs: dict[str, list[Any]] = {"steady": [], "newcomer": [], "coast": []}
        runs.update({f"cycle_{period}": [] for period in args.periods})
        for seed in range(args.seeds):
            runs["steady"].append(steady(config, args.windows, args.evaluated, random.Random(seed)))
            runs["newcomer"].append(
                newcomer(config, args.windows, args.evaluated, args.follow, random.Random(seed))
            )
            runs["coast"].append(
                coast(config, args.windows, args.evaluated, args.follow, random.Random(seed))
            )
            for period in args.periods:
                runs[f"cycle_{period}"].append(
                    cycle(config, args.windows, args.evaluated, period, random.Random(seed))
                )
            if CARRY_PERIOD in args.periods:
                runs.setdefault(f"cycle_{CARRY_PERIOD}_carry", []).append(
                    cycle(
                        config,
                        args.windows,
                        args.evaluated,
                        CARRY_PERIOD,
                        random.Random(seed),
                        True,
                    )
                )
        results[f"{memory:g}"] = {name: mean_of(r) for name, r in runs.items()}
    header = {
        "bench": "rating_horizon",
        "windows": args.windows,
        "follow": args.follow,
        "evaluated": args.evaluated,
        "seeds": args.seeds,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
    }
    # one line per memory and measure, so runs compare line by line
    lines = [
        f' "{memory}/{name}": {json.dumps(value)}'
        for memory, measures in results.items()
        for name, value in measures.items()
    ]
    print("{\n" + json.dumps(header)[1:-1] + ",\n" + ",\n".join(lines) + "\n}")


if __name__ == "__main__":
    main()
