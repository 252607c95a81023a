"""The payload container: round trip with real keys, and every fault rejected with its typed error."""

from __future__ import annotations

import json
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import (
    LIMITS,
    NETUID,
    SPECS,
    WINDOW,
    assemble,
    encode,
    manifest_for,
    resigned,
    signed_metadata,
    split,
    tensors,
)
from safetensors.numpy import load as safetensors_load

from protocol import errors
from protocol.container import Limits, decode_payload, encode_payload
from protocol.version import PROTOCOL_VERSION

FIXTURES = [HealthCheck.function_scoped_fixture]


def decode(data: bytes, hotkey: str, *, window: int = WINDOW, specs=SPECS, limits=LIMITS):
    return decode_payload(
        data,
        limits=limits,
        expected_hotkey=hotkey,
        expected_window=window,
        expected_netuid=NETUID,
        specs=specs,
    )


def with_tensor_entry(payload: bytes, name: str, **entry) -> bytes:
    header, data = split(payload)
    header[name] = {**header[name], **entry}
    return assemble(header, data)


# --- valid payloads ---------------------------------------------------------------------------


def test_round_trip_with_real_sr25519_keys(payload, miner) -> None:
    decoded = decode(payload, miner.ss58_address)
    assert decoded.manifest.hotkey == miner.ss58_address
    assert decoded.manifest.window == WINDOW and decoded.manifest.page_ids == [1, 2, 3]
    for name, array in tensors().items():
        np.testing.assert_array_equal(decoded.tensors[name], array)


def test_payload_is_a_real_safetensors_file(miner) -> None:
    # safetensors.numpy cannot build bf16 arrays, so this payload labels ``norm`` U16.
    payload = encode_payload(tensors(), manifest_for(miner.ss58_address), miner)
    loaded = safetensors_load(payload)
    assert set(loaded) == set(tensors())
    np.testing.assert_array_equal(loaded["layer.vals"], tensors()["layer.vals"])
    np.testing.assert_array_equal(loaded["layer.idx"], tensors()["layer.idx"])


def test_bf16_label_requires_uint16_bits(miner) -> None:
    arrays = {**tensors(), "norm": np.ones(3, dtype=np.float32)}
    with pytest.raises(ValueError):
        encode(arrays, miner)


def test_decoding_without_specs_still_parses(payload, miner) -> None:
    assert set(decode(payload, miner.ss58_address, specs=None).tensors) == set(SPECS)


def test_encode_refuses_a_manifest_for_another_hotkey(miner, other) -> None:
    with pytest.raises(ValueError):
        encode_payload(tensors(), manifest_for(other.ss58_address), miner)


# --- parser robustness: never anything but a ProtocolError ------------------------------------


def test_every_truncation_is_a_protocol_error(payload, miner) -> None:
    for cut in range(len(payload)):
        with pytest.raises(errors.ProtocolError):
            decode(payload[:cut], miner.ss58_address)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
@given(st.binary(max_size=4096))
def test_random_bytes_are_a_protocol_error(miner, data: bytes) -> None:
    with pytest.raises(errors.ProtocolError):
        decode(data, miner.ss58_address)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
@given(st.data())
def test_any_single_byte_mutation_is_rejected_or_harmless(payload, miner, data) -> None:
    position = data.draw(st.integers(0, len(payload) - 1))
    value = data.draw(st.integers(0, 255))
    mutated = payload[:position] + bytes([value]) + payload[position + 1 :]
    try:
        decoded = decode(mutated, miner.ss58_address)
    except errors.ProtocolError:
        return
    # Only bytes the parser legitimately ignores (e.g. header padding) may change.
    for name, array in tensors().items():
        np.testing.assert_array_equal(decoded.tensors[name], array)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(JSON)
def test_header_json_of_any_shape_is_a_protocol_error(miner, header) -> None:
    with pytest.raises(errors.ProtocolError):
        decode(assemble(json.dumps(header), b""), miner.ss58_address)


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(field=st.sampled_from(["dtype", "shape", "data_offsets"]), value=JSON)
def test_tensor_entry_of_wrong_types_is_a_protocol_error(payload, miner, field, value) -> None:
    header, data = split(payload)
    if header["layer.vals"][field] == value:
        return
    try:
        decode(with_tensor_entry(payload, "layer.vals", **{field: value}), miner.ss58_address)
    except errors.ProtocolError:
        return
    pytest.fail(f"{field}={value!r} was accepted")


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURES)
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=4))
def test_metadata_of_any_shape_is_a_protocol_error(payload, miner, metadata) -> None:
    header, data = split(payload)
    header["__metadata__"] = metadata
    with pytest.raises(errors.ProtocolError):
        decode(assemble(header, data), miner.ss58_address)


