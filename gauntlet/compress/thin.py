"""An update kept to the largest of the coefficients its codec keeps: the codec once more,
keeping ``topk // factor`` a chunk.

At the window's median norm a small update overshoots, and one sent as only its largest
coefficients overshoots less, so it measures as more pages than it trained (the ``thin``
behaviour, ``scenarios/thin.toml``; docs/scoring.md, *What the limit leaves of a boost*).
A validator can measure every update thinned alike (``validator.measure_thin``, off by
default: tried, it also thins away what the own-page test sees of large honest updates;
docs/runs.md, *Thinning*); bench/recorded_updates.py measures what thinning does to a
run's recorded uploads.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gauntlet.compress.aggregate import Delta
from gauntlet.compress.chunked import ChunkedCodec, Tensors
from gauntlet.compress.codec import Codec, build_codec


def thinner(codec: Codec, factor: int) -> Codec | None:
    """``codec`` keeping ``topk // factor`` (at least 1) coefficients a chunk, with its
    error decay; None for a codec with no ``topk`` (the dense one keeps everything)."""
    if factor < 1:
        raise ValueError(f"need factor >= 1, got {factor}")
    params = getattr(codec, "params", None)
    topk = getattr(params, "topk", None)
    if params is None or topk is None:
        return None
    fewer = params.model_copy(update={"topk": max(1, topk // factor)})
    return build_codec(fewer, error_decay=getattr(codec, "error_decay", 1.0))


def thinned(
    codec: Codec,
    delta: Mapping[str, torch.Tensor],
    shapes: Mapping[str, tuple[int, ...]],
    factor: int,
) -> Delta | None:
    """``delta`` through :func:`thinner` once, with no error feedback, on its device; None
    where the codec has no ``topk``."""
    fewer = thinner(codec, factor)
    if fewer is None:
        return None
    device = next(iter(delta.values())).device
    return fewer.decode(fewer.encode(delta, None)[0], dict(shapes), device)


def top_share(
    codec: Codec, tensors: Tensors, shapes: Mapping[str, tuple[int, ...]], factor: int = 4
) -> float | None:
    """The share of an upload's squared norm in the largest ``1 / factor`` of the values
    each chunk keeps (``topk // factor``, at least 1), read from its validated payload in
    the codec's own domain (DCT coefficients for the top-k codec): 1.0 for an upload
    thinned to that fraction, lower the more its norm is spread over the kept values. None
    for a codec with no chunks (the dense one) or an empty upload.

    Measured, not enforced: an honest first upload, with no error feedback yet, is far more
    concentrated than one carrying its residual (docs/runs.md, *Thinning*)."""
    if factor < 1:
        raise ValueError(f"need factor >= 1, got {factor}")
    if not isinstance(codec, ChunkedCodec):
        return None
    top = total = 0.0
    for name in shapes:
        _, values = codec.read([tensors], name, "cpu", check=False)
        squares = values.double() ** 2
        kept = max(1, squares.shape[1] // factor)
        top += float(squares.topk(kept, dim=1).values.sum())
        total += float(squares.sum())
    return top / total if total > 0 else None
