"""One interface for every codec, and the factory that picks one from the manifest.

A codec turns a pseudo-gradient Δ (name -> float32 tensor, the model's
parameter shapes) into payload arrays and back. It is a pure function of
tensors: no files, no network. ``specs(shapes)`` states exactly which arrays a
valid payload holds, so the container can reject a bad payload before any
tensor is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from gauntlet.compress import dense
from gauntlet.compress.aggregate import Delta, Normalise, aggregate, l2_norm_sq
from gauntlet.compress.chunked import Device, Shape, Shapes, Tensors
from gauntlet.compress.sparse_codec import SparseCodec
from gauntlet.compress.topk import TopKCodec
from protocol.container import TensorSpec
from protocol.schemas import CodecParams, DenseCodecParams, SparseCodecParams, TopKCodecParams


class Codec(Protocol):
    """What nodes need of a codec (:class:`DenseCodec`, :class:`TopKCodec` and
    :class:`SparseCodec` fit)."""

    @property
    def params(self) -> DenseCodecParams | TopKCodecParams | SparseCodecParams: ...

    def specs(self, shapes: Shapes) -> dict[str, TensorSpec]: ...

    def encode(
        self,
        delta: Mapping[str, torch.Tensor],
        error: Mapping[str, torch.Tensor] | None = None,
        *,
        reuse_delta: bool = False,
    ) -> tuple[dict[str, np.ndarray], Delta]:
        """Payload arrays and the new residual of ``Δ + β e``; ``reuse_delta``: the caller
        gives up ``delta``, whose float32 tensors may then hold the residual."""
        ...

    def validate(self, tensors: Tensors, shapes: Shapes) -> None: ...

    def decode(self, tensors: Tensors, shapes: Shapes, device: torch.device | str = "cpu") -> Delta:
        """One peer's Δ; runs :meth:`validate` first (raises ``MalformedPayload``)."""
        ...

    def norm_sq(self, tensors: Tensors, name: str, shape: Shape, device: Device) -> float:
        """Squared L2 norm of one parameter's decoded update, from validated arrays."""
        ...

    def entries(
        self, tensors: Tensors, name: str, shape: Shape, positions: torch.Tensor, device: Device
    ) -> torch.Tensor:
        """One parameter's decoded entries at flat ``positions`` (int64), float32 on
        ``device``, from validated arrays: what a sketch reads, without a dense decode."""
        ...

    def inners(
        self,
        payloads: Sequence[Tensors],
        shapes: Shapes,
        other: Mapping[str, torch.Tensor],
        device: Device,
    ) -> list[float]:
        """⟨each payload's decoded update, ``other``⟩ over every parameter, from validated
        arrays (a sparse codec decodes none): a window's cosines with its last aggregate."""
        ...

    def entries_of(
        self,
        payloads: Sequence[Tensors],
        name: str,
        shape: Shape,
        positions: torch.Tensor,
        device: Device,
    ) -> torch.Tensor:
        """:meth:`entries` of several payloads at once, ``[len(payloads), len(positions)]``:
        the window's sketches, with operations that need not grow with the payloads."""
        ...

    def norms(self, payloads: Sequence[Tensors], shapes: Shapes, device: Device) -> list[float]:
        """Each payload's whole-update L2 norm, from validated arrays."""
        ...

    def decode_batch(
        self,
        payloads: Sequence[Tensors],
        shapes: Shapes,
        *,
        normalise: Normalise = "none",
        clip_norm: float | None = None,
        device: torch.device | str = "cpu",
    ) -> Delta: ...


class DenseCodec:
    """:mod:`gauntlet.compress.dense` behind the :class:`Codec` interface. Lossless,
    so the residual it returns is always empty (an absent name means zero)."""

    params = DenseCodecParams()

    def specs(self, shapes: Shapes) -> dict[str, TensorSpec]:
        return {name: TensorSpec("F32", tuple(shape)) for name, shape in shapes.items()}

    def encode(
        self,
        delta: Mapping[str, torch.Tensor],
        error: Mapping[str, torch.Tensor] | None = None,
        *,
        reuse_delta: bool = False,  # nothing to gain: the dense payload is Δ itself
    ) -> tuple[dict[str, np.ndarray], Delta]:
        if error:
            delta = {n: d + error[n].to(d.device) if n in error else d for n, d in delta.items()}
        return dense.encode(dict(delta)), {}

    def validate(self, tensors: Tensors, shapes: Shapes) -> None:
        """Nothing beyond the container's checks: every finite float32 is a valid Δ."""

    def decode(self, tensors: Tensors, shapes: Shapes, device: torch.device | str = "cpu") -> Delta:
        return dense.decode({name: tensors[name] for name in shapes}, device)

    def norm_sq(self, tensors: Tensors, name: str, shape: Shape, device: Device) -> float:
        return l2_norm_sq(dense.decode({name: tensors[name]}, device)[name])

    def entries(
        self, tensors: Tensors, name: str, shape: Shape, positions: torch.Tensor, device: Device
    ) -> torch.Tensor:
        flat = np.asarray(tensors[name], dtype=np.float32).reshape(-1)
        return torch.from_numpy(flat[positions.cpu().numpy()]).to(device)  # a fresh array

    def entries_of(
        self,
        payloads: Sequence[Tensors],
        name: str,
        shape: Shape,
        positions: torch.Tensor,
        device: Device,
    ) -> torch.Tensor:
        rows = [self.entries(t, name, shape, positions, device) for t in payloads]
        return torch.stack(rows) if rows else torch.empty(0, len(positions), device=device)

    def norms(self, payloads: Sequence[Tensors], shapes: Shapes, device: Device) -> list[float]:
        return [
            math.sqrt(sum(self.norm_sq(t, name, shape, device) for name, shape in shapes.items()))
            for t in payloads
        ]

    @torch.no_grad()
    def inners(
        self,
        payloads: Sequence[Tensors],
        shapes: Shapes,
        other: Mapping[str, torch.Tensor],
        device: Device,
    ) -> list[float]:
        """The payload is the update: one parameter decoded at a time, products summed in
        float64 (as :func:`gauntlet.train.novelty.inner` sums them)."""
        return [
            sum(
                float(
                    (
                        dense.decode({name: tensors[name]}, device)[name] * other[name].to(device)
                    ).sum(dtype=torch.float64)
                )
                for name in shapes
            )
            for tensors in payloads
        ]

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
        return aggregate(
            lambda i, name: dense.decode({name: payloads[i][name]}, device)[name],
            len(payloads),
            list(shapes),
            normalise,
            clip_norm,
        )


def build_codec(
    params: CodecParams | DenseCodecParams | TopKCodecParams | SparseCodecParams,
    *,
    error_decay: float = 1.0,
) -> Codec:
    """The codec a manifest's ``codec`` field names. ``error_decay`` (β) only matters to
    a lossy encoder: the residual carried into the next window is ``β e``."""
    if isinstance(params, CodecParams):
        params = params.root
    if isinstance(params, TopKCodecParams):
        return TopKCodec(params, error_decay=error_decay)
    if isinstance(params, SparseCodecParams):
        return SparseCodec(params, error_decay=error_decay)
    return DenseCodec()


def param_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """``model.named_parameters()`` as name -> shape: what :meth:`Codec.specs` takes."""
    return {name: tuple(p.shape) for name, p in model.named_parameters()}
