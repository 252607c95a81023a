"""Peer sets: the lead's choice, and which published set is in force for a window.

Sets are sealed with real keys and stored in a real FilesystemStore; the only stand-in is
the chain's block clock, so a test can place a set's upload before or after its cut-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gauntlet.config.schema import GauntletConfig
from gauntlet.node.peer_sets import choose_peers, peer_set_for
from gauntlet.score.config import ScoringConfig
from gauntlet.score.ratings import Rating
from gauntlet.score.state import PeerState
from gauntlet.storage.filesystem import FilesystemStore
from protocol.envelope import seal
from protocol.keys import peer_set_key
from protocol.schemas import PeerEntry, PeerSet
from protocol.signing import keypair_from_uri

LEAD = keypair_from_uri("//lead")
OTHER = keypair_from_uri("//other")


def _peer(hotkey: str, score: float) -> PeerState:
    return PeerState(hotkey, Rating(25.0, 8.0), score=score)


def test_choose_peers_takes_the_best_positive_scores_of_passing_peers_in_uid_order() -> None:
    peers = {
        5: _peer("e", 3.0),
        1: _peer("a", 9.0),
        2: _peer("b", 0.0),  # never earned anything: not a peer
        3: _peer("c", 3.0),  # ties go to the lower uid
        4: _peer("d", 7.0),
        6: _peer("f", 8.0),  # did not pass this window's checks (missing, late, desynced...)
    }
    passed = [1, 2, 3, 4, 5]
    assert [p.uid for p in choose_peers(peers, 3, passed)] == [1, 3, 4]
    assert [p.uid for p in choose_peers(peers, 10, passed)] == [1, 3, 4, 5]
    assert [p.uid for p in choose_peers(peers, 10, [*passed, 6])] == [1, 3, 4, 5, 6]
    assert choose_peers({2: _peer("b", 0.0)}, 4, [2]) == []
    assert choose_peers(peers, 1, passed) == [PeerEntry(uid=1, hotkey="a")]
    assert choose_peers(peers, 4, [7, 8]) == []  # uids the scores never saw


def test_a_residual_score_from_earlier_windows_does_not_buy_a_place() -> None:
    """A miner that scored well, then fell out of sync, keeps a decaying score; it must not
    be aggregated while it fails the checks."""
    peers = {1: _peer("a", 9.0), 2: _peer("b", 8.5)}
    assert [p.uid for p in choose_peers(peers, 16, [1])] == [1]


def test_a_sliver_of_the_best_score_stays_out_of_the_set() -> None:
    peers = {1: _peer("a", 20.0), 2: _peer("b", 13.0), 3: _peer("c", 1.5), 4: _peer("d", 4.0)}
    assert [p.uid for p in choose_peers(peers, 16, peers, 0.2)] == [1, 2, 4]  # 4.0 = 0.2 x best
    assert [p.uid for p in choose_peers(peers, 16, peers, 0.5)] == [1, 2]
    assert [p.uid for p in choose_peers(peers, 16, peers, 0.0)] == [1, 2, 3, 4]
    assert [p.uid for p in choose_peers(peers, 16, [3], 0.5)] == [3]  # the best among passing


def test_a_miner_joins_a_peer_set_only_after_its_warm_up_evaluations() -> None:
    """A network's first sets must not go to whoever uploads (and scores once) first."""
    warm_up = ScoringConfig().peer_set_min_evaluations
    assert warm_up == 3
    peers = {
        1: replace(_peer("a", 9.0), evaluations=1),  # one lucky evaluation, the best score
        2: replace(_peer("b", 4.0), evaluations=warm_up),
        3: replace(_peer("c", 5.0), evaluations=warm_up - 1),
    }
    chosen = choose_peers(peers, 16, peers, 0.0, min_evaluations=warm_up)
    assert [p.uid for p in chosen] == [2]
    assert choose_peers({1: peers[1]}, 16, [1], min_evaluations=warm_up) == []  # none yet


@dataclass
class _Clock:
    """Block timestamps: every block's time is ``at`` (placing all cut-offs there)."""

    at: float

    async def block_timestamp(self, block: int) -> float:
        return self.at


@dataclass
class _Node:
    config: GauntletConfig
    chain: _Clock


def _publish(store: FilesystemStore, window: int, uids: list[int], signer=LEAD) -> None:
    peer_set = PeerSet(
        netuid=1,
        window=window,
        hotkey=signer.ss58_address,
        peers=[PeerEntry(uid=u, hotkey=f"hk{u}") for u in uids],
    )
    key = peer_set_key(window, LEAD.ss58_address)  # where the lead's set would be
    asyncio.run(store.put(key, seal(peer_set, signer)))


def _in_force(store: FilesystemStore, window: int, cutoff: float) -> PeerSet | None:
    node = _Node(GauntletConfig(), _Clock(cutoff))
    return asyncio.run(peer_set_for(node, LEAD.ss58_address, store, window))  # type: ignore[arg-type]


def test_the_latest_set_at_or_before_the_window_is_in_force(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    later = time.time() + 3600  # every cut-off after the uploads: all on time
    assert _in_force(store, 6, later) is None  # nothing published: aggregate everyone
    _publish(store, 5, [1, 2])
    _publish(store, 7, [2, 3])
    assert _in_force(store, 4, later) is None  # a set never applies early
    assert [p.uid for p in _in_force(store, 5, later).peers] == [1, 2]  # type: ignore[union-attr]
    assert [p.uid for p in _in_force(store, 6, later).peers] == [1, 2]  # type: ignore[union-attr]
    assert [p.uid for p in _in_force(store, 9, later).peers] == [2, 3]  # type: ignore[union-attr]


def test_a_set_stored_after_its_cutoff_does_not_count(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _publish(store, 5, [1, 2])
    earlier = time.time() - 3600  # every cut-off an hour before the uploads
    assert _in_force(store, 6, earlier) is None


def test_a_late_set_is_reported_once_however_many_windows_check_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FilesystemStore(tmp_path, "lead")
    _publish(store, 21, [1, 2])
    earlier = time.time() - 3600
    with caplog.at_level(logging.INFO, logger="gauntlet.node.peer_sets"):
        for window in range(21, 26):  # the newest set is checked again every window
            assert _in_force(store, window, earlier) is None
    assert caplog.text.count("peer set for window 21 arrived too late") == 1


def test_a_set_signed_by_someone_else_is_ignored_for_the_previous_one(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path, "lead")
    later = time.time() + 3600
    _publish(store, 5, [1, 2])
    _publish(store, 7, [9], signer=OTHER)  # planted under the lead's key
    assert [p.uid for p in _in_force(store, 8, later).peers] == [1, 2]  # type: ignore[union-attr]
    (store.base / peer_set_key(5, LEAD.ss58_address)).write_bytes(b"{not json")
    assert _in_force(store, 8, later) is None
