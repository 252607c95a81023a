"""Bucket commitments: round trip, size limit, and garbage from chain always BadCommitment."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.commitment import (
    MAX_COMMITMENT_BYTES,
    FilesystemCommitment,
    S3Commitment,
    encode_commitment,
    parse_commitment,
)
from protocol.errors import BadCommitment
from protocol.version import PROTOCOL_VERSION

S3 = S3Commitment(
    bucket="gauntlet-miner-7",
    endpoint="https://abc123.r2.cloudflarestorage.com",
    access_key="A" * 32,
    secret_key="s" * 64,
)


@pytest.mark.parametrize("commitment", [S3, FilesystemCommitment(bucket="b", root="/tmp/store")])
def test_round_trip(commitment) -> None:
    assert parse_commitment(encode_commitment(commitment)) == commitment
    assert parse_commitment(encode_commitment(commitment).encode()) == commitment


def test_largest_commitment_fits_the_limit() -> None:
    largest = S3Commitment(
        bucket="b" * 128,
        endpoint="e" * 256,
        region="r" * 32,
        access_key="a" * 128,
        secret_key="s" * 128,
    )
    assert len(encode_commitment(largest).encode()) <= MAX_COMMITMENT_BYTES
    fs = FilesystemCommitment(bucket="b" * 128, root="r" * 512)
    assert len(encode_commitment(fs).encode()) <= MAX_COMMITMENT_BYTES


def test_oversized_input_is_bad_before_parsing() -> None:
    with pytest.raises(BadCommitment):
        parse_commitment(" " * (MAX_COMMITMENT_BYTES + 1))


def test_other_protocol_version_is_bad() -> None:
    raw = json.loads(encode_commitment(S3))
    raw["v"] = PROTOCOL_VERSION + 1
    with pytest.raises(BadCommitment):
        parse_commitment(json.dumps(raw))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "[]",
        '"s3"',
        "{}",
        '{"kind":"ftp","bucket":"b"}',
        '{"kind":"s3","bucket":"b"}',
        '{"kind":"fs","bucket":"b","root":"/r","extra":1}',
        '{"kind":"fs","bucket":"","root":"/r"}',
        '{"kind":"fs","bucket":"b","root":"/r","v":"1x"}',
        '{"kind":"fs","bucket":"b","root":"/r","v":NaN}',
        "[" * 1000 + "]" * 1000,
        b"\xff\xfe\x00",
        "\ud800",
    ],
)
def test_wrong_shapes_are_bad(raw) -> None:
    with pytest.raises(BadCommitment):
        parse_commitment(raw)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048) | st.text(st.characters(), max_size=2048))
def test_random_input_is_bad(raw) -> None:
    with pytest.raises(BadCommitment):
        parse_commitment(raw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_valid_json_of_wrong_shape_is_bad(value) -> None:
    with pytest.raises(BadCommitment):
        parse_commitment(json.dumps(value))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["bucket", "endpoint", "region", "access_key", "secret_key", "kind", "v"]), JSON
)
def test_field_of_any_other_value_is_bad_or_valid(field, value) -> None:
    raw = json.loads(encode_commitment(S3))
    raw[field] = value
    try:
        parsed = parse_commitment(json.dumps(raw))
    except BadCommitment:
        return
    assert isinstance(parsed, S3Commitment)
