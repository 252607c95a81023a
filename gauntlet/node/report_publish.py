"""What a validator publishes once a window is judged and committed: the lead's artifacts
(peer set, checkpoint) and every validator's public window report.

Both are best effort: the window's work is already in the state and journal, so a store
or chain fault here is logged and counted, never retried as the whole window. They fail
independently: a peer set the store refused must not also cost the window's report
(observers such as the localnet and `gauntlet status` read the reports in order)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gauntlet.chain.base import ChainError
from gauntlet.node.crash_points import crash_point
from gauntlet.node.lead import PUBLISH_POLICY
from gauntlet.node.runtime import Runtime
from gauntlet.storage.base import StorageError
from gauntlet.storage.retry import with_retries
from gauntlet.telemetry import METRICS
from protocol.keys import window_report_key
from protocol.schemas import WindowReport

log = logging.getLogger(__name__)


async def publish_window(
    rt: Runtime,
    report: WindowReport,
    lead_artifacts: Callable[[], Awaitable[None]] | None,
) -> None:
    """Publish ``lead_artifacts`` (None: not the lead, or nothing to publish), then
    ``report``, then prune what the window no longer needs."""
    window = report.window
    if lead_artifacts is not None:
        await _best_effort(window, "lead's artifacts", lead_artifacts)

    async def put_report() -> None:
        body = report.model_dump_json().encode()
        with METRICS.upload("report", len(body)):
            await with_retries(
                lambda: rt.store.put(window_report_key(window, rt.hotkey), body), PUBLISH_POLICY
            )
        crash_point("published")
        await rt.prune(window)

    await _best_effort(window, "report", put_report)


async def _best_effort(window: int, what: str, publish: Callable[[], Awaitable[None]]) -> None:
    try:
        await publish()
    except (StorageError, ChainError) as exc:
        log.warning("window %d: could not publish the %s (%s): %s", window, what, exc.reason, exc)
        METRICS.error(f"publish_{exc.reason}")
