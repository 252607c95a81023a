"""Fault injection for the localnet: a chain outage, a validator crash (SIGKILL) and restart."""

from __future__ import annotations

import time
from collections.abc import Callable

from gauntlet.localnet.processes import Child, ProcessGroup


class FaultError(RuntimeError):
    pass


def chain_outage(
    group: ProcessGroup, seconds: float, restart: Callable[[], str], endpoint: str
) -> None:
    """Stop the chain, wait, restart it on the same port and database (nodes must ride it out)."""
    chain = next(c for c in group.children if c.name == "chain")
    print(f"localnet: fault injection: chain down for {seconds:.0f}s", flush=True)
    group.stop(chain)
    time.sleep(seconds)
    restarted = restart()
    if restarted != endpoint:
        raise FaultError(f"chain came back at {restarted}, not {endpoint}")
    print("localnet: fault injection: chain is back", flush=True)


def crash_and_restart(group: ProcessGroup, child: Child, delay: float, downtime: float) -> Child:
    """Wait ``delay`` seconds (to land mid-window), SIGKILL ``child``, wait ``downtime``, start
    it again with the same command line and environment; the new child."""
    time.sleep(delay)
    argv = [str(a) for a in child.process.args]  # type: ignore[union-attr]
    print(f"localnet: fault injection: kill -9 {child.name}", flush=True)
    group.kill(child)
    time.sleep(downtime)
    print(f"localnet: fault injection: restarting {child.name}", flush=True)
    return group.start(child.name, argv, env=child.env)
