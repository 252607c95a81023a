"""Deterministic aggregation of several peers' decoded updates: scale each, then mean.

Modes (``u_i`` is peer ``i``'s whole decoded update, ``||u_i||`` its L2 norm over
every parameter together, ``n`` the number of peers)::

    none      mean_i u_i
    per_peer  mean_i (m / ||u_i||) u_i,  m = lower median of the non-zero ||u_i||
    clip      mean_i min(1, c / ||u_i||) u_i,  c = clip_norm

``per_peer`` gives every peer the same norm, the median one (not unit norm, so
the outer learning rate keeps its meaning): a peer cannot buy influence by
sending a larger update, and while fewer than half the peers are hostile the
lower median is an honest peer's norm, so hostile peers cannot inflate it
either. ``clip`` leaves honest updates untouched and bounds any one peer's
contribution to the mean by ``c / n``. A zero update stays zero.

Two drivers compute it. :func:`aggregate` works on decoded (dense) updates: the
dense codec's, and the reference the other is tested against. :func:`aggregate_sparse`
works on sparse chunk coefficients (top-k payloads) without decoding any peer: the
transforms are linear, so the mean of the decoded updates is the inverse transform
of the weighted sum of the coefficients, one inverse per parameter for all peers.

Determinism: peers are summed in list order, parameters one at a time, in
float32 with a left fold; the same inputs in the same order give a bitwise
identical result on one machine. Norms are computed without overflow (scaled
by the max first) so a huge-but-finite hostile update still gets a finite scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch

from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.sparse import scatter_sum, to_dense
from gauntlet.compress.workspace import workspace

Normalise = Literal["none", "per_peer", "clip"]
Delta = dict[str, torch.Tensor]


def l2_norm_sq(u: torch.Tensor) -> float:
    """Squared L2 norm of ``u`` as a Python float (float64), safe against float32 overflow."""
    peak = float(u.abs().amax()) if u.numel() else 0.0
    if peak == 0.0:
        return 0.0
    # ||u|| = peak * ||u / peak||: every |u / peak| <= 1, so squaring cannot overflow.
    # Accumulated in float64: a float32 sum over a 0.5M-element tensor is off by ~1e-5
    # relative, more than the difference between the sparse and the dense route's norms.
    return (peak * float(torch.linalg.vector_norm(u / peak, dtype=torch.float64))) ** 2


def sparse_norm_sq(
    layout: ChunkLayout, indices: Callable[[], torch.Tensor], values: torch.Tensor, dct: bool
) -> float:
    """Squared L2 norm of the tensor whose chunks hold ``values`` at ``indices()``: that of
    the values (the transform is orthonormal: Parseval; raw values are the entries), except
    where chunks hold padding, whose energy the crop drops; that tensor alone is decoded
    (the only case that reads ``indices``)."""
    if not layout.padded:
        return l2_norm_sq(values)
    return l2_norm_sq(to_dense(layout, indices(), values, dct))


def peer_scales(
    norms: Sequence[float], normalise: Normalise, clip_norm: float | None
) -> list[float]:
    """The factor each peer's update is multiplied by before the mean (see module doc)."""
    if normalise == "none":
        return [1.0] * len(norms)
    if normalise == "clip":
        if clip_norm is None or not clip_norm > 0:
            raise ValueError("normalise='clip' needs a positive clip_norm")
        return [min(1.0, clip_norm / n) if n > 0 else 1.0 for n in norms]
    if normalise == "per_peer":
        median = median_norm(norms)
        return [median / n if n > 0 else 0.0 for n in norms]
    raise ValueError(f"unknown normalise mode {normalise!r}")


