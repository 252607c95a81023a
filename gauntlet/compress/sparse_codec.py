"""Sparse codec without a transform: top-k values per chunk, b-bit values, packed indices.

Each parameter is flattened (row-major) and cut into chunks of ``chunk`` elements (a
power of two; the last chunk zero-padded, the padding cropped on decode). Per chunk the
``k = min(topk, chunk)`` largest magnitudes are kept. With ``n`` chunks, ``w =
log2(chunk)`` and ``b = bits``, the payload holds (:mod:`gauntlet.compress.packing`):

    {name}.idx    [n, ceil(k*w/8)]  U8   positions, strictly increasing, w bits each
    {name}.val    [n, ceil(k*b/8)]  U8   codes: sign bit + b-1 magnitude bits
    {name}.lo     [n]               F32  per-chunk smallest magnitude (>= 0)
    {name}.step   [n]               F32  per-chunk magnitude step (>= 0)

Value ``= ±(lo + q * step)``. No DCT, so no transform on either side: encoding is one
pass of top-k, decoding one scatter. Error feedback is the top-k codec's: the residual
``a − decode(payload)`` differs from ``a`` only at the kept positions.
"""

from __future__ import annotations

import numpy as np
import torch

from gauntlet.compress.chunked import (
    Check,
    ChunkedCodec,
    Parts,
    Shapes,
    strictly_increasing,
    within,
)
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.packing import (
    dequantise_signed,
    high_bits_clear,
    pack,
    packed_bytes,
    quantise_signed,
    unpack,
)
from gauntlet.compress.sparse import subtract_dense
from gauntlet.compress.workspace import workspace
from protocol.container import TensorSpec
from protocol.schemas import SparseCodecParams

# As for the top-k codec: far above any honest value, and low enough that a decoded
# value (lo + (2**7 − 1) * step <= 1.3e32) and a mean of many cannot overflow float32.
MAX_ABS_VALUE = 1e30


class SparseCodec(ChunkedCodec):
    """The codec for one :class:`SparseCodecParams`; ``error_decay`` is β (miner-side).
    Encoding, decoding and the compressed aggregate: :class:`ChunkedCodec`."""

    dct = False  # no transform: the kept values are the parameter's own entries

    def __init__(self, params: SparseCodecParams, *, error_decay: float = 1.0) -> None:
        self.params = params
        self.error_decay = error_decay
        self.width = params.chunk.bit_length() - 1  # log2(chunk): bits per index

    def _layout(self, shape: tuple[int, ...]) -> tuple[ChunkLayout, int]:
        numel = int(np.prod(shape, dtype=np.int64))
        return ChunkLayout((numel,), self.params.chunk), min(self.params.topk, self.params.chunk)

    def specs(self, shapes: Shapes) -> dict[str, TensorSpec]:
        """Exactly the tensors a payload for parameters of ``shapes`` holds."""
        out: dict[str, TensorSpec] = {}
        for name, shape in shapes.items():
            layout, k = self._layout(shape)
            n = layout.n_chunks
            out[f"{name}.idx"] = TensorSpec("U8", (n, packed_bytes(k, self.width)))
            out[f"{name}.val"] = TensorSpec("U8", (n, packed_bytes(k, self.params.bits)))
            out[f"{name}.lo"] = TensorSpec("F32", (n,))
            out[f"{name}.step"] = TensorSpec("F32", (n,))
        return out

    def _encode_tensor(
        self, x: torch.Tensor, own: bool
    ) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        p = self.params
        flat = x.view(-1)  # chunks run over the flattened tensor
        layout, k = self._layout(tuple(flat.shape))
        with workspace(flat.device) as ws:
            chunks = layout.to_chunks(
                flat, dct=False, out=ws.get("chunks", (layout.n_chunks, p.chunk))
            )
            magnitudes = torch.abs(chunks, out=ws.get("slabs", (layout.n_chunks, p.chunk)))
            idx = magnitudes.topk(k, dim=1, sorted=False).indices.sort(dim=1).values
            q = quantise_signed(chunks.gather(1, idx), p.bits)
            sent = dequantise_signed(q["code"], q["lo"], q["step"], p.bits)
            residual = subtract_dense(layout, flat, idx, sent, False, own, ws)
        arrays = {
            "idx": pack(idx, self.width).cpu().numpy(),
            "val": pack(q["code"], p.bits).cpu().numpy(),
            "lo": q["lo"].cpu().numpy(),
            "step": q["step"].cpu().numpy(),
        }
        return arrays, residual.view(x.shape)

    def _suffixes(self) -> tuple[str, ...]:
        return ("idx", "val", "lo", "step")

    def _positions(self, parts: Parts, name: str, checks: list[Check] | None) -> torch.Tensor:
        """Checks (after the container's names, dtypes, shapes and finiteness): canonical
        packing (unused bits zero), positions strictly increasing within a chunk (so no
        duplicates), ``lo`` and ``step`` in ``[0, MAX_ABS_VALUE]``."""
        p = self.params
        k = min(p.topk, p.chunk)
        idx = unpack(parts["idx"], k, self.width)
        if checks is not None:
            canonical = high_bits_clear(parts["idx"], k, self.width) & high_bits_clear(
                parts["val"], k, p.bits
            )
            checks.append((canonical, f"{name}: packed rows have stray bits after the last code"))
            checks.append(
                (strictly_increasing(idx), f"{name}.idx rows are not strictly increasing")
            )
            for s in ("lo", "step"):
                bounded = within(parts[s], 0.0, MAX_ABS_VALUE)
                checks.append((bounded, f"{name}.{s} outside [0, {MAX_ABS_VALUE:g}]"))
        return idx

    def _values(self, parts: Parts) -> torch.Tensor:
        p = self.params
        code = unpack(parts["val"], min(p.topk, p.chunk), p.bits)
        return dequantise_signed(code, parts["lo"], parts["step"], p.bits)
