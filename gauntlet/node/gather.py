"""From observed sealed uploads and their reveals to verified contributions.

Validators judge a window from what they observed themselves (:mod:`.arrivals`,
:mod:`.observer`) and the keys revealed afterwards (:mod:`.reveals`): each miner gets
a fast-filter verdict (ok, missing, late, invalid, unreadable) and, when ok, its
validated payload arrays: an update is decoded densely only when it is needed
(:func:`decode_update`), one at a time, so a validator's memory does not grow with the
number of miners (a 1.2B model's update is 4.8 GB in float32, its payload about 30 MB).
Nodes that follow the lead's aggregation record fetch exactly the
payloads it names with :func:`fetch_recorded`. Peer faults become statuses, never
exceptions; a transient store fault is retried and never becomes a verdict.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.codec import Codec
from gauntlet.node import peer_reads
from gauntlet.node.arrivals import WindowArrivals
from gauntlet.node.peers import Peer
from gauntlet.node.reveals import RevealRound, read_reveal
from gauntlet.storage.base import StorageError
from gauntlet.storage.retry import RetryPolicy, with_retries
from gauntlet.telemetry import METRICS
from protocol.container import Limits, decode_payload
from protocol.errors import MalformedPayload, ProtocolError
from protocol.keys import contribution_key
from protocol.plan import PLAIN
from protocol.schemas import ContributionManifest
from protocol.sealed import open_sealed, unseal

log = logging.getLogger(__name__)

# Faults of a store that say nothing about its owner (the same penalty as missing, so a
# miner gains nothing by making its store fail on purpose).
TRANSIENT_FAULTS = frozenset({"unavailable", "throttled", "timeout"})
# Fetching a payload a record names: a few tries spread over about ten seconds.
RECORDED_FETCH_POLICY = RetryPolicy(attempts=6, base_delay=0.5, max_delay=4.0)


@dataclass(frozen=True)
class Contribution:
    uid: int
    hotkey: str
    status: str  # ok | missing | late | invalid | unreadable
    reason: str = ""
    manifest: ContributionManifest | None = None
    # the validated payload arrays: what the aggregate is formed from, in the codec's own
    # (sparse) domain, and what decode_update makes the dense update of; None when not ok
    tensors: Mapping[str, np.ndarray] | None = None
    sha256: str = ""  # of the (opened) payload: what aggregation records name
    size: int = 0
    observed_block: int = 0  # head when this validator first saw it (copy detection)
    # the opened payload's bytes, read again when asked (the lead mirrors what it records);
    # None where they are not at hand
    opened: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Decoder:
    """What opening a payload needs to know about the network and the model."""

    netuid: int
    limits: Limits
    codec: Codec
    shapes: Mapping[str, tuple[int, ...]]
    device: torch.device | str
    plan_sha256: str = PLAIN.sha256  # the network's training plan (protocol/plan.py)


def open_payload(
    uid: int,
    hotkey: str,
    window: int,
    data: bytes,
    decoder: Decoder,
    observed_block: int = 0,
) -> Contribution:
    """Verify one opened payload: ``ok`` with its validated arrays, or ``invalid``. Nothing
    is decoded densely here: aggregation works on the arrays (:meth:`Codec.decode_batch`)
    and a validator decodes the updates it measures with :func:`decode_update`."""
    try:
        payload = decode_payload(
            data,
            limits=decoder.limits,
            expected_hotkey=hotkey,
            expected_window=window,
            expected_netuid=decoder.netuid,
            specs=decoder.codec.specs(decoder.shapes),
        )
        if payload.manifest.codec.root != decoder.codec.params:
            raise MalformedPayload(f"codec {payload.manifest.codec.root} is not the network's")
        if payload.manifest.plan_sha256 != decoder.plan_sha256:
            raise MalformedPayload(
                f"trained under training plan {payload.manifest.plan_sha256[:12]}, the "
                f"network's is {decoder.plan_sha256[:12]} (train.superposition_*)"
            )
        decoder.codec.validate(payload.tensors, decoder.shapes)
    except ProtocolError as exc:
        return Contribution(uid, hotkey, "invalid", str(exc), size=len(data))
    if payload.manifest.uid != uid:
        return Contribution(uid, hotkey, "invalid", "manifest uid differs from chain uid")
    return Contribution(
        uid,
        hotkey,
        "ok",
        manifest=payload.manifest,
        tensors=payload.tensors,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        observed_block=observed_block,
    )


def judge_window(
    miners: Sequence[Peer],
    window: int,
    arrivals: WindowArrivals,
    reveals: RevealRound,
    decoder: Decoder,
) -> list[Contribution]:
    """Every miner's fast-filter verdict for ``window``, ordered by uid."""
    results = [_judge(peer, window, arrivals, reveals, decoder) for peer in miners]
    for result in results:
        METRICS.gathered.labels(result.status).inc()
        if result.status in {"invalid", "late", "unreadable"}:
            log.info("uid %d %s: %s", result.uid, result.status, result.reason)
    return sorted(results, key=lambda c: c.uid)