def median_norm(norms: Sequence[float]) -> float:
    """The norm ``per_peer`` gives every update: the lower median of the non-zero norms
    (0.0 with none). Always a real peer's norm, and an empty update (which has no
    direction to rescale) cannot drag it to zero."""
    positive = sorted(n for n in norms if n > 0)
    return positive[(len(positive) - 1) // 2] if positive else 0.0


def peer_shares(
    norms: Sequence[float], normalise: Normalise, clip_norm: float | None
) -> list[float]:
    """Each peer's part of the aggregate: the norm of its scaled update, ``scale_i ||u_i||``,
    over the sum of those norms (the contribution ledger's ``share``; they sum to 1).

    ``per_peer`` gives every non-zero update the same part, ``clip`` parts in proportion to
    the clipped norms, ``none`` to the raw norms. The scale alone would be wrong: under
    ``per_peer`` it is ``m / ||u_i||``, largest for the smallest update, though every update
    enters the mean with the same norm. With no norm at all (every update zero, or a
    non-finite sum) the parts are equal."""
    if not norms:
        return []
    parts = [s * n for s, n in zip(peer_scales(norms, normalise, clip_norm), norms, strict=True)]
    peak = max(parts)
    if not (math.isfinite(peak) and peak > 0):
        return [1.0 / len(norms)] * len(norms)
    scaled = [p / peak for p in parts]  # <= 1 each: the sum cannot overflow
    total = sum(scaled)
    return [p / total for p in scaled]


def aggregate(
    decode_tensor: Callable[[int, str], torch.Tensor],
    n_peers: int,
    names: Sequence[str],
    normalise: Normalise,
    clip_norm: float | None,
) -> Delta:
    """Mean of ``n_peers`` scaled updates; ``decode_tensor(i, name)`` -> peer ``i``'s tensor.

    Decodes one tensor at a time (twice when norms are needed: once to measure,
    once to sum), so peak memory is the output plus one parameter, not one model
    per peer.
    """
    if n_peers < 1:
        raise ValueError("aggregate needs at least one peer")
    norms = [1.0] * n_peers
    if normalise != "none":
        norms = [
            math.sqrt(sum(l2_norm_sq(decode_tensor(i, n)) for n in names)) for i in range(n_peers)
        ]
    scales = peer_scales(norms, normalise, clip_norm)
    out: Delta = {}
    for name in names:
        total = decode_tensor(0, name) * scales[0]
        for i in range(1, n_peers):
            total = total + decode_tensor(i, name) * scales[i]
        out[name] = total / n_peers
    return out


def aggregate_sparse(
    indices: Callable[[int, str], torch.Tensor],
    values: Callable[[int, str], torch.Tensor],
    n_peers: int,
    layouts: Mapping[str, ChunkLayout],
    dct: bool,
    normalise: Normalise,
    clip_norm: float | None,
    device: torch.device | str,
) -> Delta:
    """:func:`aggregate` of sparse updates, in the coefficient domain. ``indices(i, name)``
    (int64 ``[n_chunks, k]``, unique per row) and ``values(i, name)`` (float32, same shape,
    dequantised) are peer ``i``'s kept coefficients of ``name``, chunked by ``layouts[name]``
    and DCT-transformed if ``dct``.

    Norms: the transform is orthonormal, so a peer's norm is that of its values (Parseval;
    for raw chunks they are the entries themselves). A padded tensor's chunks also hold
    coefficients whose energy lands in the cropped padding, so that tensor alone is decoded
    to measure it: the norm is always the decoded update's, as :func:`aggregate` takes it
    (equal within float rounding).

    Sum: per parameter, each peer's values times ``scale_i / n_peers`` are added into one
    zero coefficient tensor in list order (:func:`gauntlet.compress.sparse.scatter_sum`:
    one add per position per peer, no atomics), then one inverse transform. Memory: the
    output, one parameter's coefficients and one peer's values of one parameter.
    """
    if n_peers < 1:
        raise ValueError("aggregate needs at least one peer")

    def norm_sq(i: int, name: str) -> float:
        return sparse_norm_sq(layouts[name], lambda: indices(i, name), values(i, name), dct)

    norms = [1.0] * n_peers
    if normalise != "none":
        norms = [math.sqrt(sum(norm_sq(i, n) for n in layouts)) for i in range(n_peers)]
    weights = [s / n_peers for s in peer_scales(norms, normalise, clip_norm)]
    out: Delta = {}
    with workspace(device) as ws:
        for name, layout in layouts.items():
            parts = (
                (indices(i, name), values(i, name) * w) for i, w in enumerate(weights) if w != 0
            )
            out[name] = layout.from_chunks(scatter_sum(layout, parts, ws), dct, ws)
    return out
