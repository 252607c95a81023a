"""Top-k codec: reconstruction error, specs, index bounds and the real payload parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from codec_helpers import manifest as codec_manifest
from codec_helpers import parsed

from gauntlet.compress import DenseCodec, TopKCodec, build_codec, param_shapes
from gauntlet.compress.sizes import payload_bytes, topk_bytes_per_param
from gauntlet.model import build_model
from protocol.errors import MalformedPayload, SchemaMismatch
from protocol.schemas import CodecParams, ContributionManifest, TopKCodecParams

SHAPES = {"w": (70, 40), "v": (50,), "t": (3, 4, 20)}


def _delta(seed: int = 0, shapes: dict = SHAPES) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=g) for n, s in shapes.items()}


def _rel_error(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    num = sum(float((a[n] - b[n]).norm() ** 2) for n in a)
    return (num / sum(float(b[n].norm() ** 2) for n in b)) ** 0.5


def _round_trip(params: TopKCodecParams, delta: dict[str, torch.Tensor]) -> dict:
    codec = TopKCodec(params)
    payload, _ = codec.encode(delta)
    return codec.decode(payload, {n: tuple(t.shape) for n, t in delta.items()})


def test_dense_round_trip_is_exact() -> None:
    delta, codec = _delta(), DenseCodec()
    payload, residual = codec.encode(delta)
    assert residual == {}
    out = codec.decode(payload, SHAPES)
    assert all(torch.equal(out[n], delta[n]) for n in delta)


@pytest.mark.parametrize("dct", [False, True])
def test_error_falls_as_k_grows_and_is_zero_when_all_are_kept(dct: bool) -> None:
    delta = _delta()
    errors = [
        _rel_error(
            _round_trip(TopKCodecParams(chunk=8, topk=k, dct=dct, quant="f32"), delta), delta
        )
        for k in (1, 4, 16, 64)
    ]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-6  # k = chunk**2 keeps every coefficient


def test_dct_concentrates_a_smooth_update() -> None:
    # A smooth (low-frequency) update needs few DCT coefficients but many raw values.
    x = torch.linspace(0, 3, 64)
    delta = {"w": torch.outer(torch.sin(x), torch.cos(x))}
    raw = _rel_error(
        _round_trip(TopKCodecParams(chunk=16, topk=8, dct=False, quant="f32"), delta), delta
    )
    dct = _rel_error(
        _round_trip(TopKCodecParams(chunk=16, topk=8, dct=True, quant="f32"), delta), delta
    )
    assert dct < raw / 5


@pytest.mark.parametrize(("quant", "bound"), [("f16", 1e-3), ("u8", 0.02)])
def test_quantisation_adds_a_small_error(quant: str, bound: float) -> None:
    delta = _delta()
    exact = _round_trip(TopKCodecParams(chunk=8, topk=16, quant="f32"), delta)
    quantised = _round_trip(TopKCodecParams(chunk=8, topk=16, quant=quant), delta)  # type: ignore[arg-type]
    assert 0 < _rel_error(quantised, exact) < bound


@pytest.mark.parametrize("quant", ["f32", "f16", "u8"])
@pytest.mark.parametrize("chunk", [8, 32])
def test_specs_match_what_encode_produces(quant: str, chunk: int) -> None:
    codec = TopKCodec(TopKCodecParams(chunk=chunk, topk=10, quant=quant))  # type: ignore[arg-type]
    payload, _ = codec.encode(_delta())
    specs = codec.specs(SHAPES)
    assert set(payload) == set(specs)
    names = {"F32": "float32", "F16": "float16", "U8": "uint8", "U16": "uint16"}
    for name, spec in specs.items():
        assert payload[name].shape == spec.shape, name
        assert payload[name].dtype == np.dtype(names[spec.dtype]), name
        if spec.index_bound is not None:
            assert payload[name].min() >= 0 and payload[name].max() < spec.index_bound
    # chunk 8: a 2-D chunk has 64 elements -> U8 indices; chunk 32: 1024 -> U16.
    assert specs["w.idx"].dtype == ("U8" if chunk == 8 else "U16")
    assert payload_bytes(specs) == sum(a.nbytes for a in payload.values())


def test_bytes_per_param_formula_matches_specs_for_an_unpadded_matrix() -> None:
    p = TopKCodecParams(chunk=32, topk=16, quant="u8")
    specs = TopKCodec(p).specs({"w": (128, 256)})
    assert payload_bytes(specs) / (128 * 256) == topk_bytes_per_param(p)


def test_the_real_payload_parser_accepts_an_encoded_model_update() -> None:
    model = build_model("tiny", seed=0)
    shapes = param_shapes(model)
    params = CodecParams(TopKCodecParams(chunk=16, topk=8))
    codec = build_codec(params)
    delta = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    tensors, _ = codec.encode(delta)
    payload = parsed(tensors, codec, shapes, max_bytes=1 << 20)
    assert payload.manifest.codec == params
    assert isinstance(build_codec(payload.manifest.codec), TopKCodec)
    out = codec.decode(payload.tensors, shapes)
    assert set(out) == set(shapes) and all(out[n].shape == delta[n].shape for n in out)


def test_the_payload_parser_rejects_an_index_out_of_bounds() -> None:
    codec = TopKCodec(TopKCodecParams(chunk=8, topk=4))
    tensors, _ = codec.encode(_delta())
    tensors["v.idx"] = tensors["v.idx"].copy()
    tensors["v.idx"][0, -1] = 8  # a 1-D chunk of 8 elements: valid indices are 0..7
    with pytest.raises(SchemaMismatch):
        parsed(tensors, codec, SHAPES, max_bytes=1 << 20)


def test_duplicate_indices_and_absurd_values_are_rejected() -> None:
    codec = TopKCodec(TopKCodecParams(chunk=8, topk=4, quant="f32"))
    tensors, _ = codec.encode(_delta())
    dup = dict(tensors, **{"w.idx": tensors["w.idx"].copy()})
    dup["w.idx"][0, 1] = dup["w.idx"][0, 0]
    with pytest.raises(MalformedPayload, match="increasing"):
        codec.decode(dup, SHAPES)
    huge = dict(tensors, **{"w.val": np.full_like(tensors["w.val"], 1e35)})
    with pytest.raises(MalformedPayload, match="exceeds"):
        codec.decode(huge, SHAPES)
    for hostile, message in ((dup, "w.idx rows are not strictly increasing"), (huge, "w.val")):
        with pytest.raises(MalformedPayload, match=message):
            codec.validate(hostile, SHAPES)  # checked with the other parameters, then named
        for mode in ("none", "per_peer"):  # several peers' rows read at once
            with pytest.raises(MalformedPayload, match=message.split()[0]):
                codec.decode_batch([tensors, hostile, tensors], SHAPES, normalise=mode)
    codec.validate(tensors, SHAPES)


def test_dense_manifests_still_validate() -> None:
    manifest = codec_manifest(CodecParams())
    again = ContributionManifest.model_validate_json(manifest.model_dump_json())
    assert again.codec.name == "dense" and again.model_dump()["codec"] == {"name": "dense"}
    assert isinstance(build_codec(again.codec), DenseCodec)
