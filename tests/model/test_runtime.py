"""Device placement, bf16 autocast helper and torch.compile applied from outside."""

from __future__ import annotations

import shutil

import pytest
import torch

from gauntlet.model import build_model, causal_lm_loss
from gauntlet.model.runtime import autocast, prepare_for_training


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_autocast_is_a_no_op_on_cpu(device):
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with autocast(device):
        assert not torch.is_autocast_enabled("cpu")
        out = a @ b
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, a @ b, rtol=0, atol=0)


def test_prepare_keeps_the_same_module_fp32_weights_and_rope_tables():
    model = build_model("tiny", seed=0)
    keys = list(model.state_dict())
    prepared = prepare_for_training(model, device="cpu", compile=False)
    assert prepared is model
    assert list(prepared.state_dict()) == keys
    assert all(p.dtype == torch.float32 for p in prepared.parameters())
    assert prepared.rope_cos.dtype == prepared.rope_sin.dtype == torch.float32


def test_prepare_rejects_a_model_cast_to_bf16():
    model = build_model("tiny", seed=0).to(torch.bfloat16)
    with pytest.raises(ValueError, match="fp32"):
        prepare_for_training(model, device="cpu", compile=False)


NO_C_COMPILER = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="torch.compile's CPU backend (inductor) needs a C compiler; none on PATH",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        # Dynamo's full-graph trace of our blocks and AOT autograd: where our model code can
        # break compilation (a graph break fails fullgraph=True). A few seconds.
        "aot_eager",
        # What train.compile runs: the same, with inductor's generated C++ kernels. About 40 s
        # on two cores with a cold cache (gcc), so in the research run, not the default suite.
        pytest.param("inductor", marks=[pytest.mark.research, NO_C_COMPILER]),
    ],
)
def test_compiled_tiny_model_trains_like_the_eager_one(backend, monkeypatch):
    compile_block = torch.nn.Module.compile
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, **kw: compile_block(self, backend=backend, **kw)
    )
    tokens = torch.randint(0, 256, (2, 17), generator=torch.Generator().manual_seed(0))
    eager = build_model("tiny", seed=0)
    compiled = prepare_for_training(build_model("tiny", seed=0), device="cpu", compile=True)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    losses = []
    for model in (eager, compiled):
        loss = causal_lm_loss(model, tokens)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
