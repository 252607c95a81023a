"""Running `gauntlet localnet` as a real process, and checking what it left behind."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HONEST_WINDOWS = 5  # the shared honest run's windows (conftest.honest_run)
# The research runs' corpus on pages other than the suite's: a 2M-token stdlib corpus, so
# that 2048-token pages give 976 of them (docs/runs.md, "With smaller pages").
RESEARCH_CORPUS_TOKENS = 2_000_000


@dataclass(frozen=True)
class HonestRun:
    """The shared honest localnet run: its directory and the finished process."""

    run: Path  # <run_dir>/<timestamp>/
    completed: subprocess.CompletedProcess[str]


def run_localnet(
    run_dir: Path, dataset_dir: Path, *flags: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """``gauntlet localnet FLAGS`` into ``run_dir`` over the prepared dataset, output captured.

    The caller's GAUNTLET_* variables are dropped so only the flags decide the run.
    """
    return subprocess.run(
        [
            sys.executable, "-m", "gauntlet.cli", "localnet", *flags,
            "--localnet.run_dir", str(run_dir), "--data.dataset_dir", str(dataset_dir),
        ],
        capture_output=True, text=True, timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("GAUNTLET_")},
    )  # fmt: skip


def scenario_run(
    run_dir: Path,
    dataset_dir: Path,
    scenario: Path,
    seed: str | None,
    timeout: float = 1200,
    flags: tuple[str, ...] = (),
) -> tuple[Path, dict]:
    """Run ``scenario`` (with ``--model.seed seed`` unless None, and ``flags``); the run's
    directory and its summary."""
    seeded = () if seed is None else ("--model.seed", seed)
    completed = run_localnet(
        run_dir, dataset_dir, "--localnet.scenario", str(scenario), *seeded, *flags,
        timeout=timeout,
    )  # fmt: skip
    (run,) = run_dir.iterdir()
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-8000:]
    return run, json.loads((run / "summary.json").read_text())


def dataset_of_pages(
    tmp_path_factory: pytest.TempPathFactory, suite_dataset: Path, page_tokens: str | None
) -> tuple[Path, tuple[str, ...]]:
    """The dataset a research run uses and the flags it needs: the suite's unless
    ``page_tokens`` is set, else a stdlib corpus of ``RESEARCH_CORPUS_TOKENS`` cut into
    pages of that many tokens."""
    if page_tokens is None:
        return suite_dataset, ()
    from gauntlet.data import ensure_dataset

    path = tmp_path_factory.mktemp("dataset") / f"stdlib-{page_tokens}"
    ensure_dataset(path, page_tokens=int(page_tokens), max_tokens=RESEARCH_CORPUS_TOKENS)
    return path, ("--data.page_tokens", page_tokens)


def miner_behaviours(summary: dict) -> dict[int, str]:
    """uid -> behaviour of every miner of a run's summary."""
    return {int(u): b for u, b in summary["behaviours"].items() if b != "validator"}


def incentives(summary: dict, *, late: bool = False) -> dict[int, float]:
    """uid -> the incentive the chain paid at the end of the run, or (``late``) averaged
    over the samples of its second half (``incentive_late``: the rate once the network has
    settled, not one window's draw; docs/localnet.md)."""
    return {int(u): v for u, v in summary["incentive_late" if late else "incentive"].items()}


def pay_per_page(summary: dict, behaviour: str, *, late: bool = False) -> dict[int, float]:
    """uid -> the incentive each miner of ``behaviour`` was paid (:func:`incentives`) over its
    page budget."""
    incentive, budgets = incentives(summary, late=late), summary["budgets"]
    return {
        u: incentive.get(u, 0.0) / float(budgets[str(u)])
        for u, b in miner_behaviours(summary).items()
        if b == behaviour
    }


def honest_median_per_page(summary: dict, *, late: bool = False) -> float:
    """The median honest miner's incentive per page of its budget."""
    return statistics.median(pay_per_page(summary, "honest", late=late).values())


def honest_pages_and_pay(summary: dict, *, late: bool = False) -> tuple[list[float], list[float]]:
    """The honest miners' page budgets and the incentive each was paid, in uid order."""
    incentive = incentives(summary, late=late)
    honest = sorted(u for u, b in miner_behaviours(summary).items() if b == "honest")
    pages = [float(summary["budgets"][str(u)]) for u in honest]
    return pages, [incentive.get(u, 0.0) for u in honest]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
