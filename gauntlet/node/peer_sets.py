"""Peer sets: which miners' contributions every node aggregates.

After scoring window ``w`` the lead validator publishes, signed, the set for window
``w + validator.peer_set_lag``: up to ``validator.peer_set_size`` miners with the highest
final scores among those whose contribution passed every check in ``w`` and whose score is
at least ``validator.peer_set_min_score_ratio`` of the best. Aggregation normalises each
contribution, so every member moves the model as much as the best one: a miner that failed
this window's checks (out of sync, late, a copy) or that scores a sliver of the best (trained
on the wrong pages, caught only statistically) must not get that say. A set counts only if
the lead's store received it (server time) before window ``set.window - 1`` ended, so every
node that looks it up when it aggregates ``set.window`` or later reaches the same verdict,
however late it looks.

The set in force for a window is the latest valid one at or before it
(:func:`protocol.peers.peer_set_in_force`). With none (no lead, nothing published in
time, a bad signature) a node aggregates every valid contribution, as every node would.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from gauntlet.node.gather import Contribution
from gauntlet.score.state import PeerState
from gauntlet.storage.base import ObjectStore, StorageError
from protocol.envelope import open_envelope, seal
from protocol.errors import ProtocolError
from protocol.keys import peer_set_key, peer_sets_prefix, window_of_key
from protocol.schemas import PeerEntry, PeerSet
from protocol.windows import window_end

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime

log = logging.getLogger(__name__)

MAX_PEER_SET_BYTES = 1 << 20
MAX_CANDIDATES = 4  # published sets tried, newest first, before falling back to none


def choose_peers(
    peers: Mapping[int, PeerState],
    size: int,
    passed: Collection[int],
    min_score_ratio: float = 0.0,
    *,
    min_evaluations: int = 0,
) -> list[PeerEntry]:
    """The ``size`` highest-scoring peers among ``passed`` (the uids whose contribution passed
    every check in the window just scored) with a score > 0, at least ``min_evaluations``
    evaluated windows (``scoring.peer_set_min_evaluations``: a warm-up, so the first sets do
    not go to whoever uploads first) and at least ``min_score_ratio`` times the best such
    score, in uid order; ties go to the lower uid."""
    eligible = [
        uid
        for uid in passed
        if uid in peers and peers[uid].score > 0 and peers[uid].evaluations >= min_evaluations
    ]
    best = max((peers[uid].score for uid in eligible), default=0.0)
    kept = [uid for uid in eligible if peers[uid].score >= min_score_ratio * best]
    ranked = sorted(kept, key=lambda u: (-peers[u].score, u))
    return [PeerEntry(uid=uid, hotkey=peers[uid].hotkey) for uid in sorted(ranked[:size])]


def members_to_aggregate(
    contributions: Sequence[Contribution], passed: Collection[int], peer_set: PeerSet | None
) -> list[Contribution]:
    """Lead: the contributions its record names for a window: those that passed every check
    in it (``passed``), restricted to the members of ``peer_set`` when one is in force."""
    members = None if peer_set is None else {(p.uid, p.hotkey) for p in peer_set.peers}
    return [
        c
        for c in contributions
        if c.ok
        and c.tensors is not None
        and c.uid in passed
        and (members is None or (c.uid, c.hotkey) in members)
    ]


async def publish_peer_set(
    rt: Runtime, window: int, peers: Mapping[int, PeerState], passed: Collection[int]
) -> None:
    """Lead only: publish the set taking effect ``peer_set_lag`` windows after ``window``;
    ``passed`` holds the uids whose contribution passed every check in ``window``."""
    cfg = rt.config.validator
    chosen = choose_peers(
        peers,
        cfg.peer_set_size,
        passed,
        cfg.peer_set_min_score_ratio,
        min_evaluations=rt.config.scoring.peer_set_min_evaluations,
    )
    if not chosen:
        return  # nobody has earned a place yet: nodes keep aggregating everyone
    peer_set = PeerSet(
        netuid=rt.config.chain.netuid,
        window=window + cfg.peer_set_lag,
        hotkey=rt.hotkey,
        peers=chosen,
    )
    await rt.store.put(peer_set_key(peer_set.window, rt.hotkey), seal(peer_set, rt.keypair))
    log.info(
        "published the peer set for window %d: uids %s", peer_set.window, [p.uid for p in chosen]
    )


async def peer_set_for(
    rt: Runtime, lead_hotkey: str, store: ObjectStore, window: int
) -> PeerSet | None:
    """The lead's valid peer set in force at ``window``, or None."""
    try:
        windows = sorted(
            {
                w
                async for info in store.list(peer_sets_prefix())
                if (w := window_of_key(info.key)) is not None and w <= window
            },
            reverse=True,
        )
    except StorageError as exc:
        log.warning("cannot list the lead's peer sets: %s", exc)
        return None
    for candidate in windows[:MAX_CANDIDATES]:
        peer_set = await _valid_set(rt, lead_hotkey, store, candidate)
        if peer_set is not None:
            return peer_set
    return None


# (lead, window) of late peer sets already logged: the newest set is checked every window
# until the lead publishes another, and the same line 30 windows in a row says nothing new.
_REPORTED_LATE: set[tuple[str, int]] = set()


async def _valid_set(
    rt: Runtime, lead_hotkey: str, store: ObjectStore, window: int
) -> PeerSet | None:
    key = peer_set_key(window, lead_hotkey)
    try:
        info = await store.head(key)
        cutoff = await rt.chain.block_timestamp(
            window_end(window - 1, rt.config.chain.blocks_per_window)
        )
        if info.last_modified > cutoff + rt.config.chain.upload_grace_seconds:
            if (lead_hotkey, window) not in _REPORTED_LATE:  # it stays the newest for windows
                _REPORTED_LATE.add((lead_hotkey, window))
                log.info("peer set for window %d arrived too late to count", window)
            return None
        raw = await store.get(key, max_bytes=MAX_PEER_SET_BYTES)
        peer_set = open_envelope(raw, PeerSet, expected_signer=lead_hotkey, expected_window=window)
    except (StorageError, ProtocolError) as exc:
        log.warning("ignoring the peer set for window %d: %s", window, exc)
        return None
    return peer_set if peer_set.netuid == rt.config.chain.netuid else None
