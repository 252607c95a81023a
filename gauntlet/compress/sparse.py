"""Sparse chunk coefficients (``idx``, ``values``) back to dense tensors, without the
dense detour where it can be avoided.

A top-k payload holds, per chunk, ``k`` positions and values of the chunk's
(DCT) coefficients. Three ways back to the parameter's shape, all pure functions:

* raw chunks (no DCT): the values are the parameter's own entries, so they are
  scattered straight to their places in the matrix (no chunk-ordered copy at all);
* DCT, few coefficients (``k <= chunk / 2``): the inverse of one block is
  ``Dᵀ C D = Σ_j c_j d_{u_j} d_{v_j}ᵀ`` over its ``k`` coefficients ``(u_j, v_j)``,
  i.e. ``Aᵀ B`` with ``A = c ⊙ D[u]`` and ``B = D[v]`` (``[k, chunk]`` each): one
  batched product of ``2·chunk²·k`` flops per block instead of the dense inverse's
  ``4·chunk³``, and no ``chunk²``-sized zero-filled coefficient tensor;
* otherwise: scatter into zero chunks and the dense inverse
  (:meth:`ChunkLayout.from_chunks`).

A few entries of the decoded tensor need none of that (:func:`entries_at`): each is a sum
over its chunk's ``k`` kept values of one basis value each, which is how a validator
sketches an update without decoding it.

The choice depends only on the codec parameters, so every node takes the same one.
None of them uses atomics: every kernel here is deterministic on any device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.dct import dct_matrix
from gauntlet.compress.workspace import Workspace, workspace


def sparse_route(layout: ChunkLayout, k: int, dct: bool) -> bool:
    """Whether a 2-D DCT tensor is inverted coefficient by coefficient (see module doc):
    ``2·s²·k`` flops per block against ``4·s³``, with margin for the gathers."""
    return dct and layout.two_d and 2 * k <= layout.chunk


# Blocks per tile of the coefficient-by-coefficient inverse on a CPU. At the default codec
# (chunk 64, k 32) a tile's coefficient rows (2 × 2 MiB) and blocks (4 MiB) stay in cache
# between the product and the copy or subtraction, where one model-sized pass of blocks
# went through memory twice and kept three scratch tensors of 0.5, 0.5 and 1 × the
# largest parameter. On a real 1.2B-shaped Δ, 2 cores, tiles of 128 to 512 blocks decoded
# 15-35% faster than one tile, 1024 and more no faster (docs/codec.md has the runs).
TILE_BLOCKS = 256


def _tiles(layout: ChunkLayout, device: torch.device) -> Iterator[tuple[int, int]]:
    """Ranges of grid rows, about ``TILE_BLOCKS`` blocks each on a CPU (at least one grid
    row); all of them at once on a GPU, where one large batched product is faster."""
    rows, per_row = layout.grid
    step = rows if device.type != "cpu" else max(1, TILE_BLOCKS // per_row)
    for first in range(0, rows, step):
        yield first, min(rows, first + step)


def block_inverse_tiles(
    layout: ChunkLayout, idx: torch.Tensor, values: torch.Tensor, ws: Workspace
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``Dᵀ C D`` of every block from its sparse coefficients, a tile of grid rows at a
    time: yields ``(first, end, blocks)`` with the blocks of grid rows ``first:end`` as a
    ``[end − first, s, grid cols, s]`` view in matrix order (``ws`` slot ``blocks``, valid
    until the next tile). ``idx`` int64. Each block is the same product as in one batch,
    so the result does not depend on the tiling."""
    k = idx.shape[1]
    s = layout.chunk
    per_row = layout.grid[1]
    d = dct_matrix(s, values.device, values.dtype)
    row_of, col_of = idx // s, idx % s
    for first, end in _tiles(layout, values.device):
        lo, hi = first * per_row, end * per_row
        m = hi - lo
        rows = ws.get("rows_a", (m, k, s))
        torch.index_select(d, 0, row_of[lo:hi].reshape(-1), out=rows.view(m * k, s))
        rows.mul_(values[lo:hi].view(m, k, 1))  # A = c ⊙ D[u]
        cols = ws.get("rows_b", (m, k, s))
        torch.index_select(d, 0, col_of[lo:hi].reshape(-1), out=cols.view(m * k, s))  # B = D[v]
        blocks = torch.bmm(rows.transpose(1, 2), cols, out=ws.get("blocks", (m, s, s)))
        yield first, end, blocks.view(end - first, per_row, s, s).permute(0, 2, 1, 3)


def _in_grid_rows(layout: ChunkLayout, m: torch.Tensor) -> torch.Tensor:
    """The padded matrix ``m`` as ``[grid rows, s, grid cols, s]`` (a view)."""
    s = layout.chunk
    rows, per_row = layout.grid
    return m.view(rows, s, per_row, s)


def to_dense(
    layout: ChunkLayout,
    idx: torch.Tensor,
    values: torch.Tensor,
    dct: bool,
    ws: Workspace | None = None,
) -> torch.Tensor:
    """The tensor of ``layout.shape`` whose chunks hold ``values`` at ``idx`` (int64,
    ``[n_chunks, k]``, unique per row) and zero elsewhere, inverse-transformed if ``dct``.
    A fresh float32 tensor on ``values``' device."""
    device = values.device
    with workspace(device, ws) as w:
        if not dct:
            m = torch.zeros(layout.padded_rows * layout.padded_cols, device=device)
            m.index_put_((layout.matrix_positions(idx).view(-1),), values.reshape(-1))
            return layout.crop(m.view(layout.padded_rows, layout.padded_cols))
        if sparse_route(layout, idx.shape[1], dct):
            out = torch.empty(layout.padded_rows, layout.padded_cols, device=device)
            grid = _in_grid_rows(layout, out)
            for first, end, blocks in block_inverse_tiles(layout, idx, values, w):
                grid[first:end].copy_(blocks)
            return layout.crop(out)
        chunks = w.get("coeffs", (layout.n_chunks, layout.chunk_elems)).zero_()
        chunks.scatter_(1, idx, values)
        return layout.from_chunks(chunks, dct, w)


