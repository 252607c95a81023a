"""Bucket commitments: what a node publishes on chain so others can read its bucket.

Encoded as compact JSON, at most :data:`MAX_COMMITMENT_BYTES` bytes. Anything a
hotkey commits may be garbage; :func:`parse_commitment` raises
:class:`BadCommitment` for it instead of crashing the reader.

A well-formed commitment can still point somewhere a reader must not go: a
filesystem path outside the shared store (``/etc``), or an S3 "endpoint" on
the reader's own loopback, link-local metadata service (169.254.169.254) or
private network. :func:`check_commitment` applies a :class:`CommitmentPolicy`,
chosen per network by :meth:`CommitmentPolicy.for_network` (SPEC "Commitment
rules per network").
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from protocol.errors import BadCommitment
from protocol.strict_json import parse_json
from protocol.version import PROTOCOL_VERSION

MAX_COMMITMENT_BYTES = 1024


class _Commitment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: int = PROTOCOL_VERSION
    bucket: str = Field(min_length=1, max_length=128)


class FilesystemCommitment(_Commitment):
    """A bucket under a shared local directory (localnet and single-host set-ups)."""

    kind: Literal["fs"] = "fs"
    root: str = Field(min_length=1, max_length=512)


class S3Commitment(_Commitment):
    """An S3-compatible bucket (R2, S3, SeaweedFS, MinIO) with *read-only* credentials."""

    kind: Literal["s3"] = "s3"
    endpoint: str = Field(min_length=1, max_length=256)
    region: str = Field(default="auto", max_length=32)
    access_key: str = Field(max_length=128)
    secret_key: str = Field(max_length=128)


BucketCommitment = Annotated[FilesystemCommitment | S3Commitment, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[FilesystemCommitment | S3Commitment] = TypeAdapter(BucketCommitment)


def encode_commitment(commitment: FilesystemCommitment | S3Commitment) -> str:
    text = json.dumps(commitment.model_dump(), separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > MAX_COMMITMENT_BYTES:
        raise BadCommitment(f"commitment is {len(text.encode())} bytes, max {MAX_COMMITMENT_BYTES}")
    return text


def parse_commitment(raw: str | bytes) -> FilesystemCommitment | S3Commitment:
    """Parse what a hotkey committed on chain; :class:`BadCommitment` for anything else."""
    try:
        data = raw.encode() if isinstance(raw, str) else raw
    except UnicodeEncodeError:  # chain strings can hold lone surrogates
        raise BadCommitment("commitment is not valid UTF-8 text") from None
    if len(data) > MAX_COMMITMENT_BYTES:
        raise BadCommitment(f"commitment is {len(data)} bytes, max {MAX_COMMITMENT_BYTES}")
    parse_json(data, "commitment", BadCommitment)  # one reading: no BOM, no duplicate keys
    try:
        commitment = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise BadCommitment(f"not a bucket commitment: {exc.error_count()} schema errors") from None
    if commitment.v != PROTOCOL_VERSION:
        raise BadCommitment(f"protocol version {commitment.v}, expected {PROTOCOL_VERSION}")
    return commitment


# Networks where every node runs on hardware the developer controls: the
# simulated chain (localnet) and a local subtensor (docker compose). There,
# buckets are local directories and S3 servers on loopback or a private network.
DEVELOPMENT_NETWORKS = frozenset({"sim", "local"})
# Names that never resolve to the public internet.
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# The last label of a public name is letters (or punycode). This also refuses
# the numeric spellings that resolvers accept for an address (``127.1``,
# ``2130706433``, ``0x7f.1``), which ipaddress would not recognise as one.
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


@dataclass(frozen=True)
class CommitmentPolicy:
    """Which commitments this node will open.

    ``filesystem_root``: filesystem commitments must name a directory under it;
    None refuses them all. ``https_only``: S3 endpoints must use https.
    ``private_endpoints``: S3 endpoints may be loopback, link-local, private or
    other non-public addresses (and names such as ``localhost``).
    """

    filesystem_root: str | None
    https_only: bool
    private_endpoints: bool

    @classmethod
    def for_network(
        cls, network: str, *, filesystem_root: str, private_endpoints: bool = False
    ) -> CommitmentPolicy:
        """The rules for ``network`` (``ChainConfig.network``); ``filesystem_root`` is this
        node's store root, ``private_endpoints`` the operator's opt-in for real networks."""
        if network in DEVELOPMENT_NETWORKS:
            return cls(filesystem_root=filesystem_root, https_only=False, private_endpoints=True)
        return cls(filesystem_root=None, https_only=True, private_endpoints=private_endpoints)


# Accepts every commitment that parses (the behaviour before per-network rules);
# for tests and callers that have no network to name.
UNRESTRICTED = CommitmentPolicy(filesystem_root="/", https_only=False, private_endpoints=True)


def check_commitment(
    commitment: FilesystemCommitment | S3Commitment, policy: CommitmentPolicy
) -> None:
    """Raise :class:`BadCommitment` unless ``policy`` lets this node open ``commitment``.

    Pure: paths are compared as written (the store factory re-checks them once
    symlinks are resolved) and host names are not resolved.
    """
    if isinstance(commitment, FilesystemCommitment):
        _check_filesystem(commitment, policy)
    else:
        _check_endpoint(commitment.endpoint, policy)


def _check_filesystem(commitment: FilesystemCommitment, policy: CommitmentPolicy) -> None:
    if policy.filesystem_root is None:
        raise BadCommitment("filesystem commitments are accepted on development networks only")
    bucket, root = commitment.bucket, commitment.root
    if bucket in {".", ".."} or any(c in bucket for c in "/\\\x00"):
        raise BadCommitment(f"bucket {bucket!r} is not a single directory name")
    path = PurePosixPath(root)
    if "\x00" in root or not path.is_absolute() or ".." in path.parts:
        raise BadCommitment(f"root {root!r} is not an absolute path without '..'")
    if not path.is_relative_to(PurePosixPath(policy.filesystem_root)):
        raise BadCommitment(f"root {root!r} is outside {policy.filesystem_root}")


def _check_endpoint(endpoint: str, policy: CommitmentPolicy) -> None:
    try:
        url = urlsplit(endpoint)
        host, _port = url.hostname, url.port  # .port raises on a bad port
    except ValueError:
        raise BadCommitment(f"endpoint {endpoint!r} is not a URL") from None
    allowed = ("https",) if policy.https_only else ("http", "https")
    if url.scheme not in allowed:
        raise BadCommitment(f"endpoint scheme {url.scheme!r}, expected {' or '.join(allowed)}")
    if not host or url.username is not None or url.password is not None:
        raise BadCommitment(f"endpoint {endpoint!r} needs a host and no user info")
    if url.path not in {"", "/"} or url.query or url.fragment:
        raise BadCommitment(f"endpoint {endpoint!r} has a path, query or fragment")
    if not policy.private_endpoints:
        _check_public_host(host)


def _check_public_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise BadCommitment(f"endpoint address {host} is not a public address")
        return
    labels = host.rstrip(".").split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or not _TLD.fullmatch(labels[-1])
    ):
        raise BadCommitment(f"endpoint host {host!r} is not a public DNS name")
    name = ".".join(labels)
    if any(name == s or name.endswith("." + s) for s in _LOCAL_SUFFIXES):
        raise BadCommitment(f"endpoint host {host!r} is a local-only name")
