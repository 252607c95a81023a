"""Start-up self-check of a node's own bucket, before anything is committed on chain.

A node publishes read credentials in its chain commitment and writes with its own write
key. Found out only at the first upload (a missing bucket) or never (a read key that
cannot read, so every validator scores the miner ``unreadable``), a wrong setting costs
an operator windows of work. So a node proves both paths at start, against the live
store: it writes a probe object with its write key, reads it back exactly as validators
will (through the commitment it is about to publish), and deletes it. Each failure is one
actionable :class:`~gauntlet.node.runtime.StartupError` line.

Before that, and before the chain is even contacted, :func:`check_reachable` applies to the
commitment the node is about to publish the very rule readers of its network apply to
peers' commitments (:func:`protocol.commitment.check_commitment` with
:func:`gauntlet.node.peers.reader_policy`): on a real network, an ``http`` endpoint or one
on a loopback, link-local or private address would leave the node ``unreadable`` to every
validator.

A read key that can also write is reported as a warning, not refused: the protocol never
relies on it being read-only (validators open peers' buckets read-only on their side), and
some local servers (``rclone serve s3``, the localnet's) cannot make a key read-only.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace

from gauntlet.storage.base import (
    AccessDenied,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoreUnavailable,
)
from gauntlet.storage.factory import store_from_commitment
from gauntlet.storage.s3 import S3Credentials, S3Store
from protocol.commitment import (
    DEVELOPMENT_NETWORKS,
    CommitmentPolicy,
    FilesystemCommitment,
    S3Commitment,
    check_commitment,
)
from protocol.errors import BadCommitment

log = logging.getLogger(__name__)

PROBE_PREFIX = "gauntlet-self-check/"


class StoreCheckError(Exception):
    """The node's own bucket cannot serve the protocol; the message says what to fix.
    ``transient``: the store did not answer (worth another try before giving up)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def check_reachable(
    commitment: FilesystemCommitment | S3Commitment, policy: CommitmentPolicy, network: str
) -> None:
    """Raise :class:`StoreCheckError` when readers on ``network`` applying ``policy`` (this
    node's own reader policy) would refuse ``commitment``; warn when only readers that
    allow private endpoints would accept it. Pure: host names are not resolved."""
    try:
        check_commitment(commitment, policy)
    except BadCommitment as exc:
        raise StoreCheckError(_unreachable(commitment, policy, network, exc)) from None
    if isinstance(commitment, S3Commitment) and network not in DEVELOPMENT_NETWORKS:
        try:
            check_commitment(commitment, replace(policy, private_endpoints=False))
        except BadCommitment as exc:
            log.warning(
                "own bucket: validators on %s read the endpoint %s this node publishes only if "
                "they set storage.peer_private_endpoints, as this node does (%s)",
                network, commitment.endpoint, exc,
            )  # fmt: skip


def _unreachable(
    commitment: FilesystemCommitment | S3Commitment,
    policy: CommitmentPolicy,
    network: str,
    exc: BadCommitment,
) -> str:
    if isinstance(commitment, FilesystemCommitment):
        if policy.filesystem_root is None:
            return (
                f"validators on {network} read no filesystem buckets ({exc}): use "
                "storage.backend s3 with a public https storage.endpoint"
            )
        return f"readers would refuse this node's {_where(commitment)}: {exc}"
    fix = (
        "set storage.endpoint to a public https URL of the bucket (the node writes through it too)"
    )
    try:  # is it only the address? Then a private network may opt in.
        check_commitment(commitment, replace(policy, private_endpoints=True))
    except BadCommitment:
        pass
    else:
        fix += (
            "; or, on a network whose validators all read private endpoints, set "
            "storage.peer_private_endpoints true"
        )
    return (
        f"validators on {network} would refuse the bucket endpoint {commitment.endpoint} "
        f"this node publishes ({exc}), and score it unreadable: {fix}"
    )


async def check_own_store(
    store: ObjectStore, commitment: FilesystemCommitment | S3Commitment, hotkey: str
) -> None:
    """Write, read back through ``commitment`` and delete a probe object; raise
    :class:`StoreCheckError` naming the first thing that does not work."""
    where = _where(commitment)
    key, body = f"{PROBE_PREFIX}{hotkey}-{secrets.token_hex(4)}", secrets.token_bytes(32)
    try:
        await store.put(key, body)
    except ObjectNotFound as exc:
        raise StoreCheckError(
            f"{where} does not exist: create it first (docker/store_init.py buckets, or the "
            f"provider's console) ({exc})"
        ) from exc
    except AccessDenied as exc:
        raise StoreCheckError(
            f"the write key cannot write to {where}: give it put, get, list and delete on "
            f"that bucket ({exc})"
        ) from exc
    except StoreUnavailable as exc:
        raise StoreCheckError(
            f"{where} is unreachable: check the endpoint ({exc})", transient=True
        ) from exc
    except StorageError as exc:
        raise StoreCheckError(f"cannot write to {where}: {exc}") from exc
    try:
        await _read_back(commitment, key, body, where)
        if isinstance(commitment, S3Commitment):
            await _warn_if_read_key_writes(commitment, key, where)
    finally:
        try:
            await store.delete(key)
        except StorageError as exc:
            log.warning("could not delete the self-check probe %s from %s: %s", key, where, exc)


async def _read_back(
    commitment: FilesystemCommitment | S3Commitment, key: str, body: bytes, where: str
) -> None:
    reader = store_from_commitment(commitment)  # what validators will open
    try:
        got = await reader.get(key, max_bytes=len(body))
    except AccessDenied as exc:
        raise StoreCheckError(
            f"the read key published on chain cannot read {where}: every validator would "
            f"score this node unreadable; give it get and list on that bucket ({exc})"
        ) from exc
    except StorageError as exc:
        raise StoreCheckError(
            f"the read key published on chain cannot read back {key} from {where}: "
            f"validators would score this node unreadable ({exc})"
        ) from exc
    finally:
        await reader.close()
    if got != body:
        raise StoreCheckError(f"the read key reads different bytes from {where} than were written")


async def _warn_if_read_key_writes(commitment: S3Commitment, key: str, where: str) -> None:
    writer = S3Store(
        commitment.bucket,
        endpoint_url=commitment.endpoint,
        region=commitment.region,
        credentials=S3Credentials(commitment.access_key, commitment.secret_key),
        path_style=True,
    )
    probe = key + "-read-key"
    try:
        await writer.put(probe, b"x")
    except StorageError:
        return  # refused, as it should be
    else:
        log.warning(
            "the read key published on chain can also write to %s: anyone can; give it get "
            "and list only (the protocol does not rely on it, but your bucket does)",
            where,
        )
        try:
            await writer.delete(probe)
        except StorageError as exc:
            log.warning("could not delete the self-check probe %s: %s", probe, exc)
    finally:
        await writer.close()


def _where(commitment: FilesystemCommitment | S3Commitment) -> str:
    if isinstance(commitment, S3Commitment):
        return f"bucket {commitment.bucket} at {commitment.endpoint or 'AWS S3'}"
    return f"bucket {commitment.bucket} under {commitment.root}"
