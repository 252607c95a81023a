"""What adversarial localnet behaviours read of other miners: their uploads once readable.

Shared by :mod:`gauntlet.localnet.behaviours` and :mod:`gauntlet.localnet.adaptive`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.node.peers import Peer
from gauntlet.node.reveals import read_reveal
from gauntlet.storage.base import StorageError
from protocol.container import Limits, Payload, decode_payload
from protocol.errors import ProtocolError
from protocol.keys import contribution_key
from protocol.sealed import open_sealed, unseal

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime


async def read_current(rt: Runtime, peer: Peer, window: int) -> Payload | None:
    """``peer``'s payload for ``window`` if it can be read now: the sealed object and its
    reveal (which exists only after the window's observation closed), else None."""
    if peer.store is None:
        return None
    limits = Limits(max_bytes=rt.config.storage.max_payload_bytes)
    netuid = rt.config.chain.netuid
    try:
        raw = await peer.store.get(
            contribution_key(window, peer.hotkey), max_bytes=limits.max_bytes
        )
        sealed = open_sealed(
            raw,
            expected_hotkey=peer.hotkey,
            expected_window=window,
            expected_netuid=netuid,
            max_bytes=limits.max_bytes,
        )
        key = await read_reveal(peer.store, window, peer.hotkey, netuid)
        return decode_payload(
            unseal(sealed, key),
            limits=limits,
            expected_hotkey=peer.hotkey,
            expected_window=window,
            expected_netuid=netuid,
        )
    except (StorageError, ProtocolError):
        return None


async def read_update(rt: Runtime, peer: Peer, window: int) -> Delta | None:
    """``peer``'s decoded update for ``window`` if readable now and in the network's codec."""
    payload = await read_current(rt, peer, window)
    if payload is None or payload.manifest.codec.root != rt.codec.params:
        return None
    return rt.codec.decode(payload.tensors, rt.shapes, rt.device)


def like(delta: Delta, make: Callable[[torch.Tensor], torch.Tensor]) -> Delta:
    """``delta`` with ``make`` applied to every tensor."""
    return {name: make(t) for name, t in delta.items()}