def subtract_dense(
    layout: ChunkLayout,
    x: torch.Tensor,
    idx: torch.Tensor,
    values: torch.Tensor,
    dct: bool,
    in_place: bool,
    ws: Workspace,
) -> torch.Tensor:
    """``x − to_dense(idx, values)`` (the encoder's residual), in ``x`` itself when
    ``in_place`` (``x`` contiguous float32 of ``layout.shape``), else fresh."""
    out = x if in_place else x.clone()
    if not dct:  # only the kept entries change
        flat = out.view(-1)
        pos = layout.matrix_positions(idx).view(-1)
        if layout.padded:  # positions in the padded matrix -> in the tensor, padding dropped
            row, col = pos // layout.padded_cols, pos % layout.padded_cols
            keep = (row < layout.rows) & (col < layout.cols)
            pos, vals = row[keep] * layout.cols + col[keep], values.reshape(-1)[keep]
        else:
            vals = values.reshape(-1)
        flat.index_put_((pos,), flat[pos] - vals)
        return out
    if sparse_route(layout, idx.shape[1], dct) and not layout.padded:
        grid = _in_grid_rows(layout, out)
        for first, end, blocks in block_inverse_tiles(layout, idx, values, ws):
            grid[first:end].sub_(blocks)
        return out
    return out.sub_(to_dense(layout, idx, values, dct, ws))


def scatter_sum(
    shape: tuple[int, int],
    parts: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ws: Workspace,
) -> torch.Tensor:
    """Σ of sparse chunk coefficients ``(idx, values)`` (``[rows, k]`` each) in list order:
    ``shape`` (``[rows, chunk_elems]``: one parameter's chunks, or several parameters'
    one after another) in ``ws`` slot ``coeffs``.

    Each part's indices are unique within a row, so one ``scatter_add_`` adds exactly one
    value to any position: position ``p`` ends up ``((0 + v_0[p]) + v_1[p]) + …`` in list
    order, on any device and thread count (no atomics race, no reduction tree)."""
    chunks = ws.get("coeffs", shape).zero_()
    for idx, values in parts:
        chunks.scatter_add_(1, idx, values)
    return chunks


# Entries evaluated per piece by entries_at: its temporaries are [piece, k] (8 MiB at k 32).
ENTRIES_PIECE = 1 << 16
# What one kept term of entries_at costs, in decoded entries: reading 2^20 entries of a real
# 1.2B-shaped Δ (95.4M parameters, k 32, 2 cores) took 0.32-0.42 s this way and 0.17-0.20 s
# by decoding each parameter, so entries_at pays where positions · k · 5 < the parameter's
# size (a sampled sketch of a model above about 170M parameters).
ENTRY_TERM_COST = 5


def entries_at(
    layout: ChunkLayout,
    idx: torch.Tensor,
    values: torch.Tensor,
    dct: bool,
    positions: torch.Tensor,
) -> torch.Tensor:
    """``to_dense(layout, idx, values, dct).reshape(-1)[positions]`` without forming the
    tensor: float32 ``[len(positions)]`` on ``values``' device. ``idx`` and ``values`` may
    also hold several payloads' rows, ``[payloads, n_chunks, k]``: then ``[payloads,
    len(positions)]``, each row what that payload alone gives (the same sums), read by
    one set of operations. ``positions`` int64 flat indices into ``layout.shape``. Entry
    ``(a, b)`` of a 2-D DCT block is ``Σ_j c_j D[u_j, a] D[v_j, b]`` over the block's
    kept coefficients ``(u_j, v_j)``, of a 1-D chunk ``Σ_j c_j D[i_j, a]``; without the
    transform it is the kept value at that position, or 0. Equal to the decoded entries
    within float rounding (the sums run in another order)."""
    batched = values.dim() == 3
    if not batched:
        return entries_at(layout, idx[None], values[None], dct, positions)[0]
    s = layout.chunk
    positions = positions.to(values.device)
    if layout.two_d:
        row, col = positions // layout.cols, positions % layout.cols
        chunk = (row // s) * layout.grid[1] + col // s
        a, b = row % s, col % s
    else:
        chunk, a = positions // s, positions % s
        b = a  # unused: 1-D chunks have one coordinate
    d = dct_matrix(s, values.device, values.dtype) if dct else None
    payloads = values.shape[0]
    out = torch.empty(payloads, len(positions), dtype=values.dtype, device=values.device)
    piece_size = max(1, ENTRIES_PIECE // payloads)  # temporaries [payloads, piece, k]
    for lo in range(0, len(positions), piece_size):
        part = slice(lo, lo + piece_size)
        kept_idx, kept = idx[:, chunk[part]], values[:, chunk[part]]  # [payloads, piece, k]
        ai, bi = a[part, None], b[part, None]
        if d is None:
            inner = ai * s + bi if layout.two_d else ai
            basis = (kept_idx == inner).to(kept.dtype)
        elif layout.two_d:
            basis = d[kept_idx // s, ai] * d[kept_idx % s, bi]
        else:
            basis = d[kept_idx, ai]
        out[:, part] = (kept * basis).sum(dim=2)
    return out