def _judge(
    peer: Peer,
    window: int,
    arrivals: WindowArrivals,
    reveals: RevealRound,
    decoder: Decoder,
) -> Contribution:
    uid, hotkey = peer.uid, peer.hotkey
    if peer.store is None:
        return Contribution(uid, hotkey, "unreadable", "no valid bucket commitment")
    seen = arrivals.accepted.get(uid)
    if seen is None:
        fault = arrivals.faults.get(uid)
        if fault in TRANSIENT_FAULTS:  # we could not reach its store: nobody can say it was late
            return Contribution(uid, hotkey, "missing", f"its store was {fault} when polled")
        if uid in arrivals.late:
            return Contribution(
                uid, hotkey, "late", f"not observed before block {arrivals.close_block}"
            )
        if fault:  # forbidden, too large, ...: the miner's bucket or read keys are wrong
            return Contribution(uid, hotkey, "unreadable", f"its store answers {fault}")
        return Contribution(uid, hotkey, "missing")
    if seen.sealed is None:
        return Contribution(uid, hotkey, "invalid", seen.error, observed_block=seen.block)
    if uid in reveals.bad:
        return Contribution(uid, hotkey, "invalid", reveals.bad[uid], observed_block=seen.block)
    key = reveals.keys.get(uid)
    if key is None:
        return Contribution(
            uid, hotkey, "late", "its key was not revealed in time", observed_block=seen.block
        )
    sealed = seen.sealed
    try:
        data = unseal(sealed.load(), key)
    except ProtocolError as exc:
        return Contribution(uid, hotkey, "invalid", str(exc), observed_block=seen.block)
    judged = open_payload(uid, hotkey, window, data, decoder, seen.block)
    if not judged.ok:
        return judged
    return replace(judged, opened=lambda: unseal(sealed.load(), key))  # read again from the spool


async def fetch_recorded(
    peer: Peer, window: int, payload_sha256: str, decoder: Decoder
) -> Contribution:
    """The payload ``peer`` sealed for ``window`` that a record names by ``payload_sha256``:
    fetched (transient faults retried), opened with the peer's reveal and checked. A fetch
    that still fails is ``unreadable`` (the caller must not apply a partial aggregate)."""
    uid, hotkey = peer.uid, peer.hotkey
    if peer.store is None:
        return Contribution(uid, hotkey, "unreadable", "no valid bucket commitment")
    store = peer.store
    try:
        max_bytes = decoder.limits.max_bytes
        raw = await with_retries(
            lambda: peer_reads.within(
                store.get(contribution_key(window, hotkey), max_bytes=max_bytes),
                peer_reads.download_seconds(max_bytes),
            ),
            RECORDED_FETCH_POLICY,
        )
        sealed = open_sealed(
            raw,
            expected_hotkey=hotkey,
            expected_window=window,
            expected_netuid=decoder.netuid,
            max_bytes=decoder.limits.max_bytes,
        )
        if sealed.header.payload_sha256 != payload_sha256:
            return Contribution(uid, hotkey, "invalid", "sealed payload differs from the record")
        key = await with_retries(
            lambda: peer_reads.within(
                read_reveal(store, window, hotkey, decoder.netuid), peer_reads.SMALL_READ_SECONDS
            ),
            RECORDED_FETCH_POLICY,
        )
        data = unseal(sealed, key)
    except StorageError as exc:
        return Contribution(uid, hotkey, "unreadable", f"{exc.reason}: {exc}")
    except ProtocolError as exc:
        return Contribution(uid, hotkey, "invalid", str(exc))
    return open_payload(uid, hotkey, window, data, decoder)


def decode_update(contribution: Contribution, decoder: Decoder) -> Delta:
    """The dense update (float32, parameter names, on ``decoder.device``) of an ``ok``
    contribution: a fresh model-sized set of tensors, so callers hold as few at once as
    they can (evaluation: one, while it is applied)."""
    if contribution.tensors is None:
        raise ValueError(
            f"uid {contribution.uid}'s contribution has no payload ({contribution.status})"
        )
    return decoder.codec.decode(contribution.tensors, decoder.shapes, decoder.device)
