"""What the two lossy codecs share: per-chunk kept coefficients with error feedback.

The top-k codec (:mod:`gauntlet.compress.topk`) and the sparse codec
(:mod:`gauntlet.compress.sparse_codec`) differ in how a tensor is chunked and transformed
and in how positions and values are packed. Everything around that is the same, and lives
here once: carrying the residual into ``Δ + β e`` and encoding tensor by tensor, reading
a parameter's arrays back (:meth:`ChunkedCodec.read`: checked, then positions and values),
decoding one peer (each tensor through :func:`gauntlet.compress.sparse.to_dense`), and the
compressed-domain mean of several peers (:func:`gauntlet.compress.aggregate.aggregate_sparse`).

Reading works on rows: every check and every unpacking is row by row, so the rows of
several payloads stacked (one parameter's arrays of several peers, in peer order) are read
by one set of operations, on the device the aggregate is formed on. On a GPU that matters
more than the arithmetic: per peer and parameter, each operation costs a launch of about
10 µs, more than the work itself (issue 18: a 16-peer aggregate of one 1.2B block spent
0.05-0.23 s that way on an H200, 6-390× the sum it forms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from gauntlet.compress.aggregate import (
    Delta,
    Normalise,
    ReadRows,
    aggregate_sparse,
    name_runs,
    peer_groups,
    sparse_norm_sq,
    sparse_norms,
)
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.sparse import ENTRY_TERM_COST, entries_at, to_dense
from protocol.errors import MalformedPayload

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]
Device = torch.device | str
Tensors = Mapping[str, np.ndarray]
Parts = Mapping[str, torch.Tensor]
# A check the container cannot express: a 0-d bool tensor (true: passed) and the message a
# failure raises. Made where the rows are, read later, all at once (:func:`raise_failed`).
Check = tuple[torch.Tensor, str]


def raise_failed(checks: Sequence[Check]) -> None:
    """Raise :class:`MalformedPayload` with the message of the first check whose 0-d bool
    tensor is false; all of them are read in one synchronisation (on a GPU, each read
    would wait for every operation queued before it)."""
    if not checks:
        return
    passed = torch.stack([ok for ok, _ in checks]).tolist()
    for ok, (_, message) in zip(passed, checks, strict=True):
        if not ok:
            raise MalformedPayload(message)


def stacked(arrays: Sequence[np.ndarray], dtype: np.dtype, device: Device) -> torch.Tensor:
    """``arrays`` concatenated along their first axis as ``dtype``, on ``device``: one host
    copy (payloads are read-only buffers, which torch will not wrap) and, for a GPU, one
    asynchronous transfer from pinned memory (from pageable memory each copy would wait
    for every operation queued before it)."""
    if torch.device(device).type != "cuda":
        return torch.from_numpy(np.concatenate(arrays, dtype=dtype))
    shape = (sum(len(a) for a in arrays), *arrays[0].shape[1:])
    staging = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype, pin_memory=True)
    np.concatenate(arrays, out=staging.numpy())
    return staging.to(device, non_blocking=True)


def strictly_increasing(idx: torch.Tensor) -> torch.Tensor:
    """Whether every row of ``idx`` ``[rows, k]`` is strictly increasing (0-d bool)."""
    if idx.shape[1] < 2:
        return torch.ones((), dtype=torch.bool, device=idx.device)
    return (idx.diff(dim=1) > 0).all()


def within(a: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Whether every entry of ``a`` lies in ``[low, high]`` (0-d bool; true when empty)."""
    return ((a >= low) & (a <= high)).all()


