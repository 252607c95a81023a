"""The compressed-domain paths equal the dense ones within float rounding: the aggregate
(every normalisation mode), the sparse inverse, the encoder's residual and the norms."""

from __future__ import annotations

import threading

import pytest
import torch

from gauntlet.compress import DenseCodec, SparseCodec, TopKCodec, build_codec
from gauntlet.compress import aggregate as aggregate_module
from gauntlet.compress import chunked as chunked_module
from gauntlet.compress import sparse as sparse_module
from gauntlet.compress.aggregate import aggregate, l2_norm_sq
from gauntlet.compress.chunking import ChunkLayout
from gauntlet.compress.sparse import entries_at, sparse_route, subtract_dense, to_dense
from gauntlet.compress.workspace import workspace
from protocol.errors import MalformedPayload
from protocol.schemas import SparseCodecParams, TopKCodecParams

# unpadded and padded matrices, a 3-D tensor, vectors (one padded), a scalar
SHAPES = {"w": (64, 96), "p": (70, 33), "t": (3, 8, 20), "v": (96,), "u": (50,), "s": ()}
CODECS = [
    TopKCodecParams(chunk=16, topk=4, dct=True, quant="u8"),  # 2-D: sparse inverse route
    TopKCodecParams(chunk=16, topk=40, dct=True, quant="f16"),  # 2-D: dense inverse route
    TopKCodecParams(chunk=8, topk=3, dct=True, quant="f32"),
    TopKCodecParams(chunk=16, topk=6, dct=False, quant="u8"),  # raw chunks
    TopKCodecParams(chunk=8, topk=64, dct=True, quant="f32"),  # keeps everything
    SparseCodecParams(chunk=16, topk=3, bits=2),  # the transform-free codec
    SparseCodecParams(chunk=64, topk=64, bits=8),
]
MODES = [("none", None), ("per_peer", None), ("clip", 3.0), ("clip", 1e9)]


def _peers(n: int, seed: int, shapes: dict = SHAPES) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    # different norms per peer, so normalisation and clipping have work to do
    return [{k: (i + 1) * torch.randn(s, generator=g) for k, s in shapes.items()} for i in range(n)]


def _dense_reference(codec, payloads, shapes, normalise, clip_norm) -> dict[str, torch.Tensor]:
    """The old path: decode every peer densely, then scale and mean."""
    decoded = [codec.decode(p, shapes) for p in payloads]
    return aggregate(lambda i, n: decoded[i][n], len(decoded), list(shapes), normalise, clip_norm)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape and a[name].dtype == torch.float32, name
        scale = float(b[name].abs().max()) or 1.0
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=2e-6 * scale, msg=name)


