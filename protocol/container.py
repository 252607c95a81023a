"""The payload container: safetensors tensors + signed JSON manifest. Never pickle.

Layout (a valid safetensors file)::

    u64 little-endian header length N | N bytes of JSON header | data section

The header's ``__metadata__`` holds two strings: ``manifest`` (the manifest JSON,
whose ``tensors_sha256`` is the SHA-256 of the data section) and ``signature``
(hex sr25519 signature of the manifest JSON bytes by the manifest's hotkey).
The signature covers the manifest string *exactly as transmitted* (encoders
write canonical JSON), so a verifier never has to re-serialise floats the way
Python does.

:func:`decode_payload` parses the header itself, so every size, name, dtype,
shape and offset is checked before a single tensor is touched.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from protocol.envelope import canonical_json
from protocol.errors import (
    HashMismatch,
    MalformedPayload,
    NonFiniteValues,
    PayloadTooLarge,
    SchemaMismatch,
    WrongAuthor,
    WrongVersion,
    WrongWindow,
)
from protocol.schemas import ContributionManifest
from protocol.signing import Signer, sign, verify
from protocol.strict_json import parse_hex, parse_json, parse_model
from protocol.version import PROTOCOL_VERSION

# safetensors dtype name -> numpy dtype. BF16 travels as raw uint16 (numpy has no bf16).
DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
}
_NAMES = {v: k for k, v in DTYPES.items() if k != "BF16"}
FLOAT_DTYPES = {"F32", "F16"}
MAX_TENSORS = 4096
# numpy caps dimensions (32 in numpy 1.x); real model tensors have at most 4.
MAX_DIMS = 8
# Bounds on a declared shape, checked before numpy sees it. The data section
# bounds the element count of a non-empty tensor, but not of an empty one:
# ``[0, 2**63]`` has 0 elements and still makes numpy raise (a plain
# ValueError). So each dimension is bounded, and so is the product of the
# non-zero ones, far above any real tensor and far below numpy's intp limit.
MAX_DIMENSION = 2**32
MAX_ELEMENTS = 2**40


@dataclass(frozen=True)
class TensorSpec:
    """What a tensor must look like: dtype name, exact shape, optional index bound."""

    dtype: str
    shape: tuple[int, ...]
    index_bound: int | None = None  # integer tensors must hold values in [0, index_bound)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_header_bytes: int = 1 << 20


@dataclass(frozen=True)
class Payload:
    manifest: ContributionManifest
    tensors: dict[str, np.ndarray]


def _canonical(manifest: ContributionManifest) -> bytes:
    return canonical_json(manifest)


def encode_payload(
    tensors: Mapping[str, np.ndarray],
    manifest: ContributionManifest,
    signer: Signer,
    *,
    bf16_names: Collection[str] = (),
) -> bytes:
    """Serialise and sign. ``manifest.tensors_sha256`` is filled in here.

    numpy has no bfloat16, so bf16 tensors travel as raw ``uint16`` bit patterns:
    name them in ``bf16_names`` to label them ``BF16`` rather than ``U16``.
    """
    if manifest.hotkey != signer.ss58_address:
        raise ValueError("manifest hotkey differs from the signing key")
    header: dict[str, object] = {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _NAMES:
            raise ValueError(f"unsupported dtype {array.dtype} for {name}")
        raw = array.astype(dtype, copy=False).tobytes()
        dtype_name = _NAMES[dtype]
        if name in bf16_names:
            if dtype_name != "U16":
                raise ValueError(f"bf16 tensor {name} must be given as uint16 bit patterns")
            dtype_name = "BF16"
        header[name] = {
            "dtype": dtype_name,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    data = b"".join(chunks)
    manifest = manifest.model_copy(update={"tensors_sha256": hashlib.sha256(data).hexdigest()})
    manifest_json = _canonical(manifest)
    header["__metadata__"] = {
        "manifest": manifest_json.decode(),
        "signature": sign(signer, manifest_json).hex(),
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # safetensors aligns the data section
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def decode_payload(
    data: bytes,
    *,
    limits: Limits,
    expected_hotkey: str,
    expected_window: int,
    expected_netuid: int,
    specs: Mapping[str, TensorSpec] | None = None,
) -> Payload:
    """Parse and verify a contribution; raise a :class:`ProtocolError` subclass on any fault."""
    header, data_section = _split(data, limits)
    manifest, signed_bytes, signature = _manifest(header.pop("__metadata__", None))
    if manifest.protocol_version != PROTOCOL_VERSION:
        raise WrongVersion(
            f"payload version {manifest.protocol_version}, expected {PROTOCOL_VERSION}"
        )
    if manifest.hotkey != expected_hotkey:
        raise WrongAuthor(f"manifest names {manifest.hotkey}, expected {expected_hotkey}")
    if manifest.window != expected_window or manifest.netuid != expected_netuid:
        raise WrongWindow(
            f"payload is for netuid {manifest.netuid} window {manifest.window}, "
            f"expected netuid {expected_netuid} window {expected_window}"
        )
    verify(manifest.hotkey, signed_bytes, signature)
    if hashlib.sha256(data_section).hexdigest() != manifest.tensors_sha256:
        raise HashMismatch("data section does not match the signed tensors_sha256")
    tensors = _tensors(header, data_section)
    # Finiteness is checked with or without specs: NaN/Inf is never a valid contribution.
    _check_finite(tensors, header)
    if specs is not None:
        check_specs(tensors, header, specs)
    return Payload(manifest=manifest, tensors=tensors)


def _split(data: bytes, limits: Limits) -> tuple[dict, bytes]:
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"{len(data)} bytes, max {limits.max_bytes}")
    if len(data) < 8:
        raise MalformedPayload("shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > limits.max_header_bytes:
        raise PayloadTooLarge(f"header declares {header_len} bytes, max {limits.max_header_bytes}")
    if 8 + header_len > len(data):
        raise MalformedPayload("header runs past the end of the payload")
    header = parse_json(data[8 : 8 + header_len], "header")
    if not isinstance(header, dict):
        raise MalformedPayload("header is not a JSON object")
    if len(header) > MAX_TENSORS + 1:
        raise MalformedPayload(f"{len(header)} header entries, max {MAX_TENSORS}")
    return header, data[8 + header_len :]


def _manifest(metadata: object) -> tuple[ContributionManifest, bytes, bytes]:
    """The manifest, the exact bytes its signature covers, and the signature."""
    if not isinstance(metadata, dict) or set(metadata) != {"manifest", "signature"}:
        raise MalformedPayload("__metadata__ must hold exactly 'manifest' and 'signature'")
    text = metadata["manifest"]
    if not isinstance(text, str):
        raise MalformedPayload("__metadata__ manifest must be a string")
    signature = parse_hex(metadata["signature"], "signature")
    # decode_utf8 refuses lone surrogates (legal in a JSON escape): they have no
    # UTF-8 bytes, so such a manifest cannot have been signed.
    manifest = parse_model(text, ContributionManifest, "manifest")
    return manifest, text.encode("utf-8"), signature


def _tensors(header: dict, data_section: bytes) -> dict[str, np.ndarray]:
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise MalformedPayload(f"tensor entry {name!r} is malformed")
        dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype_name, str):  # a list/dict would not even hash
            raise MalformedPayload(f"tensor {name!r} dtype is not a string")
        if dtype_name not in DTYPES:
            raise SchemaMismatch(f"tensor {name!r} has unsupported dtype {dtype_name!r}")
        _check_shape(name, shape)
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
        ):
            raise MalformedPayload(f"tensor {name!r} has invalid data_offsets")
        begin, end = offsets
        dtype = DTYPES[dtype_name]
        if (
            not 0 <= begin <= end <= len(data_section)
            or end - begin != math.prod(shape) * dtype.itemsize
        ):
            raise MalformedPayload(f"tensor {name!r} offsets do not match its shape and the data")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(
            data_section, dtype=dtype, count=math.prod(shape), offset=begin
        ).reshape(shape)
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise MalformedPayload(f"tensor {name!r} overlaps or leaves a gap in the data section")
        position = end
    if position != len(data_section):
        raise MalformedPayload("data section has trailing bytes")
    return tensors


def _check_shape(name: str, shape: object) -> None:
    # ``type(x) is int`` because JSON true/false would pass isinstance(x, int).
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and 0 <= d <= MAX_DIMENSION for d in shape)
    ):
        raise MalformedPayload(f"tensor {name!r} has an invalid shape")
    if math.prod(d or 1 for d in shape) > MAX_ELEMENTS:
        raise PayloadTooLarge(f"tensor {name!r} declares more than {MAX_ELEMENTS} elements")


def check_specs(
    tensors: Mapping[str, np.ndarray], header: Mapping, specs: Mapping[str, TensorSpec]
) -> None:
    """Names, dtypes, shapes, index bounds and finiteness against what the model allows."""
    if set(tensors) != set(specs):
        missing, extra = sorted(set(specs) - set(tensors)), sorted(set(tensors) - set(specs))
        raise SchemaMismatch(f"tensor names differ: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, spec in specs.items():
        array, dtype_name = tensors[name], header[name]["dtype"]
        if dtype_name != spec.dtype:
            raise SchemaMismatch(f"tensor {name!r} is {dtype_name}, expected {spec.dtype}")
        if tuple(array.shape) != spec.shape:
            raise SchemaMismatch(
                f"tensor {name!r} has shape {tuple(array.shape)}, expected {spec.shape}"
            )
        _check_finite({name: array}, header)
        if (
            spec.index_bound is not None
            and array.size
            and (array.min() < 0 or array.max() >= spec.index_bound)
        ):
            raise SchemaMismatch(f"tensor {name!r} has indices outside [0, {spec.index_bound})")


def _check_finite(tensors: Mapping[str, np.ndarray], header: Mapping) -> None:
    for name, array in tensors.items():
        dtype_name = header[name]["dtype"]
        if dtype_name in FLOAT_DTYPES:
            finite = bool(np.isfinite(array).all())
        elif dtype_name == "BF16":
            # bf16 travels as raw uint16: NaN/Inf are the patterns with all exponent bits set.
            finite = not bool(((array & 0x7F80) == 0x7F80).any())
        else:
            continue
        if not finite:
            raise NonFiniteValues(f"tensor {name!r} holds NaN or Inf")
