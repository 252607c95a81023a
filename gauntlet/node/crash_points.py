"""Aimed crash injection: a node SIGKILLs itself at a named point of its window loop.

A kill at a random moment lands in the long stretches (training, evaluation) and almost
never in the few instructions that decide whether state survives: between the journal
line and the state file, between stepping the model and saving, between saving and
publishing. Chaos tests aim there instead. With the environment variable
``GAUNTLET_CRASH_AT=<point>`` set, a node sends itself SIGKILL (no cleanup, no flush:
what a power cut or the OOM killer does) the first time it reaches ``<point>``; the
localnet restarts it with the next point of its list (``--localnet.crash_points``).

Unset (always, outside tests), :func:`crash_point` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import sys

from gauntlet.config.loader import CRASH_ENV

__all__ = ["CRASH_ENV", "VALIDATOR_POINTS", "CrashPointError", "armed_point", "crash_point"]

# The validator's window loop, in order (gauntlet/node/validator.py).
VALIDATOR_POINTS = (
    "start",  # state and secret loaded, before catching up
    "catch_up",  # in catch-up, the model stepped by one record, before the next
    "judged",  # a window's uploads opened and judged, nothing checked yet
    "checked",  # the checks' verdicts, before evaluation
    "evaluated",  # evaluations done, before the model steps
    "stepped",  # the model at θ_{w+1}, the scoring state not yet advanced
    "advanced",  # the scoring state advanced in memory, nothing written
    "weights_set",  # weights on chain, state and journal not yet written
    "journalled",  # the journal line fsynced, the state file not yet replaced
    "committed",  # state and journal on disk, the report not yet published
    "published",  # the report published, before pruning and the next window
)


class CrashPointError(ValueError):
    """``GAUNTLET_CRASH_AT`` names no crash point."""


def armed_point() -> str | None:
    """The point this process will crash at, checked: a typo must not silently disarm a
    chaos test."""
    point = os.environ.get(CRASH_ENV)
    if point is None or point == "":
        return None
    if point not in VALIDATOR_POINTS:
        raise CrashPointError(f"{CRASH_ENV}={point!r}: not one of {', '.join(VALIDATOR_POINTS)}")
    return point


def crash_point(name: str) -> None:
    """SIGKILL this process if ``GAUNTLET_CRASH_AT`` names ``name``."""
    if os.environ.get(CRASH_ENV) != name:
        return
    sys.stderr.write(f"crash point {name}: SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
