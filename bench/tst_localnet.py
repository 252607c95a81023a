"""Validation curves of localnet runs, for Token-Superposition Training against its twin.

Reads finished ``gauntlet localnet`` run directories (``scenarios/tst.toml`` and
``scenarios/tst-baseline.toml``, any seeds) and prints one JSON object: per run, per
window, the lead validator's next-token validation loss of θ_{w+1}, the window's phase
(``bag``) and superposition loss, the data tokens the network's accepted contributions
processed so far (each ``ok`` miner's pages × bag × page tokens) and the wall time since
the first window began (a localnet window is a fixed number of simulated blocks). The summary gives, per scenario, the final
validation loss of each seed, and for the TST runs the window of the switch. A localnet's
windows are fixed in wall time (simulated blocks), so equal windows are equal wall time and
equal miner compute: the comparison at the last window is at equal cost.

    .venv/bin/python bench/tst_localnet.py runs/tst/2026* runs/tst-baseline/2026*
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.machine import machine_info  # noqa: E402
from gauntlet.localnet.results import RunResults  # noqa: E402


def curve(run: Path) -> dict[str, Any]:
    results = RunResults.model_validate_json((run / "report" / "results.json").read_text())
    config = json.loads((run / "node-config.json").read_text())
    page_tokens = config["data"]["page_tokens"]
    pages = {n.uid: n.pages or 0 for n in results.nodes if n.role == "miner"}
    # A localnet window lasts blocks_per_window simulated blocks of block_time seconds.
    window_s = results.meta.block_time * config["chain"]["blocks_per_window"]
    first = results.windows[0].window if results.windows else 0
    tokens = 0
    rows = []
    for w in results.windows:
        ok = [uid for uid, p in w.peers.items() if p.status == "ok"]
        tokens += sum(pages.get(uid, 0) for uid in ok) * w.bag * page_tokens
        rows.append(
            {
                "window": w.window,
                "bag": w.bag,
                "tokens": tokens,
                "wall_s": round((w.window + 1 - first) * window_s, 1),
                "val_loss": round(w.validation_loss_after, 4),
                "phase_loss": None if w.phase_loss_after is None else round(w.phase_loss_after, 4),
            }
        )
    train = config["train"]
    return {
        "run": str(run),
        "scenario": results.meta.scenario,
        "seed": results.meta.seed,
        "superposition_bag": train.get("superposition_bag", 1),
        "switch_window": train.get("superposition_until", 0) or None,
        "windows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="localnet run directories")
    runs = [curve(run) for run in parser.parse_args().runs]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_scenario.setdefault(run["scenario"], []).append(run)
    summary = {
        name: {
            "seeds": [r["seed"] for r in group],
            "final_window": [r["windows"][-1]["window"] for r in group],
            "final_val_loss": [r["windows"][-1]["val_loss"] for r in group],
            "mean_final_val_loss": round(
                statistics.mean(r["windows"][-1]["val_loss"] for r in group), 4
            ),
            "tokens": [r["windows"][-1]["tokens"] for r in group],
        }
        for name, group in by_scenario.items()
    }
    print(json.dumps({"machine": machine_info(), "summary": summary, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
