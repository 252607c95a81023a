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
identical result on one machine. Norms are computed without overflow (in float64;
the dense path also scaled by the max first) so a huge-but-finite hostile update still
gets a finite scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal, TypeVar

import torch

from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.sparse import scatter_sum, to_dense
from gauntlet.compress.workspace import workspace

T = TypeVar("T")
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


# Kept coefficients read at once (several peers' rows of one parameter): bounds a read's
# memory, positions int64, values float32 and the unpacking's int64 temporaries (about 60
# bytes a coefficient: ~0.5 GB), while 16 peers' coefficients of any 1.2B matrix (at most
# ~0.5M each at the default densities) are read by one set of operations.
READ_COEFFICIENTS = 1 << 23

# ``read(peers, name, positions)``: those peers' kept positions (int64, checked; None when
# ``positions`` is false) and dequantised values (float32) of ``name``, ``[len(peers) *
# n_chunks, k]`` each, peer after peer. The norms need no positions (but of a padded
# tensor): reading values alone skips unpacking them and the checks, which the sum's
# read of the same rows makes.
ReadRows = Callable[[Sequence[int], str, bool], tuple[torch.Tensor | None, torch.Tensor]]


def read_runs(items: Sequence[T], coefficients: Callable[[T], int]) -> list[list[T]]:
    """``items`` in order, cut into runs of at most :data:`READ_COEFFICIENTS` coefficients
    together (an item larger than that is a run alone): what one read may stack."""
    out: list[list[T]] = []
    held = READ_COEFFICIENTS  # a full run: the first item starts a new one
    for item in items:
        size = coefficients(item)
        if held + size > READ_COEFFICIENTS:
            out.append([])
            held = 0
        out[-1].append(item)
        held += size
    return out


def peer_groups(peers: Sequence[int], per_peer: int) -> list[list[int]]:
    """``peers`` in order, in runs of :func:`read_runs` (``per_peer`` coefficients each)."""
    return read_runs(peers, lambda _: per_peer)


def aggregate_sparse(
    read: ReadRows,
    n_peers: int,
    layouts: Mapping[str, tuple[ChunkLayout, int]],
    dct: bool,
    normalise: Normalise,
    clip_norm: float | None,
    device: torch.device | str,
) -> Delta:
    """:func:`aggregate` of sparse updates, in the coefficient domain. ``read`` gives the
    kept coefficients of a run of peers (:data:`ReadRows`); ``layouts[name]`` is ``name``'s
    chunking and the coefficients kept per chunk, DCT-transformed if ``dct``.

    Norms: the transform is orthonormal, so a peer's norm is that of its values (Parseval;
    for raw chunks they are the entries themselves), summed in float64 on ``device`` and
    read once; a payload's checks come with the sum's read of its positions. A padded
    tensor's chunks also hold coefficients whose energy lands in the cropped padding, so
    that tensor alone is decoded to measure it: the norm is always the decoded update's,
    as :func:`aggregate` takes it (equal within float rounding).

    Sum: per parameter, each peer's values times ``scale_i / n_peers`` are added into one
    zero coefficient tensor in list order (:func:`gauntlet.compress.sparse.scatter_sum`:
    one add per position per peer, no atomics), then one inverse transform. Peers are read
    in runs (:func:`peer_groups`), so the operations per parameter do not grow with the
    number of peers but for one ``scatter_add_`` each. Memory: the output, one parameter's
    coefficients and one run's rows of one parameter.
    """
    if n_peers < 1:
        raise ValueError("aggregate needs at least one peer")
    norms = [1.0] * n_peers
    if normalise != "none":
        norms = sparse_norms(read, n_peers, layouts, dct, device)
    weights = [s / n_peers for s in peer_scales(norms, normalise, clip_norm)]
    active = [i for i, w in enumerate(weights) if w != 0]
    # on the device once: a small tensor copied per read would wait for the queue each time
    active_weights = torch.tensor([weights[i] for i in active], dtype=torch.float32).to(device)
    out: Delta = {}
    with workspace(device) as ws:
        for name, (layout, k) in layouts.items():
            parts = _weighted_rows(read, name, active, active_weights, layout.n_chunks, k)
            out[name] = layout.from_chunks(scatter_sum(layout, parts, ws), dct, ws)
    return out


def sparse_norms(
    read: ReadRows,
    n_peers: int,
    layouts: Mapping[str, tuple[ChunkLayout, int]],
    dct: bool,
    device: torch.device | str,
) -> list[float]:
    """Each peer's whole-update L2 norm (see :func:`aggregate_sparse`), from one read of
    every parameter of every run of peers and one synchronisation at the end."""
    total = torch.zeros(n_peers, dtype=torch.float64, device=device)
    for name, (layout, k) in layouts.items():
        for group in peer_groups(range(n_peers), layout.n_chunks * k):
            idx, values = read(group, name, layout.padded)
            rows = values.view(len(group), layout.n_chunks, k)
            if idx is not None:  # padded: decoded, for the energy the crop drops
                at = idx.view(len(group), layout.n_chunks, k)
                dense = [to_dense(layout, i, v, dct) for i, v in zip(at, rows, strict=True)]
                sq = torch.stack([torch.linalg.vector_norm(d, dtype=torch.float64) for d in dense])
            else:
                sq = torch.linalg.vector_norm(rows.flatten(1), dim=1, dtype=torch.float64)
            total[group[0] : group[-1] + 1] += sq.square()
    return [math.sqrt(x) for x in total.tolist()]


def _weighted_rows(
    read: ReadRows,
    name: str,
    peers: list[int],
    weights: torch.Tensor,
    n_chunks: int,
    k: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each of ``peers``' ``(positions, values × weight)`` of ``name``, ``[n_chunks, k]``,
    in list order, read in runs; ``weights`` float32, one per peer of ``peers``, on the
    values' device."""
    start = 0
    for group in peer_groups(peers, n_chunks * k):
        idx, values = read(group, name, True)
        assert idx is not None  # asked for
        scale = weights[start : start + len(group), None, None]
        start += len(group)
        scaled = values.view(len(group), n_chunks, k) * scale
        yield from zip(idx.view(len(group), n_chunks, k), scaled, strict=True)
