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

Determinism: every entry gets its peers' values added in list order, in float32
with a left fold (whether parameters are summed one at a time or several in one
tensor); the same inputs in the same order give a bitwise identical result on one
machine. Norms are computed without overflow (in float64;
the dense path also scaled by the max first) so a huge-but-finite hostile update still
gets a finite scale.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


# Kept coefficients read at once (several peers' rows of one or more parameters): bounds a
# read's memory, positions int64, values float32 and the unpacking's int64 temporaries
# (about 60 bytes a coefficient: ~0.25 GB), while 16 peers' coefficients of any 1.2B block
# matrix (at most ~0.16M each at the default densities) are read by one set of
# operations. Not more: an int64 array of 2^22 is 32 MB, the largest that glibc serves
# from memory it keeps; above it every read maps fresh pages and faults them in: on 2 CPU
# cores a 16-peer aggregate of one 1.2B block (sparse codec, normalise none; fastest and
# median of 5) took 0.40 and 0.46 s in runs of 2^23, 0.21 and 0.22 s in runs of 2^22.
READ_COEFFICIENTS = 1 << 22

# ``read(peers, names, positions)``: those peers' kept positions (int64, checked; None when
# ``positions`` is false) and dequantised values (float32) of ``names`` (parameters with
# the same ``k``), ``[len(peers) * Σ n_chunks, k]`` each: peer after peer,
# and within a peer name after name (so one peer's rows of every name are one block,
# added to a run's coefficients by one operation: :func:`aggregate_sparse`).
# The norms need no positions (but of a padded tensor): reading values alone skips
# unpacking them and the checks, which the sum's read of the same rows makes.
ReadRows = Callable[[Sequence[int], Sequence[str], bool], tuple[torch.Tensor | None, torch.Tensor]]
Layouts = Mapping[str, tuple[ChunkLayout, int]]
# A read of a group of peers: its peers, then their positions (None unless asked for) and
# values, ``[len(group), Σ n_chunks, k]`` each, a run's names one after another per peer
GroupRows = tuple[list[int], torch.Tensor | None, torch.Tensor]


def read_runs(
    items: Sequence[T], coefficients: Callable[[T], int], limit: int | None = None
) -> list[list[T]]:
    """``items`` in order, cut into runs of at most ``limit`` (:data:`READ_COEFFICIENTS`)
    coefficients together (an item larger than that is a run alone): what one read may
    stack."""
    limit = READ_COEFFICIENTS if limit is None else limit
    out: list[list[T]] = []
    held = 0
    for item in items:
        size = coefficients(item)
        if not out or held + size > limit:
            out.append([])
            held = 0
        out[-1].append(item)
        held += size
    return out


def peer_groups(peers: Sequence[int], per_peer: int) -> list[list[int]]:
    """``peers`` in order, in runs of :func:`read_runs` (``per_peer`` coefficients each)."""
    return read_runs(peers, lambda _: per_peer)


def name_runs(layouts: Layouts, peers: int = 1) -> list[list[str]]:
    """The names of ``layouts`` whose rows one read may stack: the same ``k`` (rows of one
    width), those of one chunk size next to each other (so a run's parameters of one size
    are summed in one coefficient tensor: :func:`fold_runs`), in runs of at most
    :data:`READ_COEFFICIENTS` kept coefficients for ``peers`` payloads together
    (:func:`read_runs`). A run of several names thus holds every peer at once; a name too
    large for that is a run alone, read in groups of peers (:func:`peer_groups`)."""
    by_k: dict[int, list[str]] = {}
    for name, (_, k) in layouts.items():
        by_k.setdefault(k, []).append(name)

    def size(name: str) -> int:
        layout, k = layouts[name]
        return layout.n_chunks * k * peers

    def chunk_size(name: str) -> int:
        return layouts[name][0].chunk_elems

    # sorted is stable: within a chunk size, the names keep their order
    return [
        run for names in by_k.values() for run in read_runs(sorted(names, key=chunk_size), size)
    ]


