"""Which peer set is in force: a pure choice among the published sets."""

from __future__ import annotations

from collections.abc import Iterable

from protocol.schemas import PeerSet


def peer_set_in_force(peer_sets: Iterable[PeerSet], window: int) -> PeerSet | None:
    """The set with the greatest ``window`` that is ``<= window``; None before the first.

    A set published for a future window never applies early, so a node that
    learns of it ahead of time cannot change what it gathers for the current one.
    """
    best: PeerSet | None = None
    for peer_set in peer_sets:
        if peer_set.window <= window and (best is None or peer_set.window > best.window):
            best = peer_set
    return best
