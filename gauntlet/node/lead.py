"""The lead validator: who it is (a deterministic rule) and what it publishes.

Rule: among neurons with a validator permit, the highest stake; ties go to the
lowest uid. Every node applies the same rule to the same metagraph, so every
node agrees on whose signed aggregation records and checkpoints to trust.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from gauntlet.chain.base import Metagraph, Neuron
from gauntlet.node.checkpoints import save_checkpoint
from gauntlet.node.peer_sets import publish_peer_set
from gauntlet.score.state import PeerState
from gauntlet.storage.retry import RetryPolicy, with_retries
from protocol.schemas import AggregatedContribution, AggregationRecord, RecordLink

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

# Peer sets and checkpoints: retried over about half a minute before the window gives up.
PUBLISH_POLICY = RetryPolicy(attempts=8, base_delay=0.5, max_delay=8.0)


def lead_validator(metagraph: Metagraph) -> Neuron | None:
    candidates = [n for n in metagraph.neurons if n.validator_permit]
    return min(candidates, key=lambda n: (-n.stake, n.uid), default=None)


def aggregation_record(
    *,
    netuid: int,
    window: int,
    hotkey: str,
    used: list[tuple[int, str, str]],
    fingerprint: list[float],
    peer_set_window: int = 0,
    shares: list[float] | None = None,
    previous: RecordLink | None = None,
    model_sha256: str | None = None,
    validation_loss: float | None = None,
) -> AggregationRecord:
    """The record of window ``window``: ``used`` holds (uid, hotkey, payload sha256) in uid
    order, ``shares`` each one's part of the aggregate (:func:`peer_shares`); ``previous``
    is the lead's ledger head, ``model_sha256`` the digest of θ_{window+1} and
    ``validation_loss`` the loss of θ_window (the contribution ledger, SPEC section 8.7)."""
    parts = shares if shares is not None else [None] * len(used)
    return AggregationRecord(
        netuid=netuid,
        window=window,
        hotkey=hotkey,
        peer_set_window=peer_set_window,  # 0: no peer set was in force, every miner counted
        contributions=[
            AggregatedContribution(uid=u, hotkey=h, sha256=s, share=part)
            for (u, h, s), part in zip(used, parts, strict=True)
        ],
        fingerprint=fingerprint,
        previous=previous,
        model_sha256=model_sha256,
        validation_loss=validation_loss,
    )


async def publish_lead_artifacts(
    rt: Runtime,
    window: int,
    peers: Mapping[int, PeerState],
    passed: Collection[int],
) -> None:
    """Lead only, after the outer step of ``window``: the peer set for a later window from
    ``peers``' scores (among ``passed``, the uids that passed every check in ``window``),
    and a checkpoint of θ_{window+1} every ``checkpoint_interval`` windows. Transient
    store faults are retried (:data:`PUBLISH_POLICY`); the record is published earlier
    (:func:`gauntlet.node.records.publish_record`)."""
    cfg = rt.config
    await with_retries(lambda: publish_peer_set(rt, window, peers, passed), PUBLISH_POLICY)
    interval = cfg.validator.checkpoint_interval
    if interval and (window + 1) % interval == 0:
        await with_retries(
            lambda: save_checkpoint(
                rt.store,
                rt.keypair,
                rt.model,
                netuid=cfg.chain.netuid,
                window=window + 1,
                model_name=cfg.model.name,
                dataset_id=rt.dataset.dataset_id,
                ledger_head=rt.ledger_head,
            ),
            PUBLISH_POLICY,
        )
        log.info("published the checkpoint of window %d", window + 1)
