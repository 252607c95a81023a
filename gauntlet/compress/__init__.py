"""Pseudo-gradient codecs: how a contribution's tensors encode Δ.

``build_codec(manifest.codec)`` gives a :class:`Codec`: dense (lossless float32)
or chunked top-k with optional DCT, value quantisation and error feedback.
See docs/codec.md.
"""

from gauntlet.compress.aggregate import Normalise
from gauntlet.compress.codec import Codec, DenseCodec, build_codec, param_shapes
from gauntlet.compress.topk import TopKCodec

__all__ = ["Codec", "DenseCodec", "Normalise", "TopKCodec", "build_codec", "param_shapes"]
