"""Bucket commitments: what a node publishes on chain so others can read its bucket.

Encoded as compact JSON, at most :data:`MAX_COMMITMENT_BYTES` bytes. Anything a
hotkey commits may be garbage; :func:`parse_commitment` raises
:class:`BadCommitment` for it instead of crashing the reader.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

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
