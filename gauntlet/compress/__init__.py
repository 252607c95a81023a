"""Pseudo-gradient codecs: how a contribution's tensors encode Δ.

``build_codec(manifest.codec)`` gives a :class:`Codec`: dense (lossless float32),
chunked top-k with optional DCT, value quantisation and error feedback, or sparse
(top-k without a transform, b-bit values, packed indices).
See docs/codec.md.
"""

from gauntlet.compress.aggregate import Normalise
from gauntlet.compress.codec import Codec, DenseCodec, build_codec, param_shapes
from gauntlet.compress.sparse_codec import SparseCodec
from gauntlet.compress.topk import TopKCodec

__all__ = [
    "Codec",
    "DenseCodec",
    "Normalise",
    "SparseCodec",
    "TopKCodec",
    "build_codec",
    "param_shapes",
]