class ChunkedCodec(ABC):
    """A codec whose payload holds, per chunk of a parameter, ``k`` kept positions and
    values. A subclass says how a tensor is chunked (:meth:`_layout`), whether the chunks
    are DCT-transformed (:attr:`dct`), how one tensor is encoded (:meth:`_encode_tensor`)
    and how its arrays are checked and read back (:meth:`_suffixes`, :meth:`_positions`,
    :meth:`_values`)."""

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
    def _suffixes(self) -> tuple[str, ...]:
        """The arrays a parameter's payload holds, by suffix (``{name}.{suffix}``)."""

    @abstractmethod
    def _positions(self, parts: Parts, name: str, checks: list[Check] | None) -> torch.Tensor:
        """Kept positions, int64 ``[rows, k]``, of ``parts`` (suffix -> rows, one or more
        payloads' stacked); with a ``checks`` list, the checks the container cannot express
        are added to it, unread."""

    @abstractmethod
    def _values(self, parts: Parts) -> torch.Tensor:
        """Dequantised kept values, float32 ``[rows, k]``, of checked ``parts``."""

    def _parts(
        self, arrays_of: Sequence[tuple[Tensors, str]], device: Device, *, positions: bool = True
    ) -> Parts:
        """The arrays of each ``(payload, name)``, rows stacked in that order, on ``device``
        (:func:`stacked`); without ``positions`` all but ``idx`` (the largest array of a
        sparse payload), for the values alone. Indices of 16 bits travel as int32: torch
        has no arithmetic on uint16."""
        parts = {}
        for suffix in self._suffixes():
            if suffix == "idx" and not positions:
                continue
            arrays = [np.asarray(tensors[f"{name}.{suffix}"]) for tensors, name in arrays_of]
            wide = any(a.dtype == np.uint16 for a in arrays)
            parts[suffix] = stacked(arrays, np.dtype(np.int32) if wide else arrays[0].dtype, device)
        return parts

    def read(
        self, payloads: Sequence[Tensors], name: str, device: Device, *, check: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One parameter of several payloads (container-checked against :meth:`specs`):
        kept positions int64 and dequantised values float32, ``[len(payloads) * n_chunks,
        k]`` on ``device``, peer after peer. ``check`` (the default) raises
        :class:`MalformedPayload` if any payload fails a check the container cannot
        express, without saying which: validate peers one by one (:meth:`validate`) to
        find it."""
        checks: list[Check] | None = [] if check else None
        arrays_of = [(tensors, name) for tensors in payloads]
        positions, values = self._read(arrays_of, device, checks=checks, positions=True)
        assert positions is not None  # asked for
        raise_failed(checks or [])
        return positions, values

    def _read(
        self,
        arrays_of: Sequence[tuple[Tensors, str]],
        device: Device,
        *,
        checks: list[Check] | None,
        positions: bool,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The rows of each ``(payload, name)`` stacked in that order (one ``k``), as
        :meth:`read` gives them, with their checks added to ``checks`` (if a list), unread;
        without ``positions`` the values alone, unchecked. A failed check's message names
        the first parameter: a caller that read several finds the one at fault with
        :meth:`validate`, as :meth:`decode` and :meth:`decode_batch` do."""
        parts = self._parts(arrays_of, device, positions=positions)
        at = self._positions(parts, arrays_of[0][1], checks) if positions else None
        return at, self._values(parts)

    def validate(self, tensors: Tensors, shapes: Shapes) -> None:
        """The checks the container cannot express (run after it checked names, dtypes,
        shapes, index bounds and finiteness against :meth:`specs`), on the CPU; raise
        :class:`MalformedPayload`. The codec's ``_positions`` lists them.

        Rows of parameters with the same ``k`` are checked together (:meth:`_runs`: a few
        operations per payload, not per parameter); only a payload that fails is checked
        again parameter by parameter, for the message to name the one at fault."""
        for names in self._runs(shapes):
            try:
                self._check_now([(tensors, n) for n in names], names[0])
            except MalformedPayload:
                for name in names:
                    self._check_now([(tensors, name)], name)
                raise

    def _runs(self, shapes: Shapes) -> list[list[str]]:
        """Parameter names whose rows one read may stack: the same ``k`` (rows of one
        width), at most ``READ_COEFFICIENTS`` kept coefficients together (:func:`read_runs`)."""
        return name_runs({name: self._layout(shape) for name, shape in shapes.items()})

    def _check_now(self, arrays_of: Sequence[tuple[Tensors, str]], name: str) -> None:
        checks: list[Check] = []
        self._positions(self._parts(arrays_of, "cpu"), name, checks)
        raise_failed(checks)

    def indices(self, tensors: Tensors, name: str, device: Device) -> torch.Tensor:
        """Kept positions of validated arrays, int64 ``[n_chunks, k]`` on ``device``."""
        return self._positions(self._parts([(tensors, name)], device), name, None)

    def values(self, tensors: Tensors, name: str, device: Device) -> torch.Tensor:
        """Dequantised kept values of validated arrays, float32 ``[n_chunks, k]``."""
        return self._read([(tensors, name)], device, checks=None, positions=False)[1]

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
        idx, values = self.read([tensors], name, device, check=False)
        return to_dense(layout, idx, values, self.dct).view(shape)

    @torch.no_grad()
    def norm_sq(self, tensors: Tensors, name: str, shape: Shape, device: Device) -> float:
        """Squared L2 norm of one parameter's decoded update, from validated arrays
        (:func:`gauntlet.compress.aggregate.sparse_norm_sq`, as the aggregate takes it)."""
        layout, _ = self._layout(shape)
        values = self.values(tensors, name, device)  # positions only where padding is decoded
        return sparse_norm_sq(layout, lambda: self.indices(tensors, name, device), values, self.dct)

    @torch.no_grad()
    def entries(
        self, tensors: Tensors, name: str, shape: Shape, positions: torch.Tensor, device: Device
    ) -> torch.Tensor:
        """The decoded update's entries of one parameter at flat ``positions`` (int64),
        float32, from validated arrays: summed from the kept values where few are asked
        (:func:`gauntlet.compress.sparse.entries_at`), else read from this parameter
        decoded alone (one parameter's memory, never the model's)."""
        return self.entries_of([tensors], name, shape, positions, device)[0]

    @torch.no_grad()
    def entries_of(
        self,
        payloads: Sequence[Tensors],
        name: str,
        shape: Shape,
        positions: torch.Tensor,
        device: Device,
    ) -> torch.Tensor:
        """:meth:`entries` of several payloads' updates at the same ``positions``, float32
        ``[len(payloads), len(positions)]``, each row what :meth:`entries` gives that
        payload alone: where few are asked, several payloads' rows are read and summed by
        one set of operations (as many as fit :data:`READ_COEFFICIENTS`); else each
        payload's parameter is decoded alone."""
        layout, k = self._layout(shape)
        if not payloads:
            return torch.empty(0, len(positions), device=device)
        if len(positions) * k * ENTRY_TERM_COST >= layout.n_chunks * layout.chunk_elems:
            at = positions.to(device)
            return torch.stack(
                [self.decode_tensor(t, name, shape, device).reshape(-1)[at] for t in payloads]
            )
        return torch.cat(
            [
                entries_at(layout, idx, values, self.dct, positions)
                for _, idx, values in self._rows_of(payloads, name, layout, k, device)
            ]
        )

    @torch.no_grad()
    def norms(self, payloads: Sequence[Tensors], shapes: Shapes, device: Device) -> list[float]:
        """Each payload's whole-update L2 norm, from validated arrays: the aggregate's own
        (:func:`~gauntlet.compress.aggregate.sparse_norms`, so the scale a validator
        measures an update at is the one the aggregate gives it), every payload's rows of a
        run of parameters read at once and one synchronisation at the end."""
        if not payloads:
            return []
        return sparse_norms(
            self._reader(payloads, device, None),
            len(payloads),
            {name: self._layout(shape) for name, shape in shapes.items()},
            self.dct,
            device,
        )

    @torch.no_grad()
    def inners(
        self,
        payloads: Sequence[Tensors],
        shapes: Shapes,
        other: Mapping[str, torch.Tensor],
        device: Device,
    ) -> list[float]:
        """⟨each payload's decoded update, ``other``⟩ over every parameter (``other``: one
        tensor of each of ``shapes``), from validated arrays, with no update decoded.

        The chunk transform is orthonormal and ``other`` is chunked with zeros where the
        decoder crops, so the inner product is that of the kept values with ``other``'s
        coefficients at their positions: ``other`` transformed once per parameter, then
        one gather for the payloads read together (as many as fit
        :data:`READ_COEFFICIENTS`). Equal to the decoded inner product within float
        rounding; the products are summed in float64, per parameter in ``shapes`` order,
        and read in one synchronisation at the end."""
        totals = torch.zeros(len(payloads), dtype=torch.float64, device=device)
        for name, shape in shapes.items():
            layout, k = self._layout(shape)
            coefficients = layout.to_chunks(other[name].to(device, torch.float32), self.dct)
            for group, idx, values in self._rows_of(payloads, name, layout, k, device):
                at = coefficients.expand(len(group), -1, -1).gather(2, idx)
                sums = (values * at).flatten(1).sum(dim=1, dtype=torch.float64)
                totals[group[0] : group[-1] + 1] += sums
        return totals.tolist()

    def _rows_of(
        self, payloads: Sequence[Tensors], name: str, layout: ChunkLayout, k: int, device: Device
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """One parameter's kept positions and values of validated ``payloads``, unchecked,
        ``[len(group), n_chunks, k]`` each, a group of payloads per read (as many as fit
        :data:`~gauntlet.compress.aggregate.READ_COEFFICIENTS`), with the group's indices."""
        shaped = (layout.n_chunks, k)
        for group in peer_groups(range(len(payloads)), layout.n_chunks * k):
            idx, values = self.read([payloads[i] for i in group], name, device, check=False)
            yield group, idx.view(len(group), *shaped), values.view(len(group), *shaped)

    def _reader(
        self, payloads: Sequence[Tensors], device: Device, checks: list[Check] | None
    ) -> ReadRows:
        """:data:`~gauntlet.compress.aggregate.ReadRows` of ``payloads``: the rows of a run
        of peers and parameters, their checks added to ``checks`` (None: unchecked, as for
        validated payloads) where positions are read."""
        return lambda peers, names, positions: self._read(
            [(payloads[i], name) for i in peers for name in names],  # as ReadRows says
            device,
            checks=checks if positions else None,
            positions=positions,
        )

    @torch.no_grad()
    def decode(self, tensors: Tensors, shapes: Shapes, device: torch.device | str = "cpu") -> Delta:
        """One peer's payload (container-checked against ``specs``) -> Δ on ``device``.

        Rows of parameters with the same ``k`` are read together (:meth:`_runs`: one
        transfer per array and one set of operations for most of a payload, not per
        parameter), checked (:meth:`validate`'s checks) on ``device``, and the checks read
        once at the end: unchecked rows decode safely (the container bounds every index and
        value), and a payload that fails returns nothing; :meth:`validate` then names the
        parameter at fault."""
        checks: list[Check] = []
        out: Delta = {}
        for names in self._runs(shapes):
            parts = self._parts([(tensors, n) for n in names], device)
            idx, values = self._positions(parts, names[0], checks), self._values(parts)
            layouts = [self._layout(shapes[n])[0] for n in names]
            rows = [layout.n_chunks for layout in layouts]
            for name, layout, at, kept in zip(
                names, layouts, idx.split(rows), values.split(rows), strict=True
            ):
                out[name] = to_dense(layout, at, kept, self.dct).view(shapes[name])
        try:
            raise_failed(checks)
        except MalformedPayload:
            self.validate(tensors, shapes)
            raise
        return {name: out[name] for name in shapes}

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

        Every payload is checked as it is read (on ``device``, several peers' rows at
        once); one that fails raises :class:`MalformedPayload` for the batch, naming the
        parameter at fault of the first bad payload (then checked one by one), so validate
        peers one by one beforehand (:meth:`validate`) to drop a bad one instead.
        """
        checks: list[Check] = []  # every read's, read once the sum is formed (see decode)
        out = aggregate_sparse(
            self._reader(payloads, device, checks),
            len(payloads),
            {name: self._layout(shape) for name, shape in shapes.items()},
            self.dct,
            normalise,
            clip_norm,
            device,
        )
        try:
            raise_failed(checks)
        except MalformedPayload:
            for tensors in payloads:  # the first bad payload, its parameter at fault named
                self.validate(tensors, shapes)
            raise
        return {name: out[name].view(shape) for name, shape in shapes.items()}


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()
