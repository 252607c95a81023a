"""A validator holds few decoded updates at once: the checks read each contribution's norm
and sketch from its payload without decoding it, and evaluation decodes an update while it
applies it. At 1.2B an update is 4.8 GB in float32, so holding every miner's (as the checks
did before) cannot fit a window of a few dozen miners in host or GPU memory."""

from __future__ import annotations

import pytest
import torch
from node_helpers import LiveCount

from gauntlet.compress.codec import Codec, DenseCodec, build_codec
from gauntlet.node.checks import delta_norm, measure_updates, sketch_delta
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.score.config import ScoringConfig
from protocol.container import Limits
from protocol.schemas import SparseCodecParams, TopKCodecParams

# a matrix, a padded matrix, a 3-D tensor, a vector and a padded vector
SHAPES = {"w": (64, 128), "p": (70, 33), "t": (3, 8, 20), "b": (96,), "v": (50,)}
CODECS = [
    DenseCodec(),
    build_codec(TopKCodecParams(chunk=16, topk=8, dct=True, quant="u8")),
    build_codec(TopKCodecParams(chunk=16, topk=40, dct=True, quant="f16")),
    build_codec(TopKCodecParams(chunk=16, topk=8, dct=False, quant="f32")),
    build_codec(SparseCodecParams(chunk=64, topk=6, bits=2)),
]


class TrackedCodec(DenseCodec):
    def __init__(self, count: LiveCount) -> None:
        self.count = count

    def decode(self, tensors, shapes, device="cpu"):  # type: ignore[no-untyped-def]
        return self.count.track(super().decode(tensors, shapes, device))


def _update(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) for name, shape in SHAPES.items()}


def test_the_checks_decode_no_update() -> None:
    count = LiveCount()
    decoder = Decoder(1, Limits(max_bytes=1 << 22), TrackedCodec(count), SHAPES, "cpu")
    updates = {uid: _update(uid) for uid in range(8)}
    contributions = [
        Contribution(uid, f"hk{uid}", "ok", tensors=DenseCodec().encode(d)[0])
        for uid, d in updates.items()
    ] + [Contribution(9, "hk9", "invalid", "bad signature")]
    config = ScoringConfig()
    norms, sketches = measure_updates(contributions, decoder, config)
    assert count.made == 0
    assert set(norms) == set(sketches) == set(updates)  # the invalid one is not measured
    for uid, d in updates.items():
        assert norms[uid] == pytest.approx(delta_norm(d), rel=1e-6)
        assert (sketches[uid] == sketch_delta(d, config)).all()


@pytest.mark.parametrize(
    "codec", CODECS, ids=lambda c: "-".join(map(str, c.params.model_dump().values()))
)
@pytest.mark.parametrize("coordinates", [0, 100])
def test_norms_and_sketches_from_the_payload_are_the_decoded_updates(
    codec: Codec, coordinates: int
) -> None:
    """Every codec, padded parameters included, whole or sampled sketch: what the checks read
    from the payload is what they would read from the decoded update, within float rounding."""
    config = ScoringConfig(sketch_coordinates=coordinates)
    decoder = Decoder(1, Limits(max_bytes=1 << 22), codec, SHAPES, "cpu")
    for uid in range(3):
        tensors, _ = codec.encode(_update(10 + uid))
        c = Contribution(uid, f"hk{uid}", "ok", tensors=tensors)
        norms, sketches = measure_updates([c], decoder, config)
        decoded = codec.decode(tensors, SHAPES)
        assert norms[uid] == pytest.approx(delta_norm(decoded), rel=1e-5)
        expected = sketch_delta(decoded, config)
        scale = float(abs(expected).max())
        assert abs(sketches[uid] - expected).max() <= 1e-5 * scale


@pytest.mark.parametrize(
    "codec", CODECS, ids=lambda c: "-".join(map(str, c.params.model_dump().values()))
)
@pytest.mark.parametrize("coordinates", [0, 40])
def test_measuring_every_miner_at_once_gives_each_its_own_bits(
    codec: Codec, coordinates: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks read every contribution's rows of a parameter together, so a GPU's
    launches and waits do not grow with the miners; each norm and sketch is bit for bit
    what that contribution measured alone gives, whether the sketch sums entries from the
    kept values (40 coordinates) or decodes parameters (all of them), and whether the
    contributions are read in one group or several (the read cut to one coefficient)."""
    from gauntlet.compress import aggregate as aggregate_module

    config = ScoringConfig(sketch_coordinates=coordinates)
    decoder = Decoder(1, Limits(max_bytes=1 << 22), codec, SHAPES, "cpu")
    sent = [
        Contribution(uid, f"hk{uid}", "ok", tensors=codec.encode(_update(20 + uid))[0])
        for uid in range(5)
    ] + [Contribution(7, "hk7", "late", "after the deadline")]
    alone = [measure_updates([c], decoder, config) for c in sent[:5]]
    for cut in (None, 1):
        if cut is not None:
            monkeypatch.setattr(aggregate_module, "READ_COEFFICIENTS", cut)
        norms, sketches = measure_updates(sent, decoder, config)
        assert list(norms) == list(sketches) == [0, 1, 2, 3, 4]
        for uid, (norm, sketch) in enumerate(alone):
            assert norms[uid] == norm[uid]
            assert (sketches[uid] == sketch[uid]).all()
