"""Build stores: read-only ones from a peer's on-chain commitment, and the node's own.

Peers' buckets are always opened read-only (with the read key pair they
committed), so a bug in our code cannot write into someone else's bucket even
if their "read" key happens to allow it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gauntlet.storage.base import ObjectStore
from gauntlet.storage.filesystem import FilesystemStore
from gauntlet.storage.s3 import S3Credentials, S3Store
from protocol.commitment import (
    UNRESTRICTED,
    CommitmentPolicy,
    FilesystemCommitment,
    S3Commitment,
    check_commitment,
)
from protocol.errors import BadCommitment

Backend = Literal["filesystem", "s3"]


def store_from_commitment(
    commitment: FilesystemCommitment | S3Commitment,
    policy: CommitmentPolicy = UNRESTRICTED,
    *,
    max_workers: int = 8,
) -> ObjectStore:
    """A store for reading a peer's bucket, if ``policy`` allows it; else :class:`BadCommitment`.

    S3 commitments carry no addressing style, so path-style is used: AWS S3, R2,
    MinIO and SeaweedFS all accept it, and bucket names need not be DNS labels.
    """
    check_commitment(commitment, policy)
    if isinstance(commitment, FilesystemCommitment):
        return _peer_filesystem_store(commitment, policy)
    try:
        return S3Store(
            commitment.bucket,
            endpoint_url=commitment.endpoint,
            region=commitment.region,
            credentials=S3Credentials(commitment.access_key, commitment.secret_key),
            path_style=True,
            read_only=True,
            max_workers=max_workers,
        )
    except ValueError as exc:  # botocore refuses some endpoints and regions with ValueError
        raise BadCommitment(f"S3 commitment refused by the client: {exc}") from None


def _peer_filesystem_store(
    commitment: FilesystemCommitment, policy: CommitmentPolicy
) -> FilesystemStore:
    if policy.filesystem_root is None:  # check_commitment refuses these already
        raise BadCommitment("filesystem commitments are not accepted here")
    try:
        # check_commitment compared the paths as written; a symlink under the
        # root could still lead out of it, so compare where they really lead.
        allowed = Path(policy.filesystem_root).resolve()
        store = FilesystemStore(commitment.root, commitment.bucket, create=False)
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, odd names
        raise BadCommitment(f"filesystem commitment cannot be opened: {exc}") from None
    if store.base != allowed and allowed not in store.base.parents:
        raise BadCommitment(f"bucket {store.base} is outside {allowed}")
    return store


def build_store(
    backend: Backend,
    *,
    bucket: str,
    root: str | Path | None = None,
    endpoint: str | None = None,
    region: str = "auto",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    path_style: bool = False,
) -> ObjectStore:
    """The node's own, writable bucket. ``filesystem`` needs ``root``; ``s3`` needs the write
    key pair (``endpoint`` None means AWS S3)."""
    if backend == "filesystem":
        if root is None:
            raise ValueError("backend 'filesystem' needs root")
        return FilesystemStore(root, bucket)
    if backend == "s3":
        if not access_key_id or not secret_access_key:
            raise ValueError("backend 's3' needs access_key_id and secret_access_key")
        return S3Store(
            bucket,
            endpoint_url=endpoint,
            region=region,
            credentials=S3Credentials(access_key_id, secret_access_key),
            path_style=path_style,
        )
    raise ValueError(f"unknown storage backend {backend!r}")
