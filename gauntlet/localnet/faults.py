"""Fault injection for the localnet: a chain outage, a validator crash (SIGKILL) and
restart, and aimed crashes at named points of the validator's loop."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gauntlet.localnet.processes import Child, ProcessGroup
from gauntlet.node.crash_points import CRASH_ENV, VALIDATOR_POINTS

# Windows the lead may report after a crash point is armed before it must have fired:
# every point is on the path of each window, or of each restart, so one or two suffice.
CRASH_POINT_WINDOWS = 4


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
    print(f"localnet: fault injection: kill -9 {child.name}", flush=True)
    group.kill(child)
    time.sleep(downtime)
    print(f"localnet: fault injection: restarting {child.name}", flush=True)
    return _respawn(group, child, child.env)


def _respawn(group: ProcessGroup, child: Child, env: dict[str, str] | None) -> Child:
    """Start a stopped ``child`` again: same name and command line, ``env``."""
    argv = [str(a) for a in child.process.args]  # type: ignore[union-attr]
    return group.start(child.name, argv, env=env)


@dataclass
class AimedCrashes:
    """A validator that kills itself at each of ``points`` in turn (``GAUNTLET_CRASH_AT``),
    restarted after each with the next one armed, then without any.

    The schedule is done when every point has fired and the victim, restarted after the
    last, has journalled a window (``journal``: its ``state/validator-H.jsonl``): a run
    that ends before then has not shown that the last crash was survived."""

    victim: str
    points: list[str]
    journal: Path | None = None
    fired: list[str] = field(default_factory=list)
    armed_at: int = 0  # windows reported when the pending point was armed
    journalled_at_restart: int = 0  # the victim's journal lines when it was last restarted

    @classmethod
    def parse(cls, victim: str, spec: str, journal: Path | None = None) -> AimedCrashes:
        points = [p.strip() for p in spec.split(",") if p.strip()]
        unknown = [p for p in points if p not in VALIDATOR_POINTS]
        if unknown:
            raise FaultError(
                f"unknown crash points {unknown}: choose from {', '.join(VALIDATOR_POINTS)}"
            )
        return cls(victim, points, journal)

    def env(self) -> dict[str, str]:
        return {CRASH_ENV: self.points[0]} if self.points else {}

    def done(self) -> bool:
        """Every point fired, and the victim journalled a window after its last restart."""
        if self.points:
            return False
        return not self.fired or self._journalled() > self.journalled_at_restart

    def overdue(self, reported: int) -> str | None:
        """What should have happened by now and has not: the armed point, or the victim's
        recovery after the last one."""
        if reported - self.armed_at <= CRASH_POINT_WINDOWS or self.done():
            return None
        if self.points:
            return f"crash point {self.points[0]!r}"
        return f"a journalled window after crash point {self.fired[-1]!r}"

    def _journalled(self) -> int:
        if self.journal is None or not self.journal.is_file():
            return 0
        return self.journal.read_bytes().count(b"\n")

    def restart(self, group: ProcessGroup, child: Child, reported: int) -> Child:
        """``child`` (the victim) has exited: by its own SIGKILL at the armed point, or the
        run is broken. Start it again with the next point armed."""
        code = child.process.returncode
        if not self.points or code != -signal.SIGKILL:
            raise FaultError(f"{child.name} exited (code {code}); see {child.log_path}")
        point = self.points.pop(0)
        self.fired.append(point)
        group.retire(child)
        print(
            f"localnet: fault injection: {child.name} killed itself at crash point {point!r} "
            f"({len(self.fired)} of {len(self.fired) + len(self.points)}); restarting",
            flush=True,
        )
        env = {k: v for k, v in (child.env or {}).items() if k != CRASH_ENV} | self.env()
        self.armed_at = reported
        self.journalled_at_restart = self._journalled()
        return _respawn(group, child, env)
