"""The model: shapes, causality, GQA, deterministic init, loss at init, learning."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import pytest
import torch

from gauntlet.model import (
    MODEL_CONFIGS,
    ModelArgs,
    Transformer,
    build_model,
    causal_lm_loss,
    count_parameters,
)

STATE_HASH = """
import hashlib, sys, torch
from gauntlet.model import build_model
torch.manual_seed(int(sys.argv[1]))  # a different global RNG state must not matter
model = build_model("tiny", seed=7)
h = hashlib.sha256()
for name, t in sorted(model.state_dict().items()):
    h.update(name.encode()); h.update(t.contiguous().numpy().tobytes())
print(h.hexdigest())
"""


def state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def random_tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, length), generator=g)


def test_forward_returns_fp32_logits_per_position():
    model = build_model("tiny", seed=0)
    logits = model(random_tokens(3, 17))
    assert logits.shape == (3, 17, 256)
    assert logits.dtype == torch.float32


def test_tiny_config_is_about_125k_parameters():
    assert 100_000 <= count_parameters(build_model("tiny", seed=0)) <= 150_000


def test_small_config_is_about_25m_parameters():
    with torch.device("meta"):
        model = Transformer(MODEL_CONFIGS["small"])
    assert 23_000_000 <= count_parameters(model) <= 27_000_000


def test_future_tokens_do_not_change_past_logits():
    model = build_model("tiny", seed=0)
    tokens = random_tokens(1, 20)
    changed = tokens.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 256
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_sequence_longer_than_max_seq_len_is_rejected():
    model = build_model("tiny", seed=0)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(random_tokens(1, MODEL_CONFIGS["tiny"].max_seq_len + 1))


def test_unknown_model_name_is_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope", seed=0)


def test_same_seed_gives_identical_parameters_in_another_process():
    here = state_hash(build_model("tiny", seed=7))
    there = subprocess.run(
        [sys.executable, "-c", STATE_HASH, "12345"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == here


def test_different_seeds_give_different_parameters():
    assert state_hash(build_model("tiny", seed=1)) != state_hash(build_model("tiny", seed=2))


def test_build_model_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    build_model("tiny", seed=3)
    torch.testing.assert_close(torch.rand(4), expected)


def test_state_dict_is_exactly_the_parameters():
    model = build_model("tiny", seed=0)
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}
    assert {name for name, _ in model.named_buffers()} == {"rope_cos", "rope_sin"}


def test_loss_at_init_is_close_to_uniform():
    loss = causal_lm_loss(build_model("tiny", seed=0), random_tokens(4, 65))
    assert abs(loss.item() - math.log(256)) < 0.1


def test_adamw_steps_on_a_fixed_batch_reduce_the_loss():
    model = build_model("tiny", seed=0)
    batch = random_tokens(4, 33)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = causal_lm_loss(model, batch).item()
    for _ in range(15):
        loss = causal_lm_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert causal_lm_loss(model, batch).item() < first - 0.5


def test_loss_rejects_sequences_without_a_target():
    with pytest.raises(ValueError):
        causal_lm_loss(build_model("tiny", seed=0), random_tokens(2, 1))


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_grouped_query_attention_shapes(n_kv_heads):
    args = ModelArgs(dim=64, n_heads=4, n_kv_heads=n_kv_heads)
    model = Transformer(args)
    model.init_weights(torch.Generator().manual_seed(0))
    assert model.layers[0].attention.wk.weight.shape == (n_kv_heads * 16, 64)
    assert model(random_tokens(2, 9)).shape == (2, 9, 256)


def test_grouped_query_attention_equals_attention_with_shared_kv_heads():
    """GQA is MHA whose key/value heads are copied across each query group."""
    gqa = Transformer(ModelArgs(n_heads=4, n_kv_heads=2))
    gqa.init_weights(torch.Generator().manual_seed(0))
    mha = Transformer(ModelArgs(n_heads=4, n_kv_heads=4))
    mha.init_weights(torch.Generator().manual_seed(1))
    state = gqa.state_dict()
    for name, t in state.items():
        if name.endswith(("wk.weight", "wv.weight")):
            heads = t.view(2, 16, 64)  # [kv_heads, head_dim, dim]
            state[name] = heads.repeat_interleave(2, dim=0).reshape(64, 64)
    mha.load_state_dict(state)
    tokens = random_tokens(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(mha(tokens), gqa(tokens))


def test_invalid_head_counts_are_rejected():
    with pytest.raises(ValueError):
        ModelArgs(dim=64, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError):
        ModelArgs(dim=60, n_heads=8, n_kv_heads=8)
