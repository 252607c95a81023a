"""Who the peers are this window, and how to read their buckets.

Built from the chain's metagraph and commitments. Commitments are untrusted:
a malformed one marks that peer as unreadable, it never stops the node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gauntlet.chain.base import Chain, Metagraph
from gauntlet.config.schema import GauntletConfig
from gauntlet.storage.base import ObjectStore
from gauntlet.storage.factory import store_from_commitment
from protocol.commitment import UNRESTRICTED, CommitmentPolicy, parse_commitment
from protocol.errors import BadCommitment

log = logging.getLogger(__name__)


def reader_policy(config: GauntletConfig) -> CommitmentPolicy:
    """Which commitments a node of ``config``'s network opens: its own store root is the
    only place filesystem commitments may point (and only on development networks). Also
    what a node checks its own commitment against at start
    (:func:`~gauntlet.node.store_check.check_reachable`), so the two never disagree."""
    root = str(Path(config.storage.root).expanduser().resolve())
    return CommitmentPolicy.for_network(
        config.chain.network,
        filesystem_root=root,
        private_endpoints=config.storage.peer_private_endpoints,
    )


@dataclass(frozen=True)
class Peer:
    uid: int
    hotkey: str
    store: ObjectStore | None  # None: no readable commitment


class PeerDirectory:
    """Caches one read-only store per distinct commitment string.

    ``policy`` says which commitments may be opened at all (SPEC "Commitment rules
    per network"); the default opens any that parses, for callers with no network.
    """

    def __init__(self, policy: CommitmentPolicy = UNRESTRICTED) -> None:
        self.policy = policy
        self._stores: dict[str, ObjectStore] = {}
        self._warned: set[tuple[str, str]] = set()

    @classmethod
    def for_config(cls, config: GauntletConfig) -> PeerDirectory:
        """The directory a node of ``config``'s network uses (:func:`reader_policy`)."""
        return cls(reader_policy(config))

    def store_for(self, hotkey: str, raw: str | None) -> ObjectStore | None:
        """A read-only store for ``hotkey``'s committed bucket; None when it has no valid commitment."""
        return None if raw is None else self._store(hotkey, raw)

    def _store(self, hotkey: str, raw: str) -> ObjectStore | None:
        if raw in self._stores:
            return self._stores[raw]
        try:
            store = store_from_commitment(parse_commitment(raw), self.policy)
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
