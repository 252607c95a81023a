"""Run a node coroutine until it finishes or the process is asked to stop.

SIGINT/SIGTERM cancel the node's task so its ``finally`` blocks close the chain,
stores and files; a start-up problem prints one clear line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from gauntlet.chain.base import ChainError, ChainUnavailable
from gauntlet.config.schema import GauntletConfig
from gauntlet.storage.base import StoreUnavailable, Throttled
from gauntlet.telemetry import METRICS

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP = 2
OUTAGE_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)

T = TypeVar("T")
P = ParamSpec("P")


async def retry_transient(step: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one step of a node loop, riding out chain and store outages.

    An outage (chain unreachable, store unavailable or throttling) is logged and
    the step retried with growing pauses, indefinitely: a node keeps its state and
    carries on when the service is back. Any other error propagates.
    """
    attempt = 0
    while True:
        try:
            return await step(*args, **kwargs)
        except (ChainUnavailable, StoreUnavailable, Throttled) as exc:
            pause = OUTAGE_BACKOFF_SECONDS[min(attempt, len(OUTAGE_BACKOFF_SECONDS) - 1)]
            log.warning("%s unavailable (%s); retrying in %.0fs", type(exc).__name__, exc, pause)
            METRICS.error(("chain_" if isinstance(exc, ChainError) else "store_") + exc.reason)
            attempt += 1
            await asyncio.sleep(pause)


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
    from gauntlet.node.runtime import StartupError

    try:
        outcome = asyncio.run(_main(runner, config))
    except (StartupError, WalletError, ChainError) as exc:
        log.error("cannot start: %s", exc)
        return EXIT_STARTUP
    log.info("stopped (%s)", outcome)
    return EXIT_OK
