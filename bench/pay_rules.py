"""Recorded localnet runs replayed under a pay rule that counts pages: what each miner's
share of the weights would have been.

The weights today are the final scores to ``scoring.weight_power`` (2), normalised; a
score is the rating's ordinal, gated, and ranks the updates measured, so the top ranks are
paid about alike whatever their pages and an operator earns more by splitting its compute
across a few hotkeys that rank at the top (docs/scoring.md, "Splitting at the top"). The
rule replayed here pays ``pages^a · score^b`` (normalised), ``pages`` each miner's pages
as it last declared them in an evaluated update: ``a = 0, b = 2`` is today's rule, ``a =
1`` pays per page. The scores are the recording's own (``gauntlet.localnet.recording``:
the run's validators' journals replayed under the rules they ran with), so a rule is
judged on real measurements in seconds. What a replay cannot show is how miners would
answer the rule: a recording's declared pages are fixed, and over-declaring is what pay
per page invites (the own-page sample is what checks them).

Prints JSON: per recording and validator journal, each miner's behaviour, budget and
share of the weights from window ``--from`` on, today and under each ``--rule a,b``.

    .venv/bin/python bench/pay_rules.py RUN/report/recording.json --from 20 --rule 1,1
    .venv/bin/python bench/pay_rules.py tests/score/data/adaptive_journals.json --rule 1,0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.machine import machine_info  # noqa: E402
from gauntlet.localnet.recording import replay_states  # noqa: E402
from gauntlet.score.weights import power_weights  # noqa: E402

Rule = tuple[float, float]  # (a, b): pay ∝ pages^a · score^b, b > 0


def pay(scores: Mapping[int, float], pages: Mapping[int, int], rule: Rule) -> dict[int, float]:
    """``pages^a · max(0, score)^b`` normalised (all 0 when no score is positive); a miner
    never evaluated counts one page. It is :func:`power_weights` with power ``b`` of
    ``pages^(a/b) · score``, so ``(0, p)`` is today's rule with ``weight_power`` ``p``."""
    a, b = rule
    return power_weights({uid: pages.get(uid, 1) ** (a / b) * s for uid, s in scores.items()}, b)


def shares(
    record: Mapping[str, Any], journal: list[dict[str, Any]], rules: Sequence[Rule], since: int
) -> dict[Rule, dict[int, float]]:
    """Per rule, each uid's mean weight over the journal's windows from ``since`` on."""
    declared: dict[int, int] = {}
    totals: dict[Rule, dict[int, float]] = {rule: {} for rule in rules}
    counted = 0
    for window, (_, state) in zip(journal, replay_states(record, journal), strict=True):
        for row in window["peers"]:
            if len(row) > 3:  # evaluated: [uid, status, sync, pages, ...]
                declared[row[0]] = row[3]
        if window["window"] < since:
            continue
        counted += 1
        scores = state.scores()
        for rule in rules:
            for uid, weight in pay(scores, declared, rule).items():
                totals[rule][uid] = totals[rule].get(uid, 0.0) + weight
    if not counted:
        raise ValueError(f"no window from {since} on in this journal")
    return {rule: {uid: w / counted for uid, w in t.items()} for rule, t in totals.items()}


def report(record: Mapping[str, Any], rules: Sequence[Rule], since: int) -> dict[str, Any]:
    """One recording's miners and their shares under today's rule and each of ``rules``."""
    power = float(record["scoring"].get("weight_power", 2.0))
    today: Rule = (0.0, power)
    every = [today, *rules]
    journals = [shares(record, journal, every, since) for journal in record["journals"]]
    miners = {}
    for uid, behaviour in sorted(record["behaviours"].items(), key=lambda kv: int(kv[0])):
        miners[uid] = {
            "behaviour": behaviour,
            "budget_pages": record["declared_pages"].get(uid),
            "share": {
                _label(rule): [round(j[rule].get(int(uid), 0.0), 4) for j in journals]
                for rule in every
            },
        }
    return {"label": record["label"], "today": _label(today), "miners": miners}


def _label(rule: Rule) -> str:
    return f"pages^{rule[0]:g} score^{rule[1]:g}"


def _rule(text: str) -> Rule:
    a, _, b = text.partition(",")
    if not float(b) > 0:
        raise argparse.ArgumentTypeError(f"the score's power must be > 0, got {b}")
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", nargs="+", type=Path, help="recording.json (or a list)")
    parser.add_argument("--rule", action="append", type=_rule, help="a,b (repeatable)")
    parser.add_argument("--from", dest="since", type=int, default=0, help="first window")
    args = parser.parse_args()
    rules = args.rule or [(1.0, 1.0)]
    runs = []
    for path in args.recordings:
        data = json.loads(path.read_text())
        for record in data if isinstance(data, list) else [data]:
            runs.append(report(record, rules, args.since))
    print(json.dumps({"bench": "pay_rules", "from_window": args.since, "runs": runs,
                      "machine": machine_info()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
