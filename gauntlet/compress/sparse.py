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

The choice depends only on the codec parameters, so every node takes the same one.
None of them uses atomics: every kernel here is deterministic on any device.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.dct import dct_matrix
from gauntlet.compress.workspace import Workspace, workspace


def sparse_route(layout: ChunkLayout, k: int, dct: bool) -> bool:
    """Whether a 2-D DCT tensor is inverted coefficient by coefficient (see module doc):
    ``2·s²·k`` flops per block against ``4·s³``, with margin for the gathers."""
    return dct and layout.two_d and 2 * k <= layout.chunk


def block_inverse(
    layout: ChunkLayout, idx: torch.Tensor, values: torch.Tensor, ws: Workspace
) -> torch.Tensor:
    """``Dᵀ C D`` of every block from its sparse coefficients: ``[n_chunks, s, s]`` in
    ``ws`` slot ``blocks`` (block order, rows of the block first). ``idx`` int64."""
    n, k = idx.shape
    s = layout.chunk
    d = dct_matrix(s, values.device, values.dtype)
    rows = ws.get("rows_a", (n, k, s))
    torch.index_select(d, 0, (idx // s).view(-1), out=rows.view(n * k, s))
    rows.mul_(values.view(n, k, 1))  # A = c ⊙ D[u]
    cols = ws.get("rows_b", (n, k, s))
    torch.index_select(d, 0, (idx % s).view(-1), out=cols.view(n * k, s))  # B = D[v]
    return torch.bmm(rows.transpose(1, 2), cols, out=ws.get("blocks", (n, s, s)))


def blocks_in_matrix_order(layout: ChunkLayout, blocks: torch.Tensor) -> torch.Tensor:
    """A view of ``[n_chunks, s, s]`` blocks indexed like the padded matrix
    (``[grid rows, s, grid cols, s]``); no copy."""
    s = layout.chunk
    gr, gc = layout.grid
    return blocks.view(gr, gc, s, s).permute(0, 2, 1, 3)


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
            blocks = block_inverse(layout, idx, values, w)
            s = layout.chunk
            gr, gc = layout.grid
            out.view(gr, s, gc, s).copy_(blocks_in_matrix_order(layout, blocks))
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
        s = layout.chunk
        gr, gc = layout.grid
        blocks = block_inverse(layout, idx, values, ws)
        out.view(gr, s, gc, s).sub_(blocks_in_matrix_order(layout, blocks))
        return out
    return out.sub_(to_dense(layout, idx, values, dct, ws))


def scatter_sum(
    layout: ChunkLayout,
    parts: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ws: Workspace,
) -> torch.Tensor:
    """Σ of sparse chunk coefficients ``(idx, values)`` in list order: ``[n_chunks,
    chunk_elems]`` in ``ws`` slot ``coeffs``.

    Each part's indices are unique within a row, so one ``scatter_add_`` adds exactly one
    value to any position: position ``p`` ends up ``((0 + v_0[p]) + v_1[p]) + …`` in list
    order, on any device and thread count (no atomics race, no reduction tree)."""
    chunks = ws.get("coeffs", (layout.n_chunks, layout.chunk_elems)).zero_()
    for idx, values in parts:
        chunks.scatter_add_(1, idx, values)
    return chunks
