"""One uploader per hotkey across machines: a lease object in the node's own bucket.

The file lock (:mod:`.node_lock`) refuses a second node on one hotkey and one state
directory. Two nodes on one hotkey on different machines (or state directories) would
still overwrite each other's uploads, reports and records, in one bucket or, each
committing its own, on chain. So a node keeps a small JSON lease at
``gauntlet-node/lease-<hotkey>.json`` in its own bucket: the instance that holds the
hotkey (a random id kept in the state directory, so the same node restarting after a
crash is recognised as itself), its role, host and pid, and the chain block (and wall
time) of its last renewal.

- At start, before anything is committed on chain, a node reads the lease in its own
  bucket and, when the chain commitment names another bucket, in that one too (read
  through the commitment, as any reader would). A lease of another instance renewed
  less than ``node.lease_windows`` windows ago refuses the start, unless
  ``node.take_over_lease`` is set; a stale one is taken over.
- Once per window (:meth:`~gauntlet.node.runtime.Runtime.prune`: after the miner's upload,
  after the validator's report) the node renews it. A lease that now names another
  instance, or a chain commitment that now names another node's bucket, stops the node.
- A clean stop deletes the node's own lease, so a replacement starts at once.

Age is counted in chain blocks, which every node reads from the same chain, so clocks
need not agree; wall time only dates a lease whose block is ahead of this node's chain
head (a development chain that was reset). Two nodes starting at the same moment may both
find no lease: the later write wins, and the other node stops at its next renewal.

Storage and chain faults while reading or writing a lease are logged, never fatal by
themselves: the next renewal tries again. The key lies outside ``gauntlet/v{N}/``, so
retention never deletes it, readers never read it and a bucket move does not carry it.

The decisions (:func:`decide_start`, :func:`holds`, :func:`commitment_taken`) are pure;
:class:`UploaderLease` does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gauntlet.chain.base import Chain, ChainError
from gauntlet.storage.atomic_file import write_atomically
from gauntlet.storage.base import (
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoreUnavailable,
    Throttled,
)
from protocol.commitment import S3Commitment, parse_commitment
from protocol.errors import BadCommitment

log = logging.getLogger(__name__)

LEASE_PREFIX = "gauntlet-node/"
MAX_LEASE_BYTES = 4096
# Tries of a start-up lease read when the store does not answer, with these pauses between
# them (seconds), before the node starts without the check.
READ_PAUSES = (0.5, 1.0, 2.0)
_SAFE = re.compile(r"[A-Za-z0-9]{1,64}")
_INSTANCE = re.compile(r"[0-9a-f]{32}")


def lease_key(hotkey: str) -> str:
    """The lease object of ``hotkey`` in its own bucket (outside the protocol's keys)."""
    if not _SAFE.fullmatch(hotkey):
        raise ValueError(f"hotkey not usable in a key: {hotkey!r}")
    return f"{LEASE_PREFIX}lease-{hotkey}.json"


class Lease(BaseModel):
    """Who holds a hotkey's uploads, and when it last said so."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    instance: str = Field(min_length=1, max_length=64)
    role: str = Field(max_length=32)
    host: str = Field(max_length=255)
    pid: int
    block: int = Field(ge=0)  # chain head at the last renewal
    time: float  # wall clock at the last renewal (unix seconds)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    def holder(self) -> str:
        return f"{self.role} on host {self.host} (pid {self.pid})"


def parse_lease(data: bytes) -> Lease | None:
    """The lease in ``data``; None for anything else (it is overwritten)."""
    try:
        return Lease.model_validate_json(data)
    except ValidationError:
        return None


# --- pure decisions ---------------------------------------------------------------------


def age_in_blocks(lease: Lease, *, head: int, now: float, block_time: float) -> float:
    """Blocks since ``lease`` was renewed: by the chain when its block is not ahead of
    ``head``; else (a reset development chain) by wall time, in blocks."""
    if lease.block <= head:
        return float(head - lease.block)
    return max(0.0, now - lease.time) / block_time


@dataclass(frozen=True)
class StartDecision:
    action: Literal["acquire", "take_over", "refuse"]
    other: Lease | None = None  # another instance's lease that was still fresh
    age_blocks: float = 0.0


def decide_start(
    found: Lease | None,
    *,
    instance: str,
    head: int,
    now: float,
    block_time: float,
    stale_blocks: int,
    take_over: bool,
) -> StartDecision:
    """Whether a node of ``instance`` may start given the lease ``found``: none, its own
    (a restart) or a stale one: acquire; another instance's fresh one: refuse, or take it
    over when the operator says so."""
    if found is None or found.instance == instance:
        return StartDecision("acquire")
    age = age_in_blocks(found, head=head, now=now, block_time=block_time)
    if age >= stale_blocks:
        return StartDecision("acquire", found, age)
    return StartDecision("take_over" if take_over else "refuse", found, age)


def holds(found: Lease | None, instance: str) -> bool:
    """At a renewal: ``instance`` still holds the hotkey unless the lease names another one
    (a missing lease, deleted by hand, is written again)."""
    return found is None or found.instance == instance


def commitment_taken(
    current: str | None, *, ours: str, replaced: str | None, seen_own: bool
) -> bool:
    """Whether the chain's commitment ``current`` means another node took the hotkey over
    with a bucket of its own. ``replaced``: the commitment this node replaced at start,
    which the chain may still show for a while (until ``seen_own``: ours was seen there)."""
    if current is None or current == ours:
        return False
    return seen_own or current != replaced


def describe_commitment(raw: str | None) -> str:
    """A commitment as "bucket B at E" (never its keys), for a log line."""
    if raw is None:
        return "no bucket"
    try:
        commitment = parse_commitment(raw)
    except (BadCommitment, ValueError):
        return "an unreadable commitment"
    if isinstance(commitment, S3Commitment):
        return f"bucket {commitment.bucket} at {commitment.endpoint}"
    return f"bucket {commitment.bucket} under {commitment.root}"


def refusal(
    hotkey: str, where: str, decision: StartDecision, *, stale_blocks: int, block_time: float
) -> str:
    """The one line that refuses a start: who holds the hotkey, since when, what to do."""
    other = decision.other
    assert other is not None
    left = max(0.0, stale_blocks - decision.age_blocks) * block_time
    return (
        f"hotkey {hotkey} is in use by another node: {other.holder()} renewed its uploader "
        f"lease in {where} at block {other.block}, {decision.age_blocks:.0f} blocks (about "
        f"{decision.age_blocks * block_time:.0f} s) ago; two nodes on one hotkey overwrite "
        f"each other's uploads. Stop that node (its lease lapses in about {left:.0f} s), or "
        "replace it on purpose: start this one with --node.take_over_lease true (that node "
        "stops at its next renewal)"
    )


# --- I/O --------------------------------------------------------------------------------


def instance_path(state_dir: Path | str, hotkey: str) -> Path:
    return Path(state_dir).expanduser() / f"node-{hotkey}.instance"


def instance_id(state_dir: Path | str, hotkey: str) -> str:
    """This node's instance id, kept in its state directory (created on first use): a
    restart with the same state directory is the same node."""
    path = instance_path(state_dir, hotkey)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if _INSTANCE.fullmatch(text):
        return text
    if text:
        log.warning("%s does not hold an instance id; writing a new one", path)
    new = secrets.token_hex(16)
    write_atomically(path, lambda fh: fh.write(f"{new}\n".encode()))
    return new


async def read_lease(store: ObjectStore, hotkey: str) -> Lease | None:
    """The lease in ``store``; None when there is none (or it is garbage). Other storage
    errors propagate."""
    try:
        data = await store.get(lease_key(hotkey), max_bytes=MAX_LEASE_BYTES)
    except ObjectNotFound:
        return None
    lease = parse_lease(data)
    if lease is None:
        log.warning(
            "the uploader lease %s is not a lease; it will be overwritten", lease_key(hotkey)
        )
    return lease


@dataclass
class UploaderLease:
    """This node's hold on its hotkey: taken at start, renewed once per window."""

    hotkey: str
    instance: str
    role: str
    commitment: str  # what this node commits on chain
    replaced: str | None = None  # the chain's commitment before this node committed
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    clock: Callable[[], float] = time.time
    seen_own: bool = False  # the chain has shown this node's commitment

    def lease(self, block: int) -> Lease:
        return Lease(
            instance=self.instance,
            role=self.role,
            host=self.host[:255],
            pid=self.pid,
            block=block,
            time=self.clock(),
        )

    async def acquire(
        self,
        store: ObjectStore,
        chain: Chain,
        *,
        where: str,
        stale_blocks: int,
        take_over: bool,
        elsewhere: Sequence[tuple[ObjectStore, str]] = (),
    ) -> str | None:
        """Take the hotkey: read the lease in ``store`` (this node's bucket, ``where``) and
        in each ``(store, where)`` of ``elsewhere`` (the bucket committed before, read
        only), then write this node's. Returns the line refusing the start when another
        instance holds a fresh lease (and ``take_over`` is off), else None."""
        head, block_time = await chain.current_block(), await chain.block_time()
        for bucket, place in [(store, where), *elsewhere]:
            found = await _read_patiently(bucket, self.hotkey, place)
            decision = decide_start(
                found,
                instance=self.instance,
                head=head,
                now=self.clock(),
                block_time=block_time,
                stale_blocks=stale_blocks,
                take_over=take_over,
            )
            other = decision.other
            if decision.action == "refuse":
                return refusal(
                    self.hotkey, place, decision, stale_blocks=stale_blocks, block_time=block_time
                )
            if decision.action == "take_over" and other is not None:
                log.warning(
                    "taking hotkey %s over from %s (lease in %s renewed %.0f blocks ago), as "
                    "node.take_over_lease says; that node stops at its next renewal",
                    self.hotkey,
                    other.holder(),
                    place,
                    decision.age_blocks,
                )
            elif other is not None:
                log.info(
                    "the uploader lease of %s in %s is stale (%.0f blocks): taking it",
                    other.holder(),
                    place,
                    decision.age_blocks,
                )
        try:
            await store.put(lease_key(self.hotkey), self.lease(head).encode())
        except StorageError as exc:
            log.warning(
                "could not write the uploader lease to %s (%s); the next renewal tries again",
                where,
                exc,
            )
        return None

    async def renew(self, store: ObjectStore, chain: Chain) -> str | None:
        """Once per window: check that this node still holds the hotkey, and write the lease
        with the chain's head. Returns the line that stops the node when another one took
        the hotkey over; a store or chain that does not answer is logged and skipped."""
        try:
            head = await chain.current_block()
            found = await read_lease(store, self.hotkey)
        except (StorageError, ChainError) as exc:
            log.warning("could not renew the uploader lease (%s); trying again next window", exc)
            return None
        if found is not None and not holds(found, self.instance):
            return (
                f"another node took hotkey {self.hotkey} over: {found.holder()} renewed its "
                f"uploader lease at block {found.block}; stopping this node so the two do "
                "not overwrite each other's uploads (to take the hotkey back, stop that node "
                "and start this one again, with --node.take_over_lease true if its lease is "
                "still fresh)"
            )
        try:
            current = (await chain.commitments()).get(self.hotkey)
        except ChainError as exc:
            log.warning("could not read the chain commitments to check the hotkey (%s)", exc)
        else:
            if commitment_taken(
                current, ours=self.commitment, replaced=self.replaced, seen_own=self.seen_own
            ):
                return (
                    f"another node took hotkey {self.hotkey} over: the chain commitment now "
                    f"names {describe_commitment(current)}, not this node's "
                    f"{describe_commitment(self.commitment)}; stopping this node so the two do "
                    "not overwrite each other (to take the hotkey back, stop that node and "
                    "start this one again, with --node.take_over_lease true if its lease is "
                    "still fresh)"
                )
            self.seen_own = self.seen_own or current == self.commitment
        try:
            await store.put(lease_key(self.hotkey), self.lease(head).encode())
        except StorageError as exc:
            log.warning("could not renew the uploader lease (%s); trying again next window", exc)
        return None

    async def release(self, store: ObjectStore) -> None:
        """On a clean stop: delete the lease if it is still this node's, so a replacement
        need not wait for it to lapse."""
        try:
            found = await read_lease(store, self.hotkey)
            if found is not None and found.instance == self.instance:
                await store.delete(lease_key(self.hotkey))
        except StorageError as exc:
            log.warning("could not release the uploader lease (%s); it lapses by itself", exc)


async def _read_patiently(store: ObjectStore, hotkey: str, where: str) -> Lease | None:
    """The lease in ``store``, a few tries when the store does not answer; None (and a
    warning) when it never does: a start is not refused for a store fault."""
    for attempt, pause in enumerate((*READ_PAUSES, None)):
        try:
            return await read_lease(store, hotkey)
        except StorageError as exc:
            if pause is None or not isinstance(exc, StoreUnavailable | Throttled):
                log.warning(
                    "could not read the uploader lease in %s (%s); starting without that check",
                    where,
                    exc,
                )
                return None
            log.warning(
                "could not read the uploader lease in %s (%s); try %d", where, exc, attempt + 1
            )
            await asyncio.sleep(pause)
    return None
