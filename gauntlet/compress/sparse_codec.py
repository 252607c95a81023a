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

from gauntlet.compress.chunked import ChunkedCodec, Shapes, Tensors
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
from protocol.errors import MalformedPayload
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

    def validate(self, tensors: Tensors, shapes: Shapes) -> None:
        """Checks the container cannot express (run after it checked names, dtypes, shapes
        and finiteness against :meth:`specs`); raise :class:`MalformedPayload`: canonical
        packing (unused bits zero), positions strictly increasing within a chunk (so no
        duplicates), ``lo`` and ``step`` in ``[0, MAX_ABS_VALUE]``."""
        p = self.params
        for name, shape in shapes.items():
            _, k = self._layout(shape)
            idx = torch.from_numpy(np.array(tensors[f"{name}.idx"]))  # copies: payloads are
            val = torch.from_numpy(np.array(tensors[f"{name}.val"]))  # read-only buffers
            if not (high_bits_clear(idx, k, self.width) and high_bits_clear(val, k, p.bits)):
                raise MalformedPayload(f"{name}: packed rows have stray bits after the last code")
            if k > 1 and not bool((unpack(idx, k, self.width).diff(dim=1) > 0).all()):
                raise MalformedPayload(f"{name}.idx rows are not strictly increasing")
            for suffix in ("lo", "step"):
                a = np.asarray(tensors[f"{name}.{suffix}"])
                if a.size and not (float(a.min()) >= 0 and float(a.max()) <= MAX_ABS_VALUE):
                    raise MalformedPayload(f"{name}.{suffix} outside [0, {MAX_ABS_VALUE:g}]")

    def indices(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """Positions of validated arrays, int64 ``[n_chunks, k]`` on ``device``."""
        packed = torch.from_numpy(np.array(tensors[f"{name}.idx"])).to(device)
        return unpack(packed, min(self.params.topk, self.params.chunk), self.width)

    def values(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """Dequantised kept values, float32 ``[n_chunks, k]`` on ``device``."""
        p = self.params
        packed = torch.from_numpy(np.array(tensors[f"{name}.val"])).to(device)
        code = unpack(packed, min(p.topk, p.chunk), p.bits)
        lo, step = (
            torch.from_numpy(np.array(tensors[f"{name}.{s}"])).to(device) for s in ("lo", "step")
        )
        return dequantise_signed(code, lo, step, p.bits)
