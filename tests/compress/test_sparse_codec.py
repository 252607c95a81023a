"""Sparse codec (no transform, b-bit values, packed indices): round trip, specs, error
feedback, schema and config, and hostile payloads through the real parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from codec_helpers import parsed
from pydantic import ValidationError

from gauntlet.compress import SparseCodec, build_codec, param_shapes
from gauntlet.compress.packing import pack, packed_bytes, unpack
from gauntlet.compress.sizes import payload_bytes
from gauntlet.config.schema import CompressConfig
from gauntlet.model import build_model
from protocol.errors import MalformedPayload, NonFiniteValues, SchemaMismatch
from protocol.schemas import CodecParams, SparseCodecParams

SHAPES = {"w": (70, 40), "v": (50,), "t": (3, 4, 20), "s": ()}


def _delta(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}


def _rel_error(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    num = sum(float((a[n] - b[n]).norm() ** 2) for n in b)
    return (num / sum(float(b[n].norm() ** 2) for n in b)) ** 0.5


@pytest.mark.parametrize("width", range(1, 17))
def test_packing_round_trips_every_width(width: int) -> None:
    codes = torch.randint(0, 1 << width, (4, 37), generator=torch.Generator().manual_seed(width))
    packed = pack(codes, width)
    assert packed.shape == (4, packed_bytes(37, width)) and packed.dtype == torch.uint8
    bits = ((codes.numpy()[:, :, None] >> np.arange(width)) & 1).astype(np.uint8)
    expected = np.packbits(bits.reshape(4, -1), axis=1, bitorder="little")  # one bit stream
    assert np.array_equal(packed.numpy(), expected)
    assert torch.equal(unpack(packed, 37, width), codes)


def test_error_falls_with_k_and_bits() -> None:
    delta = _delta()
    errors = []
    for topk, bits in [(2, 2), (8, 2), (8, 4), (32, 8)]:
        codec = SparseCodec(SparseCodecParams(chunk=32, topk=topk, bits=bits))
        errors.append(_rel_error(codec.decode(codec.encode(delta)[0], SHAPES), delta))
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 0.01  # every value kept, 7 magnitude bits


def test_specs_match_encode_and_the_byte_count() -> None:
    codec = SparseCodec(SparseCodecParams(chunk=64, topk=10, bits=2))
    payload, _ = codec.encode(_delta())
    specs = codec.specs(SHAPES)
    assert set(payload) == set(specs)
    for name, spec in specs.items():
        assert payload[name].shape == spec.shape, name
        assert payload[name].dtype == (np.uint8 if spec.dtype == "U8" else np.float32), name
    # per chunk of 64: 10 six-bit indices (8 B), 10 two-bit values (3 B), lo + step (8 B)
    assert specs["w.idx"].shape == (44, 8) and specs["w.val"].shape == (44, 3)
    assert payload_bytes(specs) == sum(a.nbytes for a in payload.values())


def test_residual_is_exactly_what_was_not_sent_and_feedback_converges() -> None:
    codec = SparseCodec(SparseCodecParams(chunk=16, topk=2, bits=2))
    delta, error = _delta(1), _delta(2)
    payload, residual = codec.encode(delta, error)
    decoded = codec.decode(payload, SHAPES)
    for n in SHAPES:
        torch.testing.assert_close(residual[n], delta[n] + error[n] - decoded[n])
    drift = _delta(3)
    sent = {n: torch.zeros(s) for n, s in SHAPES.items()}
    true = {n: torch.zeros(s) for n, s in SHAPES.items()}
    carried: dict[str, torch.Tensor] | None = None
    for window in range(150):
        d = {
            n: drift[n] + torch.randn(s, generator=torch.Generator().manual_seed(window))
            for n, s in SHAPES.items()
        }
        payload, carried = codec.encode(d, carried)
        out = codec.decode(payload, SHAPES)
        for n in SHAPES:
            true[n] += d[n]
            sent[n] += out[n]
    assert _rel_error(sent, true) < 0.1


def test_schema_config_and_build() -> None:
    params = SparseCodecParams()
    assert (params.chunk, params.topk, params.bits) == (4096, 54, 2)
    with pytest.raises(ValidationError):
        SparseCodecParams(chunk=100)  # not a power of two
    with pytest.raises(ValidationError):
        SparseCodecParams(bits=9)
    wrapped = CodecParams.model_validate({"name": "sparse", "chunk": 256, "topk": 8, "bits": 3})
    assert isinstance(build_codec(wrapped), SparseCodec)
    config = CompressConfig(codec="sparse", sparse_chunk=1024, sparse_topk=12, sparse_bits=1)
    assert config.codec_params() == SparseCodecParams(chunk=1024, topk=12, bits=1)
    with pytest.raises(ValidationError):
        CompressConfig(sparse_chunk=1000)


def test_the_real_parser_accepts_an_encoded_model_update() -> None:
    model = build_model("tiny", seed=0)
    shapes = param_shapes(model)
    codec = SparseCodec(SparseCodecParams(chunk=256, topk=8, bits=2))
    delta = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    payload = parsed(codec.encode(delta)[0], codec, shapes)
    out = codec.decode(payload.tensors, shapes)
    assert all(out[n].shape == delta[n].shape for n in shapes)


def _hostile(tensors: dict, name: str, fn) -> dict:
    changed = dict(tensors)
    changed[name] = fn(tensors[name].copy())
    return changed


def test_hostile_payloads_are_rejected() -> None:
    codec = SparseCodec(SparseCodecParams(chunk=16, topk=3, bits=2))  # 3 x 4 bits, 3 x 2 bits
    tensors, _ = codec.encode(_delta())

    def swap_first_two(a: np.ndarray) -> np.ndarray:
        a[0, 0] = (a[0, 0] >> 4) | ((a[0, 0] & 0xF) << 4)  # positions 0 and 1 of chunk 0
        return a

    def duplicate(a: np.ndarray) -> np.ndarray:
        a[0, 0] = (a[0, 0] & 0xF) * 0x11
        return a

    cases = [
        (_hostile(tensors, "w.idx", swap_first_two), "increasing"),
        (_hostile(tensors, "w.idx", duplicate), "increasing"),
        (
            _hostile(tensors, "w.idx", lambda a: a | np.uint8(0xF0) * (np.arange(a.shape[1]) == 1)),
            "stray",
        ),
        (_hostile(tensors, "v.val", lambda a: a | np.uint8(0xC0)), "stray"),
        (_hostile(tensors, "t.lo", lambda a: a - 10.0), "outside"),
        (_hostile(tensors, "t.step", lambda a: a * 0 + 1e35), "outside"),
    ]
    faulty = ["w", "w", "w", "v", "t", "t"]  # the parameter each case corrupts
    for (hostile, message), name in zip(cases, faulty, strict=True):
        # validate checks every parameter's rows at once, then names the one at fault
        with pytest.raises(MalformedPayload, match=rf": {name}\W.*{message}"):
            codec.validate(hostile, SHAPES)
        with pytest.raises(MalformedPayload, match=rf": {name}\W.*{message}"):
            codec.decode(hostile, SHAPES)  # read in runs; the failure names the parameter
        for batch in ([tensors, hostile], [hostile, tensors, tensors]):  # read as one
            for mode in ("none", "per_peer"):  # per_peer reads the values first, unchecked
                with pytest.raises(MalformedPayload, match=message):
                    codec.decode_batch(batch, SHAPES, normalise=mode)
    codec.validate(tensors, SHAPES)  # the untouched payload passes
    with pytest.raises(SchemaMismatch):  # a row too long for the specs
        parsed(_hostile(tensors, "w.idx", lambda a: np.pad(a, ((0, 0), (0, 1)))), codec, SHAPES)
    with pytest.raises(NonFiniteValues):
        parsed(_hostile(tensors, "w.lo", lambda a: a * np.nan), codec, SHAPES)
