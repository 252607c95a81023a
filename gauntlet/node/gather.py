"""Gather the peers' contributions for one window and verify each one.

Every node runs the same checks on the same objects, so every node keeps the
same set: present, on time by the store's server timestamp, and a valid payload
signed by the peer's hotkey for this netuid and window.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.codec import Codec
from gauntlet.node.peers import Peer
from gauntlet.storage.base import ObjectNotFound, StorageError
from gauntlet.telemetry import METRICS
from protocol.container import Limits, decode_payload
from protocol.errors import MalformedPayload, ProtocolError
from protocol.keys import contribution_key
from protocol.schemas import ContributionManifest
from protocol.windows import is_on_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contribution:
    uid: int
    hotkey: str
    status: str  # ok | missing | late | invalid | unreadable
    reason: str = ""
    manifest: ContributionManifest | None = None
    delta: Delta | None = None  # decoded update, float32, model parameter names
    sha256: str = ""
    size: int = 0
    uploaded_at: float = 0.0  # the store's timestamp (copy detection: the later uploader copied)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


async def fetch_one(
    peer: Peer,
    *,
    netuid: int,
    window: int,
    deadline_time: float,
    grace_seconds: float,
    limits: Limits,
    codec: Codec,
    shapes: Mapping[str, tuple[int, ...]],
    device: torch.device | str,
) -> Contribution:
    """One peer's contribution and its verdict. Peer faults become statuses, never exceptions."""
    if peer.store is None:
        return Contribution(peer.uid, peer.hotkey, "unreadable", "no valid bucket commitment")
    key = contribution_key(window, peer.hotkey)
    try:
        info = await peer.store.head(key)
        if not is_on_time(info.last_modified, deadline_time, grace_seconds):
            late = info.last_modified - deadline_time
            return Contribution(peer.uid, peer.hotkey, "late", f"{late:.1f}s after the deadline")
        with METRICS.download("contribution") as transfer:
            data = await peer.store.get(key, max_bytes=limits.max_bytes)
            transfer.nbytes = len(data)
    except ObjectNotFound:
        return Contribution(peer.uid, peer.hotkey, "missing")
    except StorageError as exc:
        return Contribution(peer.uid, peer.hotkey, "unreadable", f"{exc.reason}: {exc}")
    try:
        payload = decode_payload(
            data,
            limits=limits,
            expected_hotkey=peer.hotkey,
            expected_window=window,
            expected_netuid=netuid,
            specs=codec.specs(shapes),
        )
        if payload.manifest.codec.root != codec.params:
            raise MalformedPayload(f"codec {payload.manifest.codec.root} is not the network's")
        delta = codec.decode(payload.tensors, shapes, device)  # validates what the container can't
    except ProtocolError as exc:
        return Contribution(peer.uid, peer.hotkey, "invalid", str(exc), size=len(data))
    if payload.manifest.uid != peer.uid:
        return Contribution(peer.uid, peer.hotkey, "invalid", "manifest uid differs from chain uid")
    return Contribution(
        peer.uid,
        peer.hotkey,
        "ok",
        manifest=payload.manifest,
        delta=delta,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        uploaded_at=info.last_modified,
    )


async def gather(peers: Sequence[Peer], **kwargs) -> list[Contribution]:
    """Every peer's verdict for one window, ordered by uid (the aggregation order)."""
    results = await asyncio.gather(*(fetch_one(peer, **kwargs) for peer in peers))
    for result in results:
        METRICS.gathered.labels(result.status).inc()
        if result.status in {"invalid", "late", "unreadable"}:
            log.info("uid %d %s: %s", result.uid, result.status, result.reason)
    return sorted(results, key=lambda c: c.uid)