@pytest.mark.parametrize("params", [CODECS[0], CODECS[5]], ids=["topk", "sparse"])
@pytest.mark.parametrize("budget", [1, 3 * 40, 5 * 40])
def test_reading_peers_in_runs_of_any_size_gives_the_same_bits(
    params: TopKCodecParams | SparseCodecParams, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Peers (and one payload's parameters) are read several at a time, as many as fit in
    READ_COEFFICIENTS: one per run, runs that end mid-list, all in one. The sum is the same
    left fold in peer order, and the norms the same, whatever the cut (a zero update in
    the middle gets no weight under per_peer)."""
    codec = build_codec(params)
    peers = _peers(7, seed=3)
    peers[3] = {k: torch.zeros_like(v) for k, v in peers[3].items()}
    payloads = [codec.encode(p)[0] for p in peers]
    whole = {
        mc: codec.decode_batch(payloads, SHAPES, normalise=mc[0], clip_norm=mc[1]) for mc in MODES
    }  # type: ignore[arg-type]
    one = codec.decode(payloads[1], SHAPES)  # a payload's parameters are read in runs too
    monkeypatch.setattr(aggregate_module, "READ_COEFFICIENTS", budget)
    cut_one = codec.decode(payloads[1], SHAPES)
    assert list(cut_one) == list(SHAPES) and all(torch.equal(cut_one[n], one[n]) for n in SHAPES)
    assert len(aggregate_module.peer_groups(range(7), 40)) == -(-7 // max(1, budget // 40))
    for mode, clip in MODES:
        cut = codec.decode_batch(payloads, SHAPES, normalise=mode, clip_norm=clip)  # type: ignore[arg-type]
        assert all(torch.equal(cut[n], whole[mode, clip][n]) for n in SHAPES), (mode, budget)


def test_the_aggregate_reads_a_run_of_parameters_once_for_every_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a GPU each operation is a launch, so the reads must not grow with the parameters:
    every peer's rows of every parameter of one ``k`` come in one read for the sum, and in
    one values-only read for the norms, but for padded parameters, decoded to be measured
    (each alone, with positions). Cut to one coefficient, the same aggregate reads each
    parameter's peers one at a time, with the same bits (the test above)."""
    codec = build_codec(CODECS[5])  # the sparse codec: one k for every parameter
    payloads = [codec.encode(p)[0] for p in _peers(5, seed=6)]
    reads: list[tuple[int, list[str], bool]] = []
    read = codec._read

    def spy(arrays_of, device, *, checks, positions):  # type: ignore[no-untyped-def]
        names = list(dict.fromkeys(name for _, name in arrays_of))
        reads.append((len(arrays_of) // len(names), names, positions))
        return read(arrays_of, device, checks=checks, positions=positions)

    monkeypatch.setattr(codec, "_read", spy)
    codec.decode_batch(payloads, SHAPES, normalise="per_peer")
    padded = ["p", "u", "s"]  # 2310, 50 and 1 entries in chunks of 16
    assert reads == [
        (5, ["w", "t", "v"], False),  # the norms of the unpadded parameters, values alone
        *[(5, [name], True) for name in padded],  # each padded one, decoded to be measured
        (5, list(SHAPES), True),  # the sum: every parameter, every peer, checked
    ]


@pytest.mark.parametrize("params", [CODECS[0], CODECS[5]], ids=["topk", "sparse"])
def test_a_runs_parameters_are_summed_by_one_add_per_peer(
    params: TopKCodecParams | SparseCodecParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sum adds one peer's rows of several parameters by one ``scatter_add_`` into one
    coefficient tensor (launches do not grow with the parameters), never larger than the
    largest parameter's; parameters of another chunk size are summed apart. The bits are
    those of each parameter summed alone (the runs cut to one coefficient, the test
    above)."""
    codec = build_codec(params)
    payloads = [codec.encode(p)[0] for p in _peers(5, seed=8)]
    folds: list[tuple[tuple[int, int], int]] = []
    scatter_sum = aggregate_module.scatter_sum

    def spy(shape, parts, ws):  # type: ignore[no-untyped-def]
        parts = list(parts)
        folds.append((shape, len(parts)))
        return scatter_sum(shape, parts, ws)

    monkeypatch.setattr(aggregate_module, "scatter_sum", spy)
    codec.decode_batch(payloads, SHAPES, normalise="none")
    layouts = {name: codec._layout(shape)[0] for name, shape in SHAPES.items()}
    largest = max(lay.n_chunks * lay.chunk_elems for lay in layouts.values())
    assert all(parts == 5 for _, parts in folds)  # one add per peer and coefficient tensor
    assert all(rows * elems <= largest for (rows, elems), _ in folds)
    assert sum(rows for (rows, _), _ in folds) == sum(lay.n_chunks for lay in layouts.values())
    widths = {lay.chunk_elems for lay in layouts.values()}
    assert len(widths) <= len(folds) < len(SHAPES)  # some folds hold several parameters


@pytest.mark.parametrize(
    "params",
    [*CODECS, None],
    ids=lambda p: "dense" if p is None else "-".join(map(str, p.model_dump().values())),
)
def test_inner_products_read_from_payloads_are_the_decoded_ones(
    params: TopKCodecParams | SparseCodecParams | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window's cosines with its last aggregate come from the payloads: the kept values
    against the aggregate's coefficients (the transform is orthonormal, and the aggregate
    is zero in the padding the decoder crops), for every route back to dense and padded
    shapes; a zero update gives 0. Payloads read together give what each gives alone."""
    codec = DenseCodec() if params is None else build_codec(params)
    peers = _peers(3, seed=9)
    peers[1] = {k: torch.zeros_like(v) for k, v in peers[1].items()}
    payloads = [codec.encode(p)[0] for p in peers]
    other = _peers(1, seed=10)[0]
    got = codec.inners(payloads, SHAPES, other, "cpu")
    for payload, value in zip(payloads, got, strict=True):
        decoded = codec.decode(payload, SHAPES)
        expected = sum(float((decoded[n].double() * other[n].double()).sum()) for n in SHAPES)
        scale = sum(float(decoded[n].norm() * other[n].norm()) for n in SHAPES) or 1.0
        assert abs(value - expected) <= 1e-6 * scale, (value, expected)
    assert got[1] == 0.0
    monkeypatch.setattr(aggregate_module, "READ_COEFFICIENTS", 1)  # one payload a read
    assert codec.inners(payloads, SHAPES, other, "cpu") == got


@pytest.mark.parametrize("params", [CODECS[0], CODECS[1], CODECS[3], CODECS[5]])
@pytest.mark.parametrize("name", ["p", "u"])
def test_padded_norms_decode_every_peer_at_once_with_each_peers_bits(
    params: TopKCodecParams | SparseCodecParams, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A padded parameter's norm needs its decoded (cropped) entries: every peer's are
    decoded by one ``to_dense`` of a taller layout, or in groups under the memory limit,
    and each peer's norm has the bits of its own decode, measured alone."""
    codec = build_codec(params)
    payloads = [codec.encode(p)[0] for p in _peers(5, seed=11)]
    layout, k = codec._layout(SHAPES[name])
    assert layout.padded
    rows = [codec.read([t], name, "cpu") for t in payloads]
    idx = torch.stack([i for i, _ in rows])
    values = torch.stack([v for _, v in rows])
    alone = [
        torch.linalg.vector_norm(to_dense(layout, i, v, codec.dct), dtype=torch.float64)
        for i, v in rows
    ]
    calls: list[int] = []
    to_dense_real = aggregate_module.to_dense

    def spy(lay, i, v, dct):  # type: ignore[no-untyped-def]
        calls.append(len(v))
        return to_dense_real(lay, i, v, dct)

    monkeypatch.setattr(aggregate_module, "to_dense", spy)
    size = layout.padded_rows * layout.padded_cols
    for limit, groups in ((size * 5, 1), (size * 2, 3), (1, 5)):
        calls.clear()
        norms = aggregate_module.padded_norms(layout, idx, values, codec.dct, limit)
        assert all(torch.equal(a, b) for a, b in zip(norms, alone, strict=True)), limit
        assert len(calls) == groups and sum(calls) == 5 * layout.n_chunks


@pytest.mark.parametrize("normalise", ["none", "per_peer"])
def test_a_bad_parameter_read_with_others_fails_the_batch_and_is_named(normalise: str) -> None:
    """One read checks every peer's rows of several parameters at once: a fault in a later
    parameter of a later peer still fails the batch, and the message names it (found by
    validating peer by peer), not the first parameter of the read."""
    codec = build_codec(CODECS[5])
    payloads = [codec.encode(p)[0] for p in _peers(4, seed=7)]
    bad = dict(payloads[2])
    bad["t.lo"] = bad["t.lo"].copy()
    bad["t.lo"][1] = -1.0  # a negative smallest magnitude: outside [0, 1e30]
    payloads[2] = bad
    with pytest.raises(MalformedPayload, match=r"t\.lo outside"):
        codec.decode_batch(payloads, SHAPES, normalise=normalise)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params", CODECS, ids=lambda p: "-".join(map(str, p.model_dump().values()))
)
@pytest.mark.parametrize(("normalise", "clip_norm"), MODES)
def test_compressed_domain_aggregate_equals_the_dense_aggregate(
    params: TopKCodecParams | SparseCodecParams, normalise: str, clip_norm: float | None
) -> None:
    codec = build_codec(params)
    payloads = [codec.encode(p)[0] for p in _peers(5, seed=1)]
    out = codec.decode_batch(payloads, SHAPES, normalise=normalise, clip_norm=clip_norm)  # type: ignore[arg-type]
    _close(out, _dense_reference(codec, payloads, SHAPES, normalise, clip_norm))


@pytest.mark.parametrize(("normalise", "clip_norm"), MODES)
def test_dense_codec_aggregate_is_the_dense_aggregate(normalise: str, clip_norm) -> None:
    codec = DenseCodec()
    peers = _peers(4, seed=2)
    payloads = [codec.encode(p)[0] for p in peers]
    out = codec.decode_batch(payloads, SHAPES, normalise=normalise, clip_norm=clip_norm)  # type: ignore[arg-type]
    ref = aggregate(lambda i, n: peers[i][n], len(peers), list(SHAPES), normalise, clip_norm)  # type: ignore[arg-type]
    assert all(torch.equal(out[n], ref[n]) for n in SHAPES)


def test_zero_updates_and_a_single_peer() -> None:
    codec = TopKCodec(CODECS[0])
    zero = codec.encode({k: torch.zeros(s) for k, s in SHAPES.items()})[0]
    one = codec.encode(_peers(1, seed=3)[0])[0]
    for mode in ("none", "per_peer", "clip"):
        out = codec.decode_batch([zero, one, zero], SHAPES, normalise=mode, clip_norm=2.0)  # type: ignore[arg-type]
        _close(out, _dense_reference(codec, [zero, one, zero], SHAPES, mode, 2.0))
    only = codec.decode_batch([one], SHAPES)
    _close(only, codec.decode(one, SHAPES))  # a batch of one is that peer's update
    # no update to scale (per_peer weighs every zero update 0): no peer is read for the sum
    nothing = codec.decode_batch([zero, zero], SHAPES, normalise="per_peer")
    assert all(nothing[n].shape == SHAPES[n] and not nothing[n].any() for n in SHAPES)


def test_peer_order_only_changes_rounding_and_runs_are_bitwise_equal() -> None:
    codec = TopKCodec(CODECS[0])
    payloads = [codec.encode(p)[0] for p in _peers(6, seed=4)]
    first = codec.decode_batch(payloads, SHAPES, normalise="per_peer")
    again = codec.decode_batch(payloads, SHAPES, normalise="per_peer")
    assert all(torch.equal(first[n], again[n]) for n in SHAPES)
    _close(codec.decode_batch(payloads[::-1], SHAPES, normalise="per_peer"), first)


@pytest.mark.parametrize(
    "params", CODECS, ids=lambda p: "-".join(map(str, p.model_dump().values()))
)
def test_norms_from_coefficients_are_the_decoded_norms(
    params: TopKCodecParams | SparseCodecParams,
) -> None:
    codec = build_codec(params)
    assert isinstance(codec, TopKCodec | SparseCodec)
    payload = codec.encode(_peers(1, seed=5)[0])[0]
    for name, shape in SHAPES.items():
        layout = codec._layout(shape)[0]
        decoded = l2_norm_sq(codec.decode_tensor(payload, name, shape, "cpu"))
        values = codec.values(payload, name, "cpu")
        if not layout.padded:  # Parseval: the coefficients carry the whole norm
            assert l2_norm_sq(values) == pytest.approx(decoded, rel=1e-5), name


ROUTE_SHAPES = [(64, 96), (70, 33), (3, 8, 20), (96,), (50,)]
ROUTE_KS = [(3, True), (8, True), (40, True), (5, False)]


def _coefficients(
    shape: tuple[int, ...], k: int, g: torch.Generator
) -> tuple[ChunkLayout, torch.Tensor, torch.Tensor]:
    """A chunk-16 layout of ``shape`` and ``k`` random kept coefficients per chunk."""
    layout = ChunkLayout(shape, 16)
    k = min(k, layout.chunk_elems)
    idx = torch.rand(layout.n_chunks, layout.chunk_elems, generator=g).topk(k, dim=1).indices
    return layout, idx.sort(dim=1).values, torch.randn(layout.n_chunks, k, generator=g)


@pytest.mark.parametrize("shape", ROUTE_SHAPES)
@pytest.mark.parametrize(("k", "dct"), ROUTE_KS)
def test_every_route_back_to_dense_agrees(shape: tuple[int, ...], k: int, dct: bool) -> None:
    g = torch.Generator().manual_seed(6)
    layout, idx, values = _coefficients(shape, k, g)
    k = idx.shape[1]
    chunks = torch.zeros(layout.n_chunks, layout.chunk_elems).scatter_(1, idx, values)
    reference = layout.from_chunks(chunks, dct)  # scatter, then the dense inverse
    assert sparse_route(layout, k, dct) == (dct and len(shape) >= 2 and 2 * k <= 16)
    out = to_dense(layout, idx, values, dct)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-5)
    x = torch.randn(shape, generator=g)
    for in_place in (False, True):
        with workspace("cpu") as ws:
            residual = subtract_dense(layout, x.clone(), idx, values, dct, in_place, ws)
        torch.testing.assert_close(residual, x - reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", ROUTE_SHAPES)
@pytest.mark.parametrize(("k", "dct"), ROUTE_KS)
def test_entries_read_from_the_coefficients_are_the_decoded_entries(
    shape: tuple[int, ...], k: int, dct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a validator's sketch reads: any entries of the decoded tensor, padded edges
    and every chunk layout included, without decoding it (in pieces smaller than the ask)."""
    monkeypatch.setattr(sparse_module, "ENTRIES_PIECE", 7)
    g = torch.Generator().manual_seed(9)
    layout, idx, values = _coefficients(shape, k, g)
    dense = to_dense(layout, idx, values, dct).reshape(-1)
    positions = torch.randint(0, dense.numel(), (50,), generator=g)
    positions[:2] = torch.tensor([0, dense.numel() - 1])  # both ends
    got = entries_at(layout, idx, values, dct, positions)
    torch.testing.assert_close(got, dense[positions], rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(160, 96), (64, 400), (48, 16)])
def test_the_sparse_inverse_gives_the_same_bits_whatever_its_tiling(
    shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU the coefficient-by-coefficient inverse runs a tile of grid rows at a time
    (cache-resident); a tile of one grid row, of several, or all at once (a GPU's way) give
    the same decoded tensor and residual to the bit."""
    layout = ChunkLayout(shape, 16)
    g = torch.Generator().manual_seed(8)
    idx = torch.rand(layout.n_chunks, 256, generator=g).topk(6, dim=1).indices.sort(dim=1).values
    values = torch.randn(layout.n_chunks, 6, generator=g)
    x = torch.randn(shape, generator=g)
    outs = []
    for tile in (1, 12, 64, 10**9):
        monkeypatch.setattr(sparse_module, "TILE_BLOCKS", tile)
        with workspace("cpu") as ws:
            outs.append(
                (to_dense(layout, idx, values, True), subtract_dense(
                    layout, x.clone(), idx, values, True, True, ws
                ))
            )  # fmt: skip
    for dense, residual in outs[1:]:
        assert torch.equal(dense, outs[0][0]) and torch.equal(residual, outs[0][1])


def test_encode_does_not_touch_its_inputs() -> None:
    codec = TopKCodec(CODECS[0])
    delta, error = _peers(2, seed=7)
    kept = ({k: v.clone() for k, v in delta.items()}, {k: v.clone() for k, v in error.items()})
    codec.encode(delta)
    codec.encode(delta, error)
    assert all(
        torch.equal(delta[n], kept[0][n]) and torch.equal(error[n], kept[1][n]) for n in SHAPES
    )


def test_threads_sharing_the_workspace_get_the_same_results() -> None:
    codec = TopKCodec(CODECS[0])
    payloads = [codec.encode(p)[0] for p in _peers(4, seed=8)]
    expected = [codec.decode(p, SHAPES) for p in payloads]
    results: dict[int, dict] = {}

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = codec.decode(payloads[i], SHAPES)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert all(torch.equal(results[i][n], expected[i][n]) for n in SHAPES)


def test_entries_sum_the_kept_values_for_a_few_positions_and_decode_the_parameter_for_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = TopKCodec(TopKCodecParams(chunk=16, topk=4, dct=True, quant="f32"))
    shape = (64, 80)  # 5,120 entries; 4 kept per chunk: summing pays below 256 positions
    tensors, _ = codec.encode({"w": torch.randn(shape, generator=torch.Generator().manual_seed(3))})
    decoded = codec.decode(tensors, {"w": shape})["w"].reshape(-1)
    summed: list[int] = []
    real = chunked_module.entries_at
    monkeypatch.setattr(
        chunked_module, "entries_at", lambda *a: summed.append(len(a[-1])) or real(*a)
    )
    for count in (10, 255, 256, 5120):
        positions = torch.arange(count) * (5120 // count)
        got = codec.entries(tensors, "w", shape, positions, "cpu")
        torch.testing.assert_close(got, decoded[positions], rtol=0, atol=1e-5)
    assert summed == [10, 255]
