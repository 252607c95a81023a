"""How concentrated an upload's norm is on its largest kept values (``top_share``): what
tells a thinned upload from a whole one, and why it cannot be a rule (an honest first
upload is concentrated too: docs/runs.md, *Thinning*)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gauntlet.compress.codec import build_codec
from gauntlet.compress.thin import thinned, top_share
from protocol.schemas import DenseCodecParams, SparseCodecParams, TopKCodecParams

SHAPES = {"w": (16, 16), "v": (8, 32)}  # matrices: every chunk keeps topk values


def _delta(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) for name, shape in SHAPES.items()}


@pytest.mark.parametrize(
    "params",
    [
        TopKCodecParams(chunk=4, topk=8, dct=True, quant="f32"),
        SparseCodecParams(chunk=64, topk=16, bits=8),
    ],
    ids=["topk", "sparse"],
)
def test_a_thinned_upload_has_all_its_norm_in_the_top_quarter_a_whole_one_less(params) -> None:
    codec = build_codec(params)
    delta = _delta(1)
    whole = top_share(codec, codec.encode(delta)[0], SHAPES)
    thin = thinned(codec, delta, SHAPES, 4)
    assert thin is not None
    concentrated = top_share(codec, codec.encode(thin)[0], SHAPES)
    assert whole is not None and concentrated is not None
    assert 0.25 < whole < 0.8  # the largest quarter of Gaussian top-k values: most, not all
    assert concentrated == pytest.approx(1.0, abs=0.02)  # 8-bit values: near, not exactly


def test_the_share_is_read_in_the_codecs_domain_and_ignores_scale() -> None:
    """The top-k codec keeps DCT coefficients: the share is theirs (Parseval: their squares
    sum to the update's), and an upload scaled by any factor has the same share."""
    codec = build_codec(TopKCodecParams(chunk=4, topk=8, dct=True, quant="f32"))
    delta = _delta(2)
    payload = codec.encode(delta)[0]
    scaled = codec.encode({n: 7.5 * t for n, t in delta.items()})[0]
    assert top_share(codec, payload, SHAPES) == pytest.approx(top_share(codec, scaled, SHAPES))
    # by hand, from the kept values of each chunk
    top = total = 0.0
    for name in SHAPES:
        _, values = codec.read([payload], name, "cpu")
        squares = np.sort(values.double().numpy() ** 2, axis=1)[:, ::-1]
        top += squares[:, : max(1, squares.shape[1] // 4)].sum()
        total += squares.sum()
    assert top_share(codec, payload, SHAPES) == pytest.approx(top / total)


def test_a_codec_without_chunks_or_an_empty_upload_has_no_share() -> None:
    dense = build_codec(DenseCodecParams())
    assert top_share(dense, dense.encode(_delta(3))[0], SHAPES) is None
    codec = build_codec(TopKCodecParams(chunk=4, topk=8, dct=True, quant="f32"))
    zero = {name: torch.zeros(shape) for name, shape in SHAPES.items()}
    assert top_share(codec, codec.encode(zero)[0], SHAPES) is None
    with pytest.raises(ValueError):
        top_share(codec, codec.encode(zero)[0], SHAPES, factor=0)
