"""The contribution ledger's two hashes (protocol/SPEC.md section 8.7), importable without torch.

- A **record link** names one aggregation record by window, lead hotkey and the SHA-256
  of the record's signed envelope exactly as stored (``sha256sum`` of the object).
- The **model digest** identifies a model's parameters exactly: SHA-256 of a domain tag
  and the canonical JSON of ``[[name, dtype, shape, sha256 of the raw little-endian
  bytes], ...]`` sorted by name. It is computed per tensor, so a checkpoint file (a
  safetensors file) can be digested without a model object (:func:`safetensors_digest`),
  and a node can digest its live model one parameter at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from protocol.errors import MalformedPayload
from protocol.schemas import AggregationRecord, RecordLink
from protocol.strict_json import parse_json

MODEL_DIGEST_DOMAIN = b"gauntlet/model-digest/v1\x00"
# Float dtypes a model (and so a checkpoint) may hold, with their item sizes in bytes.
MODEL_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}
MAX_HEADER_BYTES = 1 << 24
MAX_RECORD_BYTES = 1 << 20  # an aggregation record as stored (envelope included)


def record_sha256(raw: bytes) -> str:
    """The hash a record link carries: SHA-256 of the stored envelope bytes."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class StoredRecord:
    """A verified record and the SHA-256 of its stored bytes (what the next record links to)."""

    record: AggregationRecord
    sha256: str

    @property
    def link(self) -> RecordLink:
        return RecordLink(window=self.record.window, hotkey=self.record.hotkey, sha256=self.sha256)


def link_to(window: int, hotkey: str, raw: bytes) -> RecordLink:
    return RecordLink(window=window, hotkey=hotkey, sha256=record_sha256(raw))


def model_digest(entries: Iterable[tuple[str, str, list[int], str]]) -> str:
    """The model digest of ``(name, dtype, shape, sha256 hex of the tensor's raw bytes)``
    entries, in any order (they are sorted by name, by code point)."""
    rows = sorted([name, dtype, list(shape), sha] for name, dtype, shape, sha in entries)
    names = [row[0] for row in rows]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor name in a model digest")
    body = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(MODEL_DIGEST_DOMAIN + body.encode("ascii")).hexdigest()


def safetensors_digest(data: bytes | memoryview) -> str:
    """The model digest of a safetensors file's tensors (a checkpoint's ``model.safetensors``).

    Checks what it reads: the header is strict JSON, every tensor has a float dtype of
    :data:`MODEL_DTYPES` and offsets that match its shape and lie in the data section.
    Raises :class:`~protocol.errors.MalformedPayload` otherwise."""
    if len(data) < 8:
        raise MalformedPayload("shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise MalformedPayload("header length out of range")
    header = parse_json(bytes(data[8 : 8 + header_len]), "safetensors header")
    if not isinstance(header, dict):
        raise MalformedPayload("safetensors header is not a JSON object")
    section = memoryview(data)[8 + header_len :]
    entries = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise MalformedPayload(f"tensor entry {name!r} is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in MODEL_DTYPES:
            raise MalformedPayload(f"tensor {name!r} has dtype {dtype!r}, not a model dtype")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise MalformedPayload(f"tensor {name!r} has an invalid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise MalformedPayload(f"tensor {name!r} has invalid data_offsets")
        begin, end = offsets
        if not (
            type(begin) is int
            and type(end) is int
            and 0 <= begin <= end <= len(section)
            and end - begin == math.prod(shape) * MODEL_DTYPES[dtype]
        ):
            raise MalformedPayload(f"tensor {name!r} offsets do not match its shape and the data")
        entries.append((name, dtype, shape, hashlib.sha256(section[begin:end]).hexdigest()))
    return model_digest(entries)
