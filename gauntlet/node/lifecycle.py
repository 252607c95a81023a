"""Run a node coroutine until it finishes or the process is asked to stop.

SIGINT/SIGTERM cancel the node's task so its ``finally`` blocks close the chain,
stores and files; a start-up problem prints one clear line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from gauntlet.chain.base import ChainError, ChainUnavailable
from gauntlet.config.schema import GauntletConfig
from gauntlet.storage.base import StoreUnavailable, Throttled
from gauntlet.telemetry import METRICS

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP = 2
# Pauses between retries during a chain or store outage. The cap is short on
# purpose: a node waiting out a 30 s pause stays idle up to 30 s after the service
# is back, while its window ticks on. One cheap request every few seconds to a
# service that is down costs nothing worth saving.
OUTAGE_BACKOFF_SECONDS = (0.5, 1.0, 2.0)
MAX_OUTAGE_PAUSE_SECONDS = OUTAGE_BACKOFF_SECONDS[-1]

T = TypeVar("T")
P = ParamSpec("P")


# Local filesystem faults that go away when the operator frees space or fixes permissions:
# reported and retried, never a crash that loses the node's place in the window loop.
_DISK_FAULTS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "disk_read_only",
    errno.EACCES: "disk_read_only",
}


def disk_fault(exc: BaseException) -> str | None:
    """The metric name of a local filesystem fault (disk full, quota, read-only), or None."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return _DISK_FAULTS.get(exc.errno)
    return None


def outage_pause(attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row (0-based); never more
    than :data:`MAX_OUTAGE_PAUSE_SECONDS`, so a node resumes within that of recovery."""
    return OUTAGE_BACKOFF_SECONDS[min(attempt, len(OUTAGE_BACKOFF_SECONDS) - 1)]


async def retry_transient(step: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one step of a node loop, riding out chain and store outages and local disk faults.

    An outage (chain unreachable, store unavailable or throttling) or a full or read-only
    local disk (:func:`disk_fault`) is logged and the step retried with growing pauses (:func:`outage_pause`, at most a few
    seconds), indefinitely: a node keeps its state and carries on within seconds
    of the service coming back. Any other error propagates.
    """
    attempt = 0
    while True:
        try:
            return await step(*args, **kwargs)
        except (ChainUnavailable, StoreUnavailable, Throttled) as exc:
            pause = outage_pause(attempt)
            log.warning("%s unavailable (%s); retrying in %.1fs", type(exc).__name__, exc, pause)
            METRICS.error(("chain_" if isinstance(exc, ChainError) else "store_") + exc.reason)
        except OSError as exc:
            pause = _disk_fault_pause(exc, attempt, "")
        attempt += 1
        await asyncio.sleep(pause)


async def retry_local_write(write: Callable[[], T], what: str) -> T:
    """Run a synchronous write to local disk until it succeeds, riding out a full or
    read-only disk (a WARNING and the ``disk_full``/``disk_read_only`` error metric each
    try, a pause of at most a few seconds between tries). For writes that must happen
    exactly where they are in a window's work (a validator's state and journal), which a
    retry of the whole step would repeat. Other errors propagate."""
    attempt = 0
    while True:
        try:
            return write()
        except OSError as exc:
            pause = _disk_fault_pause(exc, attempt, f"cannot write {what}: ")
            attempt += 1
            await asyncio.sleep(pause)


def _disk_fault_pause(exc: OSError, attempt: int, context: str) -> float:
    """Report a local disk fault (WARNING and metric) and return the pause before the next
    try; re-raise ``exc`` when it is not one."""
    fault = disk_fault(exc)
    if fault is None:
        raise exc
    pause = outage_pause(attempt)
    log.warning("%slocal %s (%s); retrying in %.1fs", context, fault.replace("_", " "), exc, pause)
    METRICS.error(fault)
    return pause


async def _main(runner: Callable[[GauntletConfig], Awaitable[None]], config: GauntletConfig) -> str:
    task = asyncio.ensure_future(runner(config))
    stop_reason: list[str] = []

    def stop(signame: str) -> None:
        stop_reason.append(signame)
        task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        await task
    except asyncio.CancelledError:
        if not stop_reason:
            raise
    return stop_reason[0] if stop_reason else "finished"


def run_until_signalled(
    runner: Callable[[GauntletConfig], Awaitable[None]], config: GauntletConfig
) -> int:
    from gauntlet.node.identity import WalletError
    from gauntlet.node.node_lock import NodeLockError
    from gauntlet.node.runtime import StartupError

    try:
        outcome = asyncio.run(_main(runner, config))
    except (StartupError, WalletError, NodeLockError, ChainError) as exc:
        # "cannot start", or "stopping" for a node that lost its hotkey to another one
        log.error("%s: %s", getattr(exc, "headline", "cannot start"), exc)
        return EXIT_STARTUP
    log.info("stopped (%s)", outcome)
    return EXIT_OK


def exit_without_teardown(code: int) -> None:
    """End the process now, logs and stdio flushed. Once a node command has returned, its
    own finally blocks have closed the chain client, stores, journal and state files; what
    is left is the interpreter's teardown (every module's finalisers, torch's among them),
    about 1 s of CPU per process. 17 localnet nodes stopped at once spent 10 s in it on two
    cores, past the localnet's grace, and ``docker stop`` waits for it too."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
