"""Helpers for the wire-contract tests: a valid payload and a way to craft broken ones."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from protocol.container import Limits, TensorSpec, encode_payload
from protocol.schemas import ContributionManifest
from protocol.signing import Signer, sign

NETUID, WINDOW = 3, 42
SPECS = {
    "layer.idx": TensorSpec("I64", (2, 4), index_bound=16),
    "layer.vals": TensorSpec("F32", (2, 4)),
    "norm": TensorSpec("BF16", (3,)),
}

LIMITS = Limits(max_bytes=1 << 20, max_header_bytes=1 << 16)


def tensors() -> dict[str, np.ndarray]:
    return {
        "layer.idx": np.array([[0, 3, 7, 15], [1, 2, 4, 8]], dtype=np.int64),
        "layer.vals": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4),
        "norm": np.array([0x3F80, 0x4000, 0xBF80], dtype=np.uint16),  # bf16 1, 2, -1
    }


def manifest_for(hotkey: str, **overrides) -> ContributionManifest:
    fields = dict(
        netuid=NETUID,
        window=WINDOW,
        uid=5,
        hotkey=hotkey,
        model="tiny",
        fingerprint=[0.5, -0.25],
        page_ids=[1, 2, 3],
        tensors_sha256="0" * 64,
    )
    fields.update(overrides)
    return ContributionManifest(**fields)


def encode(arrays: dict[str, np.ndarray], signer: Signer, **manifest_fields) -> bytes:
    """A valid payload of ``arrays`` (``norm`` labelled BF16) signed by ``signer``."""
    manifest = manifest_for(signer.ss58_address, **manifest_fields)
    return encode_payload(arrays, manifest, signer, bf16_names={"norm"})


def split(payload: bytes) -> tuple[dict, bytes]:
    """Header dict and data section of a payload we produced."""
    (n,) = struct.unpack("<Q", payload[:8])
    return json.loads(payload[8 : 8 + n]), payload[8 + n :]


def assemble(header: dict | str | bytes, data: bytes) -> bytes:
    """A payload from any header (dict, or raw JSON text) and data section."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    raw = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(raw)) + raw + data


def signed_metadata(manifest_json: str, signer: Signer) -> dict[str, str]:
    """``__metadata__`` for an arbitrary manifest text, validly signed by ``signer``."""
    return {"manifest": manifest_json, "signature": sign(signer, manifest_json.encode()).hex()}


def resigned(payload: bytes, signer: Signer, data: bytes | None = None, **fields) -> bytes:
    """``payload`` with manifest fields replaced (and data swapped), validly re-signed."""
    header, old_data = split(payload)
    data = old_data if data is None else data
    manifest = json.loads(header["__metadata__"]["manifest"])
    manifest.update(tensors_sha256=hashlib.sha256(data).hexdigest())
    manifest.update(fields)
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    header["__metadata__"] = signed_metadata(text, signer)
    return assemble(header, data)
