"""A validator holds few decoded updates at once: the checks decode each contribution, measure
it and drop it, and evaluation decodes an update while it applies it. At 1.2B an update is
4.8 GB in float32, so holding every miner's (as the checks did before) cannot fit a window of
a few dozen miners in host or GPU memory."""

from __future__ import annotations

import torch
from node_helpers import LiveCount

from gauntlet.compress.codec import DenseCodec
from gauntlet.node.checks import delta_norm, measure_updates, sketch_delta
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.score.config import ScoringConfig
from protocol.container import Limits

SHAPES = {"w": (6, 8), "b": (12,)}


class TrackedCodec(DenseCodec):
    def __init__(self, count: LiveCount) -> None:
        self.count = count

    def decode(self, tensors, shapes, device="cpu"):  # type: ignore[no-untyped-def]
        return self.count.track(super().decode(tensors, shapes, device))


def _update(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) for name, shape in SHAPES.items()}


def test_the_checks_hold_one_decoded_update_at_a_time() -> None:
    count = LiveCount()
    decoder = Decoder(1, Limits(max_bytes=1 << 20), TrackedCodec(count), SHAPES, "cpu")
    updates = {uid: _update(uid) for uid in range(8)}
    contributions = [
        Contribution(uid, f"hk{uid}", "ok", tensors=DenseCodec().encode(d)[0])
        for uid, d in updates.items()
    ] + [Contribution(9, "hk9", "invalid", "bad signature")]
    config = ScoringConfig()
    norms, sketches = measure_updates(contributions, decoder, config)
    assert count.made == 8 and count.most == 1 and count.alive == 0
    assert norms == {uid: delta_norm(d) for uid, d in updates.items()}
    for uid, d in updates.items():
        assert (sketches[uid] == sketch_delta(d, config)).all()
