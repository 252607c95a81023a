"""Payload size arithmetic: bytes per parameter and compression ratio per model.

Pure functions of shapes and codec parameters, so docs/codec.md's table can be
regenerated (``.venv/bin/python bench/codec.py --table``) whenever a model
config is added.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.model import MODEL_CONFIGS, ModelArgs, Transformer
from protocol.container import DTYPES, TensorSpec
from protocol.schemas import DenseCodecParams, TopKCodecParams

# The ~1.2B config (TinyLlama-like, 32k vocabulary, GQA 16/8): the size the codec bench and
# the size table quote for the Gauntlet paper's run.
ASSUMED_1B2 = MODEL_CONFIGS["1.2b"]


def model_shapes(args: ModelArgs) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the model for ``args``, built on the meta device (no memory)."""
    with torch.device("meta"):
        return param_shapes(Transformer(args))


def payload_bytes(specs: Mapping[str, TensorSpec]) -> int:
    """Bytes of tensor data a payload with ``specs`` carries (header extra, ~100 B/tensor)."""
    return sum(math.prod(s.shape) * DTYPES[s.dtype].itemsize for s in specs.values())


def topk_bytes_per_param(p: TopKCodecParams, two_d: bool = True) -> float:
    """Bytes per parameter for a tensor that fills its chunks exactly (no padding).

    Per chunk of ``e`` elements (``chunk**2`` for matrices, ``chunk`` for vectors),
    ``k = min(topk, e)``: ``k`` indices (1 B if ``e <= 256`` else 2 B), ``k`` values
    (4, 2 or 1 B) and, for u8, 8 B of ``lo``/``scale``; divided by ``e``.
    """
    e = p.chunk * p.chunk if two_d else p.chunk
    k = min(p.topk, e)
    value = {"f32": 4, "f16": 2, "u8": 1}[p.quant]
    return (k * ((1 if e <= 256 else 2) + value) + (8 if p.quant == "u8" else 0)) / e


def size_row(shapes: Mapping[str, tuple[int, ...]], p: DenseCodecParams | TopKCodecParams) -> dict:
    """Parameters, payload bytes, bytes/param and ratio to dense fp32 for one model and codec."""
    n_params = sum(math.prod(s) for s in shapes.values())
    nbytes = payload_bytes(build_codec(p).specs(shapes))
    return {
        "params": n_params,
        "payload_bytes": nbytes,
        "bytes_per_param": nbytes / n_params,
        "ratio_vs_fp32": 4 * n_params / nbytes,
    }


def size_table(codecs: Mapping[str, DenseCodecParams | TopKCodecParams]) -> dict[str, dict]:
    """``{model: {codec label: size_row}}`` for every MODEL_CONFIGS entry and ASSUMED_1B2."""
    models = {**MODEL_CONFIGS, "assumed-1.2B": ASSUMED_1B2}
    return {
        m: {label: size_row(model_shapes(args), p) for label, p in codecs.items()}
        for m, args in models.items()
    }
