"""Chunked top-k sparsification (optionally in a DCT basis) with error feedback.

Per parameter of shape ``S`` (see :mod:`gauntlet.compress.chunking`), with
``n = n_chunks`` and ``k = min(topk, chunk_elems)``, the payload holds:

    {name}.idx    [n, k]  U8 if chunk_elems <= 256 else U16; strictly increasing
                          within a row, each in [0, chunk_elems)
    {name}.val    [n, k]  F32 | F16 | U8 (per ``quant``)
    {name}.lo     [n]     F32, u8 only: per-chunk offset
    {name}.scale  [n]     F32, u8 only: per-chunk step

Decoding puts the values back in their chunks, undoes the DCT and crops the padding
(:mod:`gauntlet.compress.sparse` picks the cheapest exact route); aggregation sums the
peers' coefficients and inverts once (:func:`gauntlet.compress.aggregate.aggregate_sparse`).
The miner keeps what was not sent (error feedback, as in DeMo and
EF-SGD): ``a = Δ + β e``, ``c = compress(a)``, ``e ← a − decompress(c)``. Over many
windows everything is eventually sent: the residual of a coordinate grows until it
wins a top-k slot, so the sum of transmitted updates tracks the sum of the true ones.
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
from gauntlet.compress.quant import VALUE_DTYPE, dequantise, quantise
from gauntlet.compress.sparse import subtract_dense
from gauntlet.compress.workspace import workspace
from protocol.container import TensorSpec
from protocol.schemas import TopKCodecParams

# No honest coefficient comes near this; below it, reconstruction cannot overflow float32:
# |x| <= sqrt(chunk_elems) * max|c| <= 256 * (|lo| + 255 * scale) < 3.4e38.
MAX_ABS_VALUE = 1e30


def _index_dtype(bound: int) -> tuple[str, np.dtype]:
    # chunk <= 256 in the schema, so a bound never exceeds 65536 and U16 always suffices.
    return ("U8", np.dtype("u1")) if bound <= 256 else ("U16", np.dtype("<u2"))


class TopKCodec(ChunkedCodec):
    """Top-k codec for one :class:`TopKCodecParams`; ``error_decay`` is β (miner-side only).
    Encoding, decoding and the compressed aggregate: :class:`ChunkedCodec`."""

    def __init__(self, params: TopKCodecParams, *, error_decay: float = 1.0) -> None:
        self.params = params
        self.error_decay = error_decay

    @property
    def dct(self) -> bool:
        return self.params.dct

    def _layout(self, shape: tuple[int, ...]) -> tuple[ChunkLayout, int]:
        layout = ChunkLayout(tuple(shape), self.params.chunk)
        return layout, min(self.params.topk, layout.chunk_elems)

    def specs(self, shapes: Shapes) -> dict[str, TensorSpec]:
        """Exactly the tensors a payload for parameters of ``shapes`` holds."""
        out: dict[str, TensorSpec] = {}
        for name, shape in shapes.items():
            layout, k = self._layout(shape)
            n, bound = layout.n_chunks, layout.chunk_elems
            out[f"{name}.idx"] = TensorSpec(_index_dtype(bound)[0], (n, k), index_bound=bound)
            out[f"{name}.val"] = TensorSpec(VALUE_DTYPE[self.params.quant], (n, k))
            if self.params.quant == "u8":
                out[f"{name}.lo"] = TensorSpec("F32", (n,))
                out[f"{name}.scale"] = TensorSpec("F32", (n,))
        return out

    def _encode_tensor(
        self, x: torch.Tensor, own: bool
    ) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        """One tensor -> (payload parts, residual ``x − what the receiver reconstructs``).
        ``own``: ``x`` may be overwritten with the residual (else it is copied)."""
        p = self.params
        layout, k = self._layout(tuple(x.shape))
        shape = (layout.n_chunks, layout.chunk_elems)
        with workspace(x.device) as ws:
            coeffs = layout.to_chunks(x, p.dct, out=ws.get("chunks", shape), ws=ws)
            # to_chunks is done with its "slabs" scratch (same size): reuse it
            magnitudes = torch.abs(coeffs, out=ws.get("slabs", shape))
            idx = magnitudes.topk(k, dim=1, sorted=False).indices
            # Ascending indices are the canonical form: the receiver rejects anything else,
            # which also rules out duplicate indices (whose scatter order would be undefined).
            idx = idx.sort(dim=1).values
            parts = quantise(coeffs.gather(1, idx), p.quant)
            # The residual is taken against the dequantised values, exactly what receivers
            # decode, without a dense inverse where the kept coefficients are few.
            residual = subtract_dense(layout, x, idx, dequantise(parts, p.quant), p.dct, own, ws)
        arrays = {s: t.cpu().numpy() for s, t in parts.items()}
        arrays["idx"] = idx.cpu().numpy().astype(_index_dtype(layout.chunk_elems)[1])
        return arrays, residual

    def _suffixes(self) -> tuple[str, ...]:
        return ("idx", "val", "lo", "scale") if self.params.quant == "u8" else ("idx", "val")

    def _positions(self, parts: Parts, name: str, checks: list[Check] | None) -> torch.Tensor:
        """Checks (after the container's names, dtypes, shapes, bounds and finiteness):
        rows of ``idx`` strictly increasing, every float value, ``lo`` and ``scale``
        within ``MAX_ABS_VALUE``."""
        idx = parts["idx"]
        if checks is not None:
            ascending = strictly_increasing(idx.int())  # uint8 differences would wrap around
            checks.append((ascending, f"{name}.idx rows are not strictly increasing"))
            for suffix in ("val", "lo", "scale"):
                a = parts.get(suffix)
                if a is not None and a.dtype != torch.uint8:
                    bounded = within(a.abs(), 0.0, MAX_ABS_VALUE)
                    checks.append((bounded, f"{name}.{suffix} exceeds {MAX_ABS_VALUE:g}"))
        return idx.long()

    def _values(self, parts: Parts) -> torch.Tensor:
        return dequantise(dict(parts), self.params.quant)
