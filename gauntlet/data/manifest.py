"""``manifest.json``: what a tokenised dataset directory holds, and its id.

Two layouts exist. Format 2 (written today) splits the token stream into
shard files ``shard-00000.bin, ...`` listed in ``shards``, and records the
tokenizer's file hash and end-of-document id. Format 1 (read only, for
datasets prepared before sharding) is a single ``tokens.bin`` whose hash is
the top-level ``sha256``. Both describe ``num_pages * page_tokens`` tokens of
``dtype``, little-endian, pages back to back, global page ids in file order.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT_VERSION: Literal[2] = 2  # what prepare writes; 1 is still read
MANIFEST_NAME = "manifest.json"
TOKENS_NAME = "tokens.bin"  # format 1's single token file
SHA256_PATTERN = r"^[0-9a-f]{64}$"
SHARD_PATTERN = r"^shard-[0-9]{5,}\.bin$"

TokenDtype = Literal["uint8", "uint16", "uint32"]


class DatasetError(Exception):
    """A dataset directory is missing, corrupt, or not the one asked for."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.bin"


class ShardInfo(BaseModel):
    """One token file: a whole number of pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SHARD_PATTERN)
    num_pages: int = Field(gt=0)
    num_tokens: int = Field(gt=0, description="num_pages * page_tokens")
    sha256: str = Field(pattern=SHA256_PATTERN)


class DatasetManifest(BaseModel):
    """The last ``num_validation_pages`` pages are held out for validation and
    never assigned to miners. Fields that a format does not use are None and
    are left out of the JSON (and of the id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1, 2] = FORMAT_VERSION
    tokenizer: str = Field(description="tokenizer name, e.g. 'byte' or 'hf:bpe'")
    tokenizer_sha256: str | None = Field(
        default=None, pattern=SHA256_PATTERN, description="sha256 of tokenizer.json (format 2)"
    )
    vocab_size: int = Field(gt=0)
    eot_id: int | None = Field(default=None, ge=0, description="end-of-document id (format 2)")
    dtype: TokenDtype
    page_tokens: int = Field(gt=0, description="tokens per page")
    num_pages: int = Field(gt=0, description="all pages, validation included")
    num_validation_pages: int = Field(ge=0)
    num_tokens: int = Field(gt=0, description="num_pages * page_tokens")
    sha256: str | None = Field(
        default=None, pattern=SHA256_PATTERN, description="sha256 of tokens.bin (format 1)"
    )
    shards: tuple[ShardInfo, ...] | None = Field(default=None, description="format 2")
    dataset_id: str = Field(pattern=r"^[0-9a-f]{16}$")

    @model_validator(mode="after")
    def _fields_match_the_format(self) -> DatasetManifest:
        if self.format_version == 1:
            if self.sha256 is None or self.shards is not None or self.eot_id is not None:
                raise ValueError("format 1 has sha256 and no shards or eot_id")
            if self.tokenizer_sha256 is not None:
                raise ValueError("format 1 has no tokenizer_sha256")
            return self
        if self.shards is None or self.eot_id is None or self.sha256 is not None:
            raise ValueError("format 2 has shards and eot_id, and no top-level sha256")
        if not self.shards:
            raise ValueError("format 2 needs at least one shard")
        if [s.name for s in self.shards] != [shard_name(i) for i in range(len(self.shards))]:
            raise ValueError("shards must be named shard-00000.bin, shard-00001.bin, ... in order")
        if sum(s.num_pages for s in self.shards) != self.num_pages:
            raise ValueError("shard pages do not add up to num_pages")
        if any(s.num_tokens != s.num_pages * self.page_tokens for s in self.shards):
            raise ValueError("a shard's num_tokens is not its num_pages * page_tokens")
        if self.eot_id >= self.vocab_size:
            raise ValueError("eot_id is outside the vocabulary")
        return self

    @property
    def num_train_pages(self) -> int:
        return self.num_pages - self.num_validation_pages

    def files(self) -> list[tuple[str, int, str]]:
        """(file name, pages, sha256) of every token file, in global page order."""
        if self.shards is None:
            assert self.sha256 is not None  # format 1, checked on validation
            return [(TOKENS_NAME, self.num_pages, self.sha256)]
        return [(s.name, s.num_pages, s.sha256) for s in self.shards]

    def id_fields(self) -> dict[str, Any]:
        """What the id hashes: every field but ``dataset_id``, None fields left
        out, so a format-1 manifest keeps the id it was written with."""
        return self.model_dump(mode="json", exclude={"dataset_id"}, exclude_none=True)

    def expected_id(self) -> str:
        return dataset_id_of(self.id_fields())

    def to_json(self) -> str:
        """The manifest.json text (None fields left out, like the id)."""
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


def dataset_id_of(fields: dict[str, Any]) -> str:
    """First 16 hex digits of sha256 over the canonical JSON (sorted keys, no
    spaces) of every manifest field but ``dataset_id``; the token files'
    hashes are among them, so the id pins both the layout and the exact bytes."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_manifest(data: bytes, where: str) -> DatasetManifest:
    """Validate manifest.json bytes read from ``where`` (a directory or a
    store prefix, for the message), including that the id matches the fields."""
    try:
        manifest = DatasetManifest.model_validate_json(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}"
            for error in e.errors()[:3]
        )
        more = f" (and {e.error_count() - 3} more)" if e.error_count() > 3 else ""
        raise DatasetError(f"invalid {MANIFEST_NAME} in {where}: {problems}{more}") from e
    if manifest.num_tokens != manifest.num_pages * manifest.page_tokens:
        raise DatasetError(f"{where}: manifest num_tokens is not num_pages * page_tokens")
    if manifest.num_train_pages < 1:
        raise DatasetError(f"{where}: manifest leaves no training pages")
    if manifest.dataset_id != manifest.expected_id():
        raise DatasetError(f"{where}: manifest dataset_id does not match its fields")
    return manifest
