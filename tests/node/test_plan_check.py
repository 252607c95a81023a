"""A contribution trained under another training plan is refused, naming both plans."""

from __future__ import annotations

import torch
from node_helpers import LIMITS, NETUID, make_miner, payload

from gauntlet.compress.codec import DenseCodec, param_shapes
from gauntlet.model import build_model
from gauntlet.node.gather import Decoder, open_payload
from protocol.plan import PLAIN, superposition_plan


def test_a_contribution_under_another_training_plan_is_invalid(tmp_path) -> None:
    model = build_model("tiny", seed=0)
    miner = make_miner(tmp_path, 1)
    data = payload(model, miner, 3)  # trained (and signed) under the plain plan
    tst = superposition_plan(4, 6)
    shapes = param_shapes(model)
    on_plain = Decoder(NETUID, LIMITS, DenseCodec(), shapes, torch.device("cpu"), PLAIN.sha256)
    on_tst = Decoder(NETUID, LIMITS, DenseCodec(), shapes, torch.device("cpu"), tst.sha256)
    assert open_payload(1, miner.hotkey, 3, data, on_plain).ok
    refused = open_payload(1, miner.hotkey, 3, data, on_tst)
    assert refused.status == "invalid"
    assert PLAIN.sha256[:12] in refused.reason and tst.sha256[:12] in refused.reason
