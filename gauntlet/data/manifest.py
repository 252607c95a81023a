"""``manifest.json``: what a tokenised dataset directory holds, and its id."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TOKENS_NAME = "tokens.bin"

TokenDtype = Literal["uint8", "uint16", "uint32"]


class DatasetError(Exception):
    """A dataset directory is missing, corrupt, or not the one asked for."""


class DatasetManifest(BaseModel):
    """Describes ``tokens.bin``: ``num_pages * page_tokens`` tokens of ``dtype``,
    little-endian, pages back to back. The last ``num_validation_pages`` pages
    are held out for validation and never assigned to miners."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    tokenizer: str = Field(description="tokenizer name, e.g. 'byte'")
    vocab_size: int = Field(gt=0)
    dtype: TokenDtype
    page_tokens: int = Field(gt=0, description="tokens per page")
    num_pages: int = Field(gt=0, description="all pages, validation included")
    num_validation_pages: int = Field(ge=0)
    num_tokens: int = Field(gt=0, description="num_pages * page_tokens")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of tokens.bin")
    dataset_id: str = Field(pattern=r"^[0-9a-f]{16}$")

    @property
    def num_train_pages(self) -> int:
        return self.num_pages - self.num_validation_pages

    def expected_id(self) -> str:
        return dataset_id_of(self.model_dump(exclude={"dataset_id"}))


def dataset_id_of(fields: dict) -> str:
    """First 16 hex digits of sha256 over the canonical JSON (sorted keys, no
    spaces) of every manifest field but ``dataset_id``; ``sha256`` is among
    them, so the id pins both the layout and the exact bytes."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
