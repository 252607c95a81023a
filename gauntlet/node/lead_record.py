"""The lead's aggregation record for a window: choose the members, check them, mirror their
payloads, publish (SPEC section 8.2).

Miners wait for this record to train the next window, so the lead makes it before the rest
of its evaluation: the members' loss checks are short ones (``validator.
member_check_batches``, no control), and the mirror copies run while they do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gauntlet.compress.aggregate import peer_shares
from gauntlet.ledger.digest import model_sha256_after
from gauntlet.node.gather import Contribution
from gauntlet.node.lead import aggregation_record
from gauntlet.node.mirrors import mirror_payloads
from gauntlet.node.peer_sets import members_to_aggregate, peer_set_for
from gauntlet.node.records import (
    advance_ledger,
    fetch_record,
    publish_record,
    recorded_contributions,
)
from gauntlet.node.replay import Lead
from gauntlet.score.config import ScoringConfig
from gauntlet.score.loss import Evaluation, passes_member_check
from gauntlet.train.fingerprint import fingerprint_after

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

# (window, contributions, scales, uids) -> each uid's member check (Validator.measure)
MemberCheck = Callable[
    [int, list[Contribution], dict[int, float], list[int]], dict[int, Evaluation]
]


async def publish_window_record(
    rt: Runtime,
    scoring: ScoringConfig,
    member_check: MemberCheck,
    window: int,
    lead: Lead,
    contributions: list[Contribution],
    passed: list[int],
    scales: dict[int, float],
    *,
    norms: dict[int, float],
    validation_loss: float,
) -> tuple[list[Contribution] | None, set[int]]:
    """Lead: choose, check and publish the window's aggregate. Returns what it applies
    (None: the record did not count, so the window is skipped like on every other
    node) and the members that failed their loss check (they lose their place). The
    members are measured here (``member_check``, in a thread), together, before and apart
    from the window's evaluation, so the record is out as soon as they are.
    ``norms`` (the checks' update norms) give each member's share of the aggregate and
    ``validation_loss`` is θ_window's: the record carries both for the ledger."""
    fetched = await fetch_record(rt, lead, window)
    if fetched is not None:  # restarted after publishing: the record stands as it is
        advance_ledger(rt, fetched)
        published = fetched.record
        rt.peer_set_window = published.peer_set_window
        have = {c.uid: c for c in contributions}
        named = await recorded_contributions(rt, published, have, rt.store)
        if all(c.ok for c in named):
            return named, set()
        rt.mark_diverged(window)  # as any node that cannot fetch a recorded payload
        return None, set()
    peer_set = await peer_set_for(rt, lead.hotkey, lead.store, window)
    rt.peer_set_window = peer_set.window if peer_set is not None else 0
    members = members_to_aggregate(contributions, passed, peer_set)
    # Copies of the members' payloads go to this bucket while they are measured: the
    # record is published only once followers can read what it names here.
    mirroring = asyncio.create_task(mirror_payloads(rt.store, window, members))
    checks = await asyncio.to_thread(
        member_check, window, contributions, scales, [c.uid for c in members]
    )
    await mirroring  # a copy it could not store is logged there; followers ask its author
    failed = {
        c.uid
        for c in members
        if not passes_member_check(
            checks[c.uid],
            nonfinite_penalty=scoring.nonfinite_loss_penalty,
            relative=scoring.relative_improvement,
        )
    }
    if failed:
        log.info("window %d: peer-set members %s fail the loss check", window, sorted(failed))
    used = [c for c in members if c.uid not in failed]
    update = rt.aggregate(used)
    compress, lr = rt.config.compress, rt.config.train.outer_lr
    record = aggregation_record(
        netuid=rt.config.chain.netuid,
        window=window,
        hotkey=rt.hotkey,
        used=[(c.uid, c.hotkey, c.sha256) for c in used],
        fingerprint=fingerprint_after(rt.model, update, lr, window + 1),
        peer_set_window=rt.peer_set_window,
        shares=peer_shares([norms[c.uid] for c in used], compress.normalise, compress.clip_norm),
        previous=rt.ledger_head,
        model_sha256=await asyncio.to_thread(model_sha256_after, rt.model, update, lr),
        validation_loss=validation_loss,
    )
    return (used if await publish_record(rt, record) else None), failed