# --- sizes and bounded memory ------------------------------------------------------------------


def test_header_declaring_2_pow_62_bytes_is_rejected_quickly(miner) -> None:
    data = struct.pack("<Q", 2**62) + b"{}" + b"\0" * 64
    started = time.perf_counter()
    with pytest.raises(errors.PayloadTooLarge):
        decode(data, miner.ss58_address)
    assert time.perf_counter() - started < 0.1


def test_header_longer_than_the_payload_is_malformed(miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        decode(struct.pack("<Q", 1000) + b"{}", miner.ss58_address)


def test_payload_over_the_byte_limit_is_too_large(payload, miner) -> None:
    with pytest.raises(errors.PayloadTooLarge):
        decode(payload, miner.ss58_address, limits=Limits(max_bytes=len(payload) - 1))


def test_huge_declared_shape_is_rejected_without_allocating(payload, miner) -> None:
    mutated = with_tensor_entry(payload, "layer.vals", shape=[2**40, 2**40])
    tracemalloc.start()
    try:
        with pytest.raises(errors.MalformedPayload):
            decode(mutated, miner.ss58_address)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_too_many_dimensions_are_malformed(payload, miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        decode(
            with_tensor_entry(payload, "layer.vals", shape=[1] * 64 + [2, 4]), miner.ss58_address
        )


def test_booleans_are_not_dimensions(payload, miner) -> None:
    bad = with_tensor_entry(payload, "norm", shape=[True, 3], data_offsets=[64, 70])
    with pytest.raises(errors.MalformedPayload):
        decode(bad, miner.ss58_address)


# --- JSON traps ---------------------------------------------------------------------------------


def test_duplicate_header_keys_are_malformed(payload, miner) -> None:
    header, data = split(payload)
    text = json.dumps(header, separators=(",", ":"))
    entry = json.dumps(header["norm"], separators=(",", ":"))
    duplicated = text[:-1] + f',"norm":{entry}}}'
    with pytest.raises(errors.MalformedPayload, match="duplicate"):
        decode(assemble(duplicated, data), miner.ss58_address)


def test_deeply_nested_header_is_malformed(miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        decode(assemble("[" * 30_000 + "]" * 30_000, b""), miner.ss58_address)


def test_integer_with_too_many_digits_is_malformed(miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        decode(assemble('{"x":' + "9" * 10_000 + "}", b""), miner.ss58_address)


def test_nan_constant_in_header_is_malformed(payload, miner) -> None:
    header, data = split(payload)
    text = json.dumps(header, separators=(",", ":"))[:-1] + ',"x":NaN}'
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(text, data), miner.ss58_address)


def test_non_finite_fingerprint_is_malformed(payload, miner) -> None:
    header, data = split(payload)
    manifest = header["__metadata__"]["manifest"].replace(
        '"fingerprint":[0.5', '"fingerprint":[1e999'
    )
    header["__metadata__"] = signed_metadata(manifest, miner)
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(header, data), miner.ss58_address)


# --- dtypes, shapes, indices, values -------------------------------------------------------------


def test_unknown_dtype_is_a_schema_mismatch(payload, miner) -> None:
    with pytest.raises(errors.SchemaMismatch):
        decode(with_tensor_entry(payload, "layer.vals", dtype="F64"), miner.ss58_address)


def test_dtype_other_than_the_spec_is_a_schema_mismatch(payload, miner) -> None:
    with pytest.raises(errors.SchemaMismatch):
        decode(with_tensor_entry(payload, "layer.vals", dtype="I32"), miner.ss58_address)


def test_shape_other_than_the_spec_is_a_schema_mismatch(payload, miner) -> None:
    with pytest.raises(errors.SchemaMismatch):
        decode(with_tensor_entry(payload, "layer.vals", shape=[4, 2]), miner.ss58_address)


def test_missing_or_extra_tensor_is_a_schema_mismatch(payload, miner) -> None:
    specs = {k: v for k, v in SPECS.items() if k != "norm"}
    with pytest.raises(errors.SchemaMismatch):
        decode(payload, miner.ss58_address, specs=specs)


@pytest.mark.parametrize("bad_index", [16, -1, 2**40])
def test_index_outside_its_bound_is_a_schema_mismatch(miner, bad_index) -> None:
    arrays = tensors()
    arrays["layer.idx"][1, 3] = bad_index
    data = encode(arrays, miner)
    with pytest.raises(errors.SchemaMismatch):
        decode(data, miner.ss58_address)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_is_rejected(miner, value) -> None:
    arrays = tensors()
    arrays["layer.vals"][0, 0] = value
    data = encode(arrays, miner)
    with pytest.raises(errors.NonFiniteValues):
        decode(data, miner.ss58_address)
    with pytest.raises(errors.NonFiniteValues):
        decode(data, miner.ss58_address, specs=None)


@pytest.mark.parametrize("bits", [0x7F80, 0xFF80, 0x7FC0])  # bf16 +Inf, -Inf, NaN
def test_non_finite_bf16_is_rejected(miner, bits) -> None:
    arrays = tensors()
    arrays["norm"][1] = bits
    data = encode(arrays, miner)
    with pytest.raises(errors.NonFiniteValues):
        decode(data, miner.ss58_address)


# --- offsets ------------------------------------------------------------------------------------


def test_overlapping_offsets_are_malformed(payload, miner) -> None:
    header, _ = split(payload)
    begin = header["layer.vals"]["data_offsets"][0]
    with pytest.raises(errors.MalformedPayload):
        decode(
            with_tensor_entry(payload, "norm", data_offsets=[begin, begin + 6]), miner.ss58_address
        )


def test_gapped_offsets_are_malformed(payload, miner) -> None:
    header, data = split(payload)
    header["norm"]["data_offsets"] = [n + 2 for n in header["norm"]["data_offsets"]]
    with pytest.raises(errors.MalformedPayload):
        decode(resigned(assemble(header, data), miner, data=data + b"\0\0"), miner.ss58_address)


def test_trailing_data_is_malformed(payload, miner) -> None:
    _, data = split(payload)
    with pytest.raises(errors.MalformedPayload):
        decode(resigned(payload, miner, data=data + b"\0" * 8), miner.ss58_address)


def test_offsets_past_the_data_are_malformed(payload, miner) -> None:
    _, data = split(payload)
    bad = with_tensor_entry(payload, "norm", data_offsets=[len(data), len(data) + 6])
    with pytest.raises(errors.MalformedPayload):
        decode(bad, miner.ss58_address)


# --- identity, window, integrity -----------------------------------------------------------------


def test_mutated_data_bytes_are_a_hash_mismatch(payload, miner) -> None:
    mutated = payload[:-1] + bytes([payload[-1] ^ 1])
    with pytest.raises(errors.HashMismatch):
        decode(mutated, miner.ss58_address)


def test_flipped_signature_is_a_bad_signature(payload, miner) -> None:
    header, data = split(payload)
    signature = header["__metadata__"]["signature"]
    header["__metadata__"]["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    with pytest.raises(errors.BadSignature):
        decode(assemble(header, data), miner.ss58_address)


def test_short_signature_is_a_bad_signature(payload, miner) -> None:
    header, data = split(payload)
    header["__metadata__"]["signature"] = "00" * 10
    with pytest.raises(errors.BadSignature):
        decode(assemble(header, data), miner.ss58_address)


def test_signature_that_is_not_hex_is_malformed(payload, miner) -> None:
    header, data = split(payload)
    header["__metadata__"]["signature"] = "zz" * 64
    with pytest.raises(errors.MalformedPayload):
        decode(assemble(header, data), miner.ss58_address)


def test_tampered_manifest_is_a_bad_signature(payload, miner) -> None:
    header, data = split(payload)
    header["__metadata__"]["manifest"] = header["__metadata__"]["manifest"].replace(
        '"page_ids":[1,2,3]', '"page_ids":[1,2,4]'
    )
    with pytest.raises(errors.BadSignature):
        decode(assemble(header, data), miner.ss58_address)


def test_payload_of_another_hotkey_is_wrong_author(miner, other) -> None:
    theirs = encode(tensors(), other)
    with pytest.raises(errors.WrongAuthor):
        decode(theirs, miner.ss58_address)


def test_manifest_naming_us_but_signed_by_another_is_a_bad_signature(payload, miner, other) -> None:
    with pytest.raises(errors.BadSignature):
        decode(resigned(payload, other), miner.ss58_address)


def test_payload_for_another_window_is_wrong_window(payload, miner) -> None:
    with pytest.raises(errors.WrongWindow):
        decode(payload, miner.ss58_address, window=WINDOW + 1)


def test_payload_for_another_netuid_is_wrong_window(payload, miner) -> None:
    with pytest.raises(errors.WrongWindow):
        decode(resigned(payload, miner, netuid=NETUID + 1), miner.ss58_address)


def test_payload_of_another_protocol_version_is_wrong_version(payload, miner) -> None:
    with pytest.raises(errors.WrongVersion):
        decode(resigned(payload, miner, protocol_version=PROTOCOL_VERSION + 1), miner.ss58_address)


def test_manifest_with_unknown_field_is_malformed(payload, miner) -> None:
    with pytest.raises(errors.MalformedPayload):
        decode(resigned(payload, miner, bonus=1), miner.ss58_address)
