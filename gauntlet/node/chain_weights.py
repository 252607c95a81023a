"""Setting a validator's weights on chain, and what became of the attempt (for the status
page: whether weights reached the chain is what a miner's incentive depends on)."""

from __future__ import annotations

import logging

from gauntlet.chain.base import ChainError
from gauntlet.node.runtime import Runtime
from gauntlet.node.status_page import WeightsAttempt
from gauntlet.telemetry import METRICS

log = logging.getLogger(__name__)


async def set_weights(rt: Runtime, weights: dict[int, float], window: int) -> WeightsAttempt:
    """Set ``weights`` on chain (after ``window``); what happened, for the status page."""
    uids = sorted(uid for uid, w in weights.items() if w > 0)
    block = await _head_or_none(rt)
    if not uids:
        log.info("no positive scores yet; not setting weights")
        METRICS.weights_set.labels("skipped").inc()
        return WeightsAttempt(
            window=window, block=block, result="skipped", detail="no positive scores yet"
        )
    try:
        await rt.chain.set_weights(uids, [weights[uid] for uid in uids])
    except ChainError as exc:  # rate limit, outage: keep working, try next interval
        log.warning("set_weights failed (%s): %s", exc.reason, exc)
        METRICS.weights_set.labels("failure").inc()
        METRICS.error(f"set_weights_{exc.reason}")
        return WeightsAttempt(
            window=window, block=block, result="failed", detail=f"{exc.reason}: {exc}"[:200]
        )
    METRICS.weights_set.labels("success").inc()
    return WeightsAttempt(window=window, block=block, result="set", detail=f"{len(uids)} uids")


async def _head_or_none(rt: Runtime) -> int | None:
    try:
        return await rt.chain.current_block()
    except ChainError:
        return None