def fold_runs(names: Sequence[str], layouts: Layouts, limit: int) -> list[list[str]]:
    """``names`` (one read's, :func:`name_runs`) cut where the chunk size changes and into
    runs whose coefficient tensors together hold at most ``limit`` entries (a larger name
    is a run alone): the names one coefficient tensor sums at once
    (:func:`aggregate_sparse`)."""
    out: list[list[str]] = []
    for _, same in itertools.groupby(names, key=lambda name: layouts[name][0].chunk_elems):
        out += read_runs(list(same), lambda name: _coefficients(layouts[name][0]), limit)
    return out


def _coefficients(layout: ChunkLayout) -> int:
    """Entries of a parameter's coefficient tensor, ``[n_chunks, chunk_elems]``."""
    return layout.n_chunks * layout.chunk_elems


def _group_rows(
    read: ReadRows, names: Sequence[str], peers: Sequence[int], layouts: Layouts, positions: bool
) -> Iterator[GroupRows]:
    """Each group of ``peers`` that fits one read of ``names`` (:func:`peer_groups`; one
    group when the run holds several names), with its rows from that one read."""
    rows = sum(layouts[name][0].n_chunks for name in names)
    k = layouts[names[0]][1]
    for group in peer_groups(peers, rows * k):
        idx, values = read(group, names, positions)
        shape = (len(group), rows, k)
        yield group, None if idx is None else idx.view(shape), values.view(shape)


def _offsets(names: Sequence[str], layouts: Layouts) -> dict[str, tuple[int, int]]:
    """Each name's first and end row within one peer's rows of ``names``."""
    out, at = {}, 0
    for name in names:
        n = layouts[name][0].n_chunks
        out[name] = (at, at + n)
        at += n
    return out


def aggregate_sparse(
    read: ReadRows,
    n_peers: int,
    layouts: Layouts,
    dct: bool,
    normalise: Normalise,
    clip_norm: float | None,
    device: torch.device | str,
) -> Delta:
    """:func:`aggregate` of sparse updates, in the coefficient domain. ``read`` gives the
    kept coefficients of a run of peers and parameters (:data:`ReadRows`);
    ``layouts[name]`` is ``name``'s chunking and the coefficients kept per chunk,
    DCT-transformed if ``dct``.

    Norms: the transform is orthonormal, so a peer's norm is that of its values (Parseval;
    for raw chunks they are the entries themselves), summed in float64 on ``device`` and
    read once; a payload's checks come with the sum's read of its positions. A padded
    tensor's chunks also hold coefficients whose energy lands in the cropped padding, so
    that tensor alone is decoded to measure it: the norm is always the decoded update's,
    as :func:`aggregate` takes it (equal within float rounding).

    Sum: each peer's values times ``scale_i / n_peers`` are added into a zero coefficient
    tensor in list order (:func:`gauntlet.compress.sparse.scatter_sum`: one add per position
    per peer, no atomics), then one inverse transform per parameter. Parameters and peers
    are read in runs (:func:`name_runs`): every peer's rows of several parameters by one
    set of operations. The parameters of a run are summed together (:func:`fold_runs`: one
    coefficient tensor no larger than the largest parameter's), one ``scatter_add_`` per
    peer for all of them: every position still gets its peers' values added in list order,
    so the bits do not depend on the runs. Memory: the output, one coefficient tensor of
    the largest parameter's size and one run's rows.
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
    largest = max(_coefficients(layout) for layout, _ in layouts.values())
    out: Delta = {}
    with workspace(device) as ws:
        for names in name_runs(layouts, max(1, len(active))):
            groups: Iterable[tuple[torch.Tensor, torch.Tensor]] = _weighted_rows(
                read, names, active, active_weights, layouts
            )
            if len(names) > 1:  # one read of every peer (name_runs), held while each is summed
                groups = list(groups)
            rows = _offsets(names, layouts)
            for fold in fold_runs(names, layouts, largest):  # a name alone: streamed by groups
                first, end = rows[fold[0]][0], rows[fold[-1]][1]
                parts = (  # each peer's rows of the fold: views, two slices a group
                    part
                    for idx, values in groups
                    for part in zip(
                        idx[:, first:end].unbind(), values[:, first:end].unbind(), strict=True
                    )
                )
                coeffs = scatter_sum((end - first, layouts[fold[0]][0].chunk_elems), parts, ws)
                for name in fold:
                    at = slice(rows[name][0] - first, rows[name][1] - first)
                    out[name] = layouts[name][0].from_chunks(coeffs[at], dct, ws)
    return {name: out[name] for name in layouts}


def sparse_norms(
    read: ReadRows,
    n_peers: int,
    layouts: Layouts,
    dct: bool,
    device: torch.device | str,
) -> list[float]:
    """Each peer's whole-update L2 norm (see :func:`aggregate_sparse`), from one read of
    every run of parameters and peers and one synchronisation at the end. Unpadded
    parameters are read by values alone, in runs; each padded one alone, with positions.
    Each parameter's squares are added in ``layouts`` order, whatever the runs."""
    unpadded = {n: lk for n, lk in layouts.items() if not lk[0].padded}
    largest = max(_coefficients(layout) for layout, _ in layouts.values())
    runs = name_runs(unpadded, n_peers) + [[n] for n, (lay, _) in layouts.items() if lay.padded]
    squares: dict[str, torch.Tensor] = {}
    for names in runs:
        padded = layouts[names[0]][0].padded  # a padded name is a run alone
        rows = _offsets(names, layouts)
        for group, idx, values in _group_rows(read, names, range(n_peers), layouts, padded):
            for name, (first, end) in rows.items():
                layout = layouts[name][0]
                kept = values[:, first:end]
                if idx is not None:  # padded: decoded, for the energy the crop drops
                    sq = padded_norms(layout, idx[:, first:end], kept, dct, largest)
                else:  # each peer's rows of this name made contiguous: the same sum as alone
                    sq = torch.linalg.vector_norm(
                        kept.reshape(len(group), -1), dim=1, dtype=torch.float64
                    )
                part = squares.setdefault(
                    name, torch.zeros(n_peers, dtype=torch.float64, device=device)
                )
                part[group[0] : group[-1] + 1] = sq.square()
    total = torch.zeros(n_peers, dtype=torch.float64, device=device)
    for name in layouts:
        total += squares[name]
    return [math.sqrt(x) for x in total.tolist()]


