"""What the two lossy codecs share: per-chunk kept coefficients with error feedback.

The top-k codec (:mod:`gauntlet.compress.topk`) and the sparse codec
(:mod:`gauntlet.compress.sparse_codec`) differ in how a tensor is chunked and transformed
and in how positions and values are packed. Everything around that is the same, and lives
here once: carrying the residual into ``Δ + β e`` and encoding tensor by tensor, decoding
one peer (validate, then each tensor through :func:`gauntlet.compress.sparse.to_dense`),
and the compressed-domain mean of several peers
(:func:`gauntlet.compress.aggregate.aggregate_sparse`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from gauntlet.compress.aggregate import Delta, Normalise, aggregate_sparse, sparse_norm_sq
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.sparse import ENTRY_TERM_COST, entries_at, to_dense

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]
Device = torch.device | str
Tensors = Mapping[str, np.ndarray]


class ChunkedCodec(ABC):
    """A codec whose payload holds, per chunk of a parameter, ``k`` kept positions and
    values. A subclass says how a tensor is chunked (:meth:`_layout`), whether the chunks
    are DCT-transformed (:attr:`dct`), how one tensor is encoded (:meth:`_encode_tensor`)
    and how validated arrays read back (:meth:`validate`, :meth:`indices`, :meth:`values`)."""

    error_decay: float  # β: the share of the previous residual carried (miner-side only)

    @property
    @abstractmethod
    def dct(self) -> bool:
        """Whether chunks hold DCT coefficients (decoding then inverts the transform)."""

    @abstractmethod
    def _layout(self, shape: tuple[int, ...]) -> tuple[ChunkLayout, int]:
        """The chunking of a parameter of ``shape`` and the values kept per chunk."""

    @abstractmethod
    def _encode_tensor(
        self, x: torch.Tensor, own: bool
    ) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        """One contiguous float32 tensor -> (payload parts by suffix, residual of ``x``'s
        shape); ``own``: ``x`` may be overwritten with the residual."""

    @abstractmethod
    def validate(self, tensors: Tensors, shapes: Shapes) -> None:
        """Checks the container cannot express; raise ``MalformedPayload``."""

    @abstractmethod
    def indices(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """Kept positions of validated arrays, int64 ``[n_chunks, k]`` on ``device``."""

    @abstractmethod
    def values(self, tensors: Tensors, name: str, device: torch.device | str) -> torch.Tensor:
        """Dequantised kept values of validated arrays, float32 ``[n_chunks, k]``."""

    @torch.no_grad()
    def encode(
        self,
        delta: Mapping[str, torch.Tensor],
        error: Mapping[str, torch.Tensor] | None = None,
        *,
        reuse_delta: bool = False,
    ) -> tuple[dict[str, np.ndarray], Delta]:
        """Compress ``Δ + β e``; return the payload arrays and the new residual ``e``.

        ``delta``: name -> float tensor (any device). ``error``: the previous residual
        (same shapes, float32); a missing name counts as zero; it is never modified (a
        miner that stores nothing keeps it). The residual comes back float32 on each
        tensor's device. ``reuse_delta``: the caller gives ``delta`` up (a miner's Δ is
        not needed once encoded), so a float32 contiguous tensor of it is overwritten
        with ``Δ + β e`` and then becomes the residual: one fresh tensor the size of the
        model fewer per window, whose first touch (page faults) cost a CPU encode about
        as much as the error-feedback add itself (issue 18). The payload and residual
        are bit-identical either way.
        """
        payload: dict[str, np.ndarray] = {}
        residual: Delta = {}
        # A storage two names view (tied weights) is never written: the later name reads it.
        views = Counter(_storage(t) for t in delta.values())
        for name, d in delta.items():
            # given up, float32 (else .float() copies anyway), contiguous, and Δ's only view
            reusable = (
                reuse_delta
                and d.dtype == torch.float32
                and d.is_contiguous()
                and views[_storage(d)] == 1
            )
            acc = d.detach().float()
            if error is not None and name in error:
                carried = error[name].to(acc.device, torch.float32)
                # Δ + β e in one pass: into Δ itself when it is given up, else fresh (the
                # same arithmetic, so the same bits)
                out = acc if reusable else None
                acc = torch.add(acc, carried, alpha=self.error_decay, out=out)
            x = acc.contiguous()
            # The residual may overwrite x only if it is our own copy or Δ was given up,
            # never a Δ the caller keeps.
            own = reusable or _storage(x) != _storage(d)
            parts, residual[name] = self._encode_tensor(x, own)
            for suffix, array in parts.items():
                payload[f"{name}.{suffix}"] = array
        return payload, residual

    def decode_tensor(
        self, tensors: Tensors, name: str, shape: tuple[int, ...], device: torch.device | str
    ) -> torch.Tensor:
        """One parameter's update, float32 of ``shape`` on ``device``, from validated arrays."""
        layout, _ = self._layout(shape)
        idx, values = self.indices(tensors, name, device), self.values(tensors, name, device)
        return to_dense(layout, idx, values, self.dct).view(shape)

    @torch.no_grad()
    def norm_sq(self, tensors: Tensors, name: str, shape: Shape, device: Device) -> float:
        """Squared L2 norm of one parameter's decoded update, from validated arrays
        (:func:`gauntlet.compress.aggregate.sparse_norm_sq`, as the aggregate takes it)."""
        layout, _ = self._layout(shape)
        values = self.values(tensors, name, device)
        return sparse_norm_sq(layout, lambda: self.indices(tensors, name, device), values, self.dct)

    @torch.no_grad()
    def entries(
        self, tensors: Tensors, name: str, shape: Shape, positions: torch.Tensor, device: Device
    ) -> torch.Tensor:
        """The decoded update's entries of one parameter at flat ``positions`` (int64),
        float32, from validated arrays: summed from the kept values where few are asked
        (:func:`gauntlet.compress.sparse.entries_at`), else read from this parameter
        decoded alone (one parameter's memory, never the model's)."""
        layout, k = self._layout(shape)
        if len(positions) * k * ENTRY_TERM_COST >= layout.n_chunks * layout.chunk_elems:
            return self.decode_tensor(tensors, name, shape, device).reshape(-1)[
                positions.to(device)
            ]
        idx, values = self.indices(tensors, name, device), self.values(tensors, name, device)
        return entries_at(layout, idx, values, self.dct, positions)

    @torch.no_grad()
    def decode(self, tensors: Tensors, shapes: Shapes, device: torch.device | str = "cpu") -> Delta:
        """One peer's payload (container-checked against ``specs``) -> Δ on ``device``."""
        self.validate(tensors, shapes)
        return {n: self.decode_tensor(tensors, n, s, device) for n, s in shapes.items()}

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
        out = aggregate_sparse(
            lambda i, name: self.indices(payloads[i], name, device),
            lambda i, name: self.values(payloads[i], name, device),
            len(payloads),
            {name: self._layout(shape)[0] for name, shape in shapes.items()},
            self.dct,
            normalise,
            clip_norm,
            device,
        )
        return {name: out[name].view(shape) for name, shape in shapes.items()}


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()
