"""Holding the localnet's chain at block 0 until every node is up.

Nodes start in parallel, import torch, build the model and read the dataset; on two cores
the 17 nodes of scenarios/adversarial.toml take about 50 s. Were the chain's blocks to run
meanwhile, nodes would join windows late, each at a different one, and the run would test
a different scenario on every machine. The chain service is started with ``--hold-until
<run>/chain.release``; :func:`release_when_up` creates that file once every node answers on
its metrics URL, which a node serves just before its window loop.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from gauntlet.localnet.faults import AimedCrashes
from gauntlet.localnet.processes import ProcessGroup

# 17 nodes take ~50 s on two cores; six times that is a machine in trouble, not a slow one.
NODES_UP_TIMEOUT = 300.0


class NodesNotUp(RuntimeError):
    pass


def release_file(run: Path) -> Path:
    """Its existence lets the run's chain leave block 0 (``chain serve --hold-until``)."""
    return run / "chain.release"


def release_when_up(
    group: ProcessGroup, run: Path, metrics: dict[str, str], crashes: AimedCrashes
) -> None:
    """Wait until every node serves its metrics (it does so just before its window loop),
    then release the chain. Holding block 0 until then gives every node the same first
    window however slowly the machine starts them; a run whose windows began while half
    the nodes were still importing torch would test a different scenario."""
    started = time.monotonic()
    waiting = dict(metrics)
    while waiting:
        if time.monotonic() - started > NODES_UP_TIMEOUT:
            raise NodesNotUp(f"{', '.join(waiting)} not up after {NODES_UP_TIMEOUT:.0f}s")
        dead = group.dead()
        if dead and dead[0].name == crashes.victim and crashes.points:  # e.g. at 'start'
            crashes.restart(group, dead[0], 0)
            continue
        if dead:
            raise NodesNotUp(
                f"{dead[0].name} exited (code {dead[0].process.returncode}) while starting; "
                f"see {dead[0].log_path}"
            )
        waiting = {name: url for name, url in waiting.items() if not _answers(url)}
        time.sleep(0.2 if waiting else 0)
    release_file(run).touch()
    print(
        f"localnet: {len(metrics)} nodes up after {time.monotonic() - started:.0f}s; "
        "the chain leaves block 0",
        flush=True,
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
