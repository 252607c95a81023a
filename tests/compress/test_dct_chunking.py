"""The DCT is an orthonormal rotation and chunking is exactly invertible."""

from __future__ import annotations

import pytest
import torch

from gauntlet.compress import chunking
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.dct import dct_1d, dct_2d, dct_matrix, idct_1d, idct_2d


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_dct_matrix_is_orthonormal(n: int) -> None:
    d = dct_matrix(n, "cpu", torch.float64)
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64), atol=1e-12, rtol=0)


def test_dct_matrix_matches_the_dct_ii_definition() -> None:
    # Row 0 is the constant vector 1/sqrt(n); row 1 is a half cosine period.
    n = 8
    d = dct_matrix(n, "cpu", torch.float64)
    torch.testing.assert_close(d[0], torch.full((n,), n**-0.5, dtype=torch.float64))
    i = torch.arange(n, dtype=torch.float64)
    torch.testing.assert_close(d[1], (2 / n) ** 0.5 * torch.cos(torch.pi * (2 * i + 1) / (2 * n)))


def test_inverse_dct_undoes_forward_and_preserves_norm() -> None:
    x = torch.randn(5, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(idct_2d(dct_2d(x)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(idct_1d(dct_1d(x)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(dct_2d(x).norm(), x.norm(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("shape", [(70, 33), (64, 64), (3, 5, 9), (100,), (1,), ()])
@pytest.mark.parametrize("dct", [False, True])
def test_chunks_round_trip_with_padding(shape: tuple[int, ...], dct: bool) -> None:
    layout = ChunkLayout(shape, 16)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    chunks = layout.to_chunks(x, dct)
    assert chunks.shape == (layout.n_chunks, layout.chunk_elems)
    torch.testing.assert_close(layout.from_chunks(chunks, dct), x, atol=1e-5, rtol=0)


def test_matrix_chunks_are_square_blocks() -> None:
    # A 2 x 2 grid of 2 x 2 blocks, enumerated row-major over the grid.
    x = torch.arange(16.0).reshape(4, 4)
    chunks = ChunkLayout((4, 4), 2).to_chunks(x, dct=False)
    assert chunks.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


@pytest.mark.parametrize("shape", [(70, 33), (128, 192), (3, 5, 9)])
def test_one_product_for_all_slabs_gives_the_slab_loops_result(
    shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU the right factor of the block DCT and its inverse is one product over
    every grid row (a launch per slab would cost more than its work); on a CPU one slab
    at a time, in place. Forced here on the CPU, the GPU's arrangement transforms every
    block alike (the same dot products: equal to float rounding) and inverts exactly."""
    layout = ChunkLayout(shape, 16)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    by_slab = layout.to_chunks(x, dct=True)
    back_by_slab = layout.from_chunks(by_slab, dct=True)
    monkeypatch.setattr(chunking, "slab_by_slab", lambda device: False)
    at_once = layout.to_chunks(x, dct=True)
    torch.testing.assert_close(at_once, by_slab, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        layout.from_chunks(by_slab, dct=True), back_by_slab, atol=1e-6, rtol=0
    )
    torch.testing.assert_close(layout.from_chunks(at_once, dct=True), x, atol=1e-5, rtol=0)
