"""Who the peers are this window, and how to read their buckets.

Built from the chain's metagraph and commitments. Commitments are untrusted:
a malformed one marks that peer as unreadable, it never stops the node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gauntlet.chain.base import Chain, Metagraph
from gauntlet.storage.base import ObjectStore
from gauntlet.storage.factory import store_from_commitment
from protocol.commitment import parse_commitment
from protocol.errors import BadCommitment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    uid: int
    hotkey: str
    store: ObjectStore | None  # None: no readable commitment


class PeerDirectory:
    """Caches one read-only store per distinct commitment string."""

    def __init__(self) -> None:
        self._stores: dict[str, ObjectStore] = {}
        self._warned: set[tuple[str, str]] = set()

    def store_for(self, hotkey: str, raw: str | None) -> ObjectStore | None:
        """A read-only store for ``hotkey``'s committed bucket; None when it has no valid commitment."""
        return None if raw is None else self._store(hotkey, raw)

    def _store(self, hotkey: str, raw: str) -> ObjectStore | None:
        if raw in self._stores:
            return self._stores[raw]
        try:
            store = store_from_commitment(parse_commitment(raw))
        except (BadCommitment, ValueError) as exc:
            if (hotkey, raw) not in self._warned:  # log each bad commitment once
                self._warned.add((hotkey, raw))
                log.warning("unreadable commitment from %s: %s", hotkey, exc)
            return None
        self._stores[raw] = store
        return store

    async def miners(self, chain: Chain) -> tuple[Metagraph, list[Peer]]:
        """Registered neurons without a validator permit, by uid."""
        metagraph = await chain.metagraph()
        commitments = await chain.commitments()
        peers = []
        for neuron in sorted(metagraph.neurons, key=lambda n: n.uid):
            if neuron.validator_permit:
                continue
            store = self.store_for(neuron.hotkey, commitments.get(neuron.hotkey))
            peers.append(Peer(neuron.uid, neuron.hotkey, store))
        return metagraph, peers

    async def close(self) -> None:
        for store in self._stores.values():
            await store.close()
        self._stores.clear()
