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

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from gauntlet.compress.aggregate import Delta, Normalise, aggregate_sparse
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.quant import VALUE_DTYPE, dequantise, quantise
from gauntlet.compress.sparse import subtract_dense, to_dense
from gauntlet.compress.workspace import workspace
from protocol.container import TensorSpec
from protocol.errors import MalformedPayload
from protocol.schemas import TopKCodecParams

Shapes = Mapping[str, tuple[int, ...]]
Tensors = Mapping[str, np.ndarray]

# No honest coefficient comes near this; below it, reconstruction cannot overflow float32:
# |x| <= sqrt(chunk_elems) * max|c| <= 256 * (|lo| + 255 * scale) < 3.4e38.
MAX_ABS_VALUE = 1e30


def _index_dtype(bound: int) -> tuple[str, np.dtype]:
    # chunk <= 256 in the schema, so a bound never exceeds 65536 and U16 always suffices.
    return ("U8", np.dtype("u1")) if bound <= 256 else ("U16", np.dtype("<u2"))


class TopKCodec:
    """Top-k codec for one :class:`TopKCodecParams`; ``error_decay`` is β (miner-side only)."""

    def __init__(self, params: TopKCodecParams, *, error_decay: float = 1.0) -> None:
        self.params = params
        self.error_decay = error_decay

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

    @torch.no_grad()
    def encode(
        self, delta: Mapping[str, torch.Tensor], error: Mapping[str, torch.Tensor] | None = None
    ) -> tuple[dict[str, np.ndarray], Delta]:
        """Compress ``Δ + β e``; return the payload arrays and the new residual ``e``.

        ``delta``: name -> float tensor (any device). ``error``: the previous residual
        (same shapes, float32); a missing name counts as zero. The residual comes
        back float32 on each tensor's device.
        """
        payload: dict[str, np.ndarray] = {}
        residual: Delta = {}
        for name, d in delta.items():
            acc = d.detach().float()
            if error is not None and name in error:
                carried = error[name].to(acc.device, torch.float32)
                acc = torch.add(acc, carried, alpha=self.error_decay)  # one pass, fresh
            x = acc.contiguous()
            # The residual may overwrite x only if it is our own copy, never the caller's Δ.
            own = x.untyped_storage().data_ptr() != d.untyped_storage().data_ptr()
            parts, residual[name] = self._encode_tensor(x, own)
            for suffix, array in parts.items():
                payload[f"{name}.{suffix}"] = array
        return payload, residual

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

    def validate(self, tensors: Tensors, shapes: Shapes) -> None:
        """Checks the container cannot express; raise :class:`MalformedPayload`.

        Run after the container has checked names, dtypes, shapes, bounds and
        finiteness against :meth:`specs`: rows of ``idx`` strictly increasing, and
        every value, ``lo`` and ``scale`` within ``MAX_ABS_VALUE``.
        """
        for name in shapes:
            idx = tensors[f"{name}.idx"]
            if idx.shape[1] > 1 and not bool((np.diff(idx.astype(np.int32), axis=1) > 0).all()):
                raise MalformedPayload(f"{name}.idx rows are not strictly increasing")
            for suffix in ("val", "lo", "scale"):
                a = tensors.get(f"{name}.{suffix}")
                too_big = (
                    a is not None
                    and a.size > 0
                    and a.dtype != np.uint8
                    and float(np.abs(a).max()) > MAX_ABS_VALUE
                )
                if too_big:
                    raise MalformedPayload(f"{name}.{suffix} exceeds {MAX_ABS_VALUE:g}")

    def indices(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """``{name}.idx`` of validated arrays as int64 ``[n_chunks, k]`` on ``device``."""
        return torch.from_numpy(np.array(tensors[f"{name}.idx"], dtype=np.int64)).to(device)

    def values(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """The dequantised kept values of ``name``, float32 ``[n_chunks, k]`` on ``device``."""
        parts = {"val": torch.from_numpy(np.array(tensors[f"{name}.val"])).to(device)}
        if self.params.quant == "u8":
            for s in ("lo", "scale"):
                parts[s] = torch.from_numpy(np.array(tensors[f"{name}.{s}"])).to(device)
        return dequantise(parts, self.params.quant)

    def decode_tensor(
        self, tensors: Tensors, name: str, shape: tuple[int, ...], device: torch.device | str
    ) -> torch.Tensor:
        """One parameter's update, float32 of ``shape`` on ``device``, from validated arrays."""
        layout, _ = self._layout(shape)
        return to_dense(
            layout, self.indices(tensors, name, device), self.values(tensors, name, device),
            self.params.dct,
        )  # fmt: skip

    @torch.no_grad()
    def decode(self, tensors: Tensors, shapes: Shapes, device: torch.device | str = "cpu") -> Delta:
        """One peer's payload (container-checked against :meth:`specs`) -> Δ on ``device``."""
        self.validate(tensors, shapes)
        return {
            name: self.decode_tensor(tensors, name, shape, device) for name, shape in shapes.items()
        }

    @torch.no_grad()
    def decode_batch(
        self,
        payloads: Sequence[Tensors],
        shapes: Shapes,
        *,
        normalise: Normalise = "none",
        clip_norm: float | None = None,
        device: torch.device | str = "cpu",
    ) -> Delta:
        """Deterministic scaled mean of several peers' updates, formed in the coefficient
        domain: no peer is decoded densely, one inverse transform per parameter
        (:func:`gauntlet.compress.aggregate.aggregate_sparse`).

        Every payload is validated first; validate peers one by one beforehand
        (:meth:`validate`) to drop a bad one instead of failing the batch.
        """
        for tensors in payloads:
            self.validate(tensors, shapes)
        return aggregate_sparse(
            lambda i, name: self.indices(payloads[i], name, device),
            lambda i, name: self.values(payloads[i], name, device),
            len(payloads),
            {name: self._layout(shape)[0] for name, shape in shapes.items()},
            self.params.dct,
            normalise,
            clip_norm,
            device,
        )
