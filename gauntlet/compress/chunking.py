"""How a parameter tensor is cut into fixed-size chunks, and put back together.

* Tensors of 2 or more dims are viewed as a matrix ``[prod(shape[:-1]), shape[-1]]``
  and tiled into ``chunk x chunk`` blocks (2-D chunks, ``chunk**2`` elements): a
  weight matrix's rows and columns are both meaningful axes, so a square block
  keeps 2-D locality for the DCT.
* Vectors (and scalars) are cut into 1-D chunks of ``chunk`` elements.

Edges that are not a multiple of ``chunk`` are zero-padded (bottom/right, or the
tail of a vector) and the padding is cropped on the way back. Padding is sent
like real data, so it costs bytes: a ``[176, 64]`` matrix with ``chunk=64`` is
padded to ``[192, 64]``, i.e. 3 chunks for 2.75 chunks' worth of values.

The block DCT ``D X Dᵀ`` of every block is two batched matrix products, arranged so
that neither needs the matrix cut into a contiguous block copy first (the copy, and
the fresh memory it needs, cost as much as a product): ``D`` times each row-slab of
``chunk`` rows is one product over the whole slab, and the right factor reads each
slab's blocks in place (a strided batch) and writes them in chunk order. The inverse
mirrors it. Both keep the old evaluation order (left factor first, the same dot
products), so they give the same bits as ``D @ blocks @ D.T`` did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gauntlet.compress.dct import dct_matrix, idct_1d
from gauntlet.compress.workspace import Workspace, workspace


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


@dataclass(frozen=True)
class ChunkLayout:
    """The chunking of one tensor of ``shape`` with side length ``chunk``."""

    shape: tuple[int, ...]
    chunk: int

    @property
    def two_d(self) -> bool:
        return len(self.shape) >= 2

    @property
    def rows(self) -> int:
        return math.prod(self.shape[:-1]) if self.two_d else 1

    @property
    def cols(self) -> int:
        return self.shape[-1] if self.two_d else math.prod(self.shape)

    @property
    def padded_rows(self) -> int:
        return _ceil_to(self.rows, self.chunk) if self.two_d else 1

    @property
    def padded_cols(self) -> int:
        return _ceil_to(self.cols, self.chunk)

    @property
    def padded(self) -> bool:
        """Whether any chunk holds padding (cropped on decode)."""
        return self.padded_rows != self.rows or self.padded_cols != self.cols

    @property
    def grid(self) -> tuple[int, int]:
        """Blocks down and across (2-D); ``(1, n_chunks)`` for vectors."""
        return self.padded_rows // self.chunk if self.two_d else 1, self.padded_cols // self.chunk

    @property
    def chunk_elems(self) -> int:
        """Elements per chunk: ``chunk**2`` (2-D) or ``chunk`` (1-D); the index bound."""
        return self.chunk * self.chunk if self.two_d else self.chunk

    @property
    def n_chunks(self) -> int:
        gr, gc = self.grid
        return gr * gc

    def _matrix(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as the zero-padded ``[padded_rows, padded_cols]`` matrix (a view if unpadded)."""
        if not self.two_d:
            flat = x.reshape(-1)
            return F.pad(flat, (0, self.padded_cols - self.cols)).view(1, -1)
        m = x.reshape(self.rows, self.cols)
        if self.padded:
            m = F.pad(m, (0, self.padded_cols - self.cols, 0, self.padded_rows - self.rows))
        return m.contiguous()

    def to_chunks(
        self,
        x: torch.Tensor,
        dct: bool,
        out: torch.Tensor | None = None,
        ws: Workspace | None = None,
    ) -> torch.Tensor:
        """``x`` of ``shape`` -> ``[n_chunks, chunk_elems]``, DCT-transformed if ``dct``;
        written into ``out`` when given (contiguous, that shape). Uses ``ws`` slot
        ``slabs``."""
        s, n, e = self.chunk, self.n_chunks, self.chunk_elems
        if out is None:
            out = torch.empty(n, e, dtype=x.dtype, device=x.device)
        m = self._matrix(x)
        if not self.two_d:
            if not dct:
                return out.copy_(m.view(n, s))
            return torch.matmul(m.view(n, s), dct_matrix(s, x.device, x.dtype).T, out=out)
        gr, gc = self.grid
        blocks = out.view(gr, gc, s, s)
        if not dct:
            # block (i, j) = rows i*s.., columns j*s.., enumerated row-major over the grid
            return blocks.copy_(m.view(gr, s, gc, s).permute(0, 2, 1, 3)).view(n, e)
        d = dct_matrix(s, x.device, x.dtype)
        with workspace(x.device, ws) as w:
            # D times each slab of s rows at once: [gr, s, pc]; then per slab the right
            # factor Dᵀ on its gc blocks, read in place ([gc, s, s] with row stride pc).
            left = torch.matmul(d, m.view(gr, s, gc * s), out=w.get("slabs", (gr, s, gc * s)))
            slabs = left.view(gr, s, gc, s)
            if slab_by_slab(x.device):
                for i in range(gr):
                    torch.matmul(slabs[i].permute(1, 0, 2), d.T, out=blocks[i])
            else:
                torch.matmul(slabs.permute(0, 2, 1, 3), d.T, out=blocks)
        return out

    def from_chunks(self, c: torch.Tensor, dct: bool, ws: Workspace | None = None) -> torch.Tensor:
        """Inverse of :meth:`to_chunks`: ``[n_chunks, chunk_elems]`` -> ``shape`` (cropped),
        a fresh tensor. Uses ``ws`` slot ``left``."""
        s = self.chunk
        if not self.two_d:
            v = idct_1d(c) if dct else c
            return v.reshape(-1)[: self.cols].reshape(self.shape).clone()
        gr, gc = self.grid
        out = torch.empty(gr, s, gc, s, dtype=c.dtype, device=c.device)
        if not dct:
            out.copy_(c.view(gr, gc, s, s).permute(0, 2, 1, 3))
        else:
            with workspace(c.device, ws) as w:
                left = inverse_left(c, s, w)
                blocks = left.view(gr, gc, s, s)
                d = dct_matrix(s, c.device, c.dtype)
                if slab_by_slab(c.device):
                    for i in range(gr):  # right factor D, written straight into matrix order
                        torch.matmul(blocks[i].permute(1, 0, 2), d, out=out[i])
                else:
                    torch.matmul(blocks.permute(0, 2, 1, 3), d, out=out)
        return self.crop(out.view(self.padded_rows, self.padded_cols))

    def crop(self, m: torch.Tensor) -> torch.Tensor:
        """The padded matrix ``m`` (``[padded_rows, padded_cols]``) cropped to ``shape``."""
        if not self.padded:
            return m.view(self.shape)
        return m[: self.rows, : self.cols].contiguous().view(self.shape)

    def matrix_positions(self, idx: torch.Tensor) -> torch.Tensor:
        """Chunk-relative positions ``idx`` (``[n_chunks, k]``, int64) as flat positions in
        the padded matrix (row-major ``[padded_rows, padded_cols]``); int64."""
        s = self.chunk
        rows = torch.arange(self.n_chunks, device=idx.device)
        if not self.two_d:
            return rows[:, None] * s + idx
        gr, gc = self.grid
        pc = self.padded_cols
        # chunk c = (i, j) on the grid starts at row i*s, column j*s; position p = (a, b)
        base = (rows // gc) * (s * pc) + (rows % gc) * s
        return base[:, None] + (idx // s) * pc + idx % s


def slab_by_slab(device: torch.device) -> bool:
    """Whether the right factor of the block DCT (and its inverse) runs one grid row of
    blocks at a time, reading and writing them in place: on a CPU, where a product over
    the whole strided matrix would first copy it (fresh memory, as costly as a product).
    On a GPU each product is a launch of some microseconds, more than a slab's work (88 a
    1.2B FFN matrix), so all slabs go in one product, copies included."""
    return device.type == "cpu"


def inverse_left(c: torch.Tensor, s: int, ws: Workspace) -> torch.Tensor:
    """``Dᵀ C`` for every ``s x s`` block of ``c`` (``[n, s*s]``), in ``ws`` slot ``left``:
    the first factor of the inverse block DCT, as one batched product."""
    n = c.shape[0]
    d = dct_matrix(s, c.device, c.dtype)
    return torch.matmul(d.T, c.view(n, s, s), out=ws.get("left", (n, s, s)))
