"""Each declared page's own advantage, offline on a localnet run: can a validator see which
of the pages a miner declared it did not train?

The own-page sample measures an update's advantage as a mean over the sampled pages, so a
miner that declares 8 pages and trains 6 shows most of an honest 8-page update's
advantage (docs/scoring.md, *Declaring more than one trains*). Measured page by page the
untrained ones might stand out. This rebuilds each window's model from the run's uploads
and the lead's records (bench/recorded_run.py), scales every passed upload to the
window's median norm (as the aggregate does), and for each asked-for uid measures, on
every page its upload declares (all of the page's sequences, up to ``--max-batches``
batches of the validator's size): the loss before, after the uid's update, and the mean
after each ``--controls`` uid's update instead. A page's advantage is ``(control − after)
/ before``: how much more the update lowers that page's loss than updates that did not
train on it. The controls are not scaled by strength (the validator scales by the random
pages' gains), so an update stronger than the controls shows a small positive advantage
even on pages it never saw.

Prints JSON: the machine; per window and uid the advantages in declared order; per uid
the mean at each position in that order and, for each ``--margins`` value, the mean and
largest share of a window's pages below it.

    .venv/bin/python bench/page_advantages.py RUN_DIR --uids 7,8,9 --controls 3,4,5,6 --from 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: PYTHONPATH may override

import torch  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from bench.recorded_run import open_run  # noqa: E402
from gauntlet.model import causal_lm_loss  # noqa: E402
from gauntlet.node.checks import delta_norm  # noqa: E402
from gauntlet.node.gather import decode_update  # noqa: E402
from gauntlet.train.evaluate import batch_losses  # noqa: E402
from gauntlet.train.inner import snapshot  # noqa: E402
from gauntlet.train.outer import applied, apply_delta  # noqa: E402


def page_advantages(
    before: list[float], after: list[float], controls: list[list[float]]
) -> list[float]:
    """Per page: the controls' mean loss less the update's, over the loss before."""
    return [
        (statistics.mean(c) - a) / b
        for b, a, c in zip(before, after, zip(*controls, strict=True), strict=True)
    ]


def summarise(rows: list[list[float]], margins: list[float]) -> dict[str, Any]:
    """One uid's windows: the mean advantage at each declared position (over the windows
    that declared that many), and per margin the mean and largest share of a window's pages
    below it."""
    longest = max(len(r) for r in rows)
    positions = [statistics.mean(r[i] for r in rows if len(r) > i) for i in range(longest)]
    below = {str(m): [sum(a < m for a in r) / len(r) for r in rows if r] for m in margins}
    return {
        "windows": len(rows),
        "by_position": [round(x, 5) for x in positions],
        "below": {
            m: {"mean": round(statistics.mean(v), 4), "max": round(max(v), 4)}
            for m, v in below.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a localnet run directory")
    parser.add_argument("--uids", required=True, help="uids whose pages to measure, e.g. 7,8,9")
    parser.add_argument("--controls", required=True, help="uids whose updates are the controls")
    parser.add_argument("--from", dest="first", type=int, default=1, help="first window")
    parser.add_argument("--max-batches", type=int, default=64, help="batches a page at most")
    parser.add_argument("--margins", default="0,0.01,0.02", help="advantage thresholds")
    args = parser.parse_args()
    uids = [int(u) for u in args.uids.split(",")]
    control_uids = [int(u) for u in args.controls.split(",")]
    margins = [float(m) for m in args.margins.split(",")]
    torch.set_grad_enabled(False)

    recorded = open_run(args.run)
    config, model, dataset = recorded.config, recorded.model, recorded.dataset
    lr = config.train.outer_lr

    def losses(pages: list[int]) -> list[float]:
        out = []
        for page in pages:
            batches = dataset.batches(
                [page],
                seq_len=config.train.seq_len,
                batch_size=config.validator.eval_batch_size,
                seed=0,
            )
            per_batch = batch_losses(model, batches, causal_lm_loss, max_batches=args.max_batches)
            out.append(sum(per_batch) / len(per_batch))
        return out

    start = recorded.start(args.first)
    windows: list[dict[str, Any]] = []
    for window in range(start, max(recorded.records) + 1):
        ok = {
            uid: c
            for (w, uid), c in recorded.uploads.items()
            if w == window and uid in recorded.passed.get(window, set())
        }
        if window >= args.first and ok:
            decoded = {uid: decode_update(c, recorded.decoder) for uid, c in ok.items()}
            norms = {uid: delta_norm(d) for uid, d in decoded.items()}
            median = statistics.median(norms.values())
            scaled = {
                uid: {n: t * (median / norms[uid]) for n, t in d.items()}
                for uid, d in decoded.items()
                if norms[uid] > 0
            }
            base = snapshot(model)
            row: dict[str, list[float]] = {}
            for uid in uids:
                controls = [c for c in control_uids if c != uid and c in scaled]
                if uid not in scaled or ok[uid].manifest is None or not controls:
                    continue
                pages = list(ok[uid].manifest.page_ids)
                before = losses(pages)
                with applied(model, scaled[uid], lr, base):
                    after = losses(pages)
                under = []
                for c in controls:
                    with applied(model, scaled[c], lr, base):
                        under.append(losses(pages))
                row[str(uid)] = [round(a, 5) for a in page_advantages(before, after, under)]
            windows.append({"window": window, "advantages": row})
        aggregate = recorded.aggregate(window)
        if aggregate is not None:
            apply_delta(model, aggregate, lr)
    per_uid = {
        str(uid): summarise(rows, margins)
        for uid in uids
        if (rows := [w["advantages"][str(uid)] for w in windows if str(uid) in w["advantages"]])
    }
    print(
        json.dumps(
            {
                "bench": "page_advantages",
                "run": str(args.run),
                "uids": uids,
                "controls": control_uids,
                "per_uid": per_uid,
                "windows": windows,
                "machine": machine_info("cpu"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