def padded_norms(
    layout: ChunkLayout, idx: torch.Tensor, values: torch.Tensor, dct: bool, limit: int
) -> torch.Tensor:
    """The L2 norms (float64 ``[peers]``) of several peers' decoded updates of one padded
    parameter, from their rows ``[peers, n_chunks, k]``: decoded together as one taller
    tensor (each peer's chunks below the previous peer's, :func:`to_dense` of a layout
    ``peers`` times as tall, at most ``limit`` entries at once), so the decode's operations
    do not grow with the peers; each peer's cropped part is then measured alone, as its own
    decode would be (the same entries, the same sum)."""
    peers, _, k = values.shape
    size = _coefficients(layout)  # the padded tensor's entries
    out: list[torch.Tensor] = []
    step = max(1, limit // size)
    for first in range(0, peers, step):
        at, kept = idx[first : first + step], values[first : first + step]
        count = len(kept)
        if layout.two_d:
            tall = ChunkLayout((count * layout.padded_rows, layout.padded_cols), layout.chunk)
        else:
            tall = ChunkLayout((count * layout.padded_cols,), layout.chunk)
        dense = to_dense(tall, at.reshape(-1, k), kept.reshape(-1, k), dct)
        grids = dense.view(count, layout.padded_rows, layout.padded_cols)
        cropped = grids[:, : layout.rows, : layout.cols].contiguous()
        out.extend(torch.linalg.vector_norm(c, dtype=torch.float64) for c in cropped)
    return torch.stack(out)


def _weighted_rows(
    read: ReadRows,
    names: Sequence[str],
    peers: list[int],
    weights: torch.Tensor,
    layouts: Layouts,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per group of ``peers`` read together (:func:`_group_rows`): its positions and its
    values times each peer's weight, ``[len(group), Σ n_chunks, k]`` each; ``weights`` float32, one per peer of ``peers``, on
    the values' device."""
    start = 0
    for group, idx, values in _group_rows(read, names, peers, layouts, True):
        assert idx is not None  # asked for
        scale = weights[start : start + len(group), None, None]
        start += len(group)
        yield idx, values * scale
