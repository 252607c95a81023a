"""decode_batch: per-peer normalisation and clipping by hand, determinism, hostile peers."""

from __future__ import annotations

import pytest
import torch

from gauntlet.compress import DenseCodec, TopKCodec
from gauntlet.compress.aggregate import peer_scales
from protocol.schemas import TopKCodecParams

SHAPES = {"a": (2,), "b": (1,)}
# Norms over both parameters together: 1, 2 and 10 (6-8-0 is a 3-4-5 triangle doubled).
PEERS = [
    {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0])},
    {"a": torch.tensor([0.0, 0.0]), "b": torch.tensor([2.0])},
    {"a": torch.tensor([6.0, 8.0]), "b": torch.tensor([0.0])},
]
DENSE = DenseCodec()


def _payloads(peers: list[dict[str, torch.Tensor]]) -> list:
    return [DENSE.encode(p)[0] for p in peers]


def test_plain_mean() -> None:
    out = DENSE.decode_batch(_payloads(PEERS), SHAPES, normalise="none")
    torch.testing.assert_close(out["a"], torch.tensor([7.0 / 3, 8.0 / 3]))
    torch.testing.assert_close(out["b"], torch.tensor([2.0 / 3]))


def test_per_peer_scales_every_update_to_the_median_norm() -> None:
    # Lower median of (1, 2, 10) is 2: scales 2, 1, 0.2 -> [2,0|0], [0,0|2], [1.2,1.6|0].
    out = DENSE.decode_batch(_payloads(PEERS), SHAPES, normalise="per_peer")
    torch.testing.assert_close(out["a"], torch.tensor([3.2 / 3, 1.6 / 3]))
    torch.testing.assert_close(out["b"], torch.tensor([2.0 / 3]))


def test_clip_shrinks_only_updates_above_the_clip_norm() -> None:
    # clip 1.5: scales 1, 0.75, 0.15 -> [1,0|0], [0,0|1.5], [0.9,1.2|0].
    out = DENSE.decode_batch(_payloads(PEERS), SHAPES, normalise="clip", clip_norm=1.5)
    torch.testing.assert_close(out["a"], torch.tensor([1.9 / 3, 1.2 / 3]))
    torch.testing.assert_close(out["b"], torch.tensor([1.5 / 3]))


def test_scales_edge_cases() -> None:
    assert peer_scales([0.0, 2.0], "per_peer", None) == [0.0, 1.0]  # zero stays zero
    assert peer_scales([0.0, 2.0], "clip", 1.0) == [1.0, 0.5]
    assert peer_scales([4.0, 1.0, 2.0, 3.0], "per_peer", None) == [0.5, 2.0, 1.0, 2.0 / 3]
    with pytest.raises(ValueError):
        peer_scales([1.0], "clip", None)
    with pytest.raises(ValueError):
        DENSE.decode_batch([], SHAPES)


def _random_topk_payloads(codec: TopKCodec, n: int, shapes: dict) -> list:
    g = torch.Generator().manual_seed(7)
    return [
        codec.encode({k: torch.randn(s, generator=g) for k, s in shapes.items()})[0]
        for _ in range(n)
    ]


@pytest.mark.parametrize("normalise", ["none", "per_peer", "clip"])
def test_decode_batch_is_bitwise_deterministic(normalise: str) -> None:
    shapes = {"w": (96, 80), "v": (300,)}
    codec = TopKCodec(TopKCodecParams(chunk=16, topk=12, quant="u8"))
    payloads = _random_topk_payloads(codec, 5, shapes)
    runs = [
        codec.decode_batch(payloads, shapes, normalise=normalise, clip_norm=5.0)  # type: ignore[arg-type]
        for _ in range(3)
    ]
    for other in runs[1:]:
        assert all(torch.equal(runs[0][n], other[n]) for n in shapes)


def test_topk_batch_of_one_unscaled_equals_decode() -> None:
    shapes = {"w": (40, 40)}
    codec = TopKCodec(TopKCodecParams(chunk=8, topk=5))
    payloads = _random_topk_payloads(codec, 1, shapes)
    assert torch.equal(
        codec.decode_batch(payloads, shapes)["w"], codec.decode(payloads[0], shapes)["w"]
    )


@pytest.mark.parametrize("normalise", ["per_peer", "clip"])
def test_a_huge_hostile_update_is_tamed(normalise: str) -> None:
    shapes = {"w": (32, 32)}
    g = torch.Generator().manual_seed(3)
    direction = torch.randn(32, 32, generator=g)
    honest = [{"w": direction + 0.1 * torch.randn(32, 32, generator=g)} for _ in range(4)]
    hostile = {"w": -1e25 * direction}  # finite, within the codec's value bound
    codec = TopKCodec(TopKCodecParams(chunk=8, topk=64, quant="f32"))  # keeps everything
    payloads = [codec.encode(p)[0] for p in [*honest, hostile]]
    honest_mean = sum(p["w"] for p in honest) / 4
    plain = codec.decode_batch(payloads, shapes)["w"]
    tamed = codec.decode_batch(payloads, shapes, normalise=normalise, clip_norm=40.0)["w"]  # type: ignore[arg-type]
    assert float(plain.norm()) > 1e20  # without a defence the hostile peer wins
    assert torch.isfinite(tamed).all()
    # The hostile peer moves the mean by at most its (bounded) norm / 5, and still
    # points the other way, but the honest direction survives.
    cosine = float((tamed * honest_mean).sum() / (tamed.norm() * honest_mean.norm()))
    assert cosine > 0.4
    assert float(tamed.norm()) < 2 * float(honest_mean.norm())
