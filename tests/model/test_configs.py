"""Named configs: shapes on the meta device, parameter counts, single allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gauntlet.model import MODEL_CONFIGS, Transformer, count_parameters

# Exact counts, as docs/model.md lists them; a change here must update the docs.
EXPECTED_PARAMS = {
    "tiny": 125_248,
    "small": 25_436_672,
    "150m": 149_840_640,
    "1.2b": 1_169_254_400,
    "8b": 8_030_261_248,
}
PARAM_RANGES = {
    "150m": (120e6, 180e6),
    "1.2b": (1.0e9, 1.4e9),
    "8b": (7.5e9, 8.5e9),
}


def meta_model(name: str) -> Transformer:
    with torch.device("meta"):
        return Transformer(MODEL_CONFIGS[name])


def test_every_config_has_a_documented_parameter_count():
    assert set(EXPECTED_PARAMS) == set(MODEL_CONFIGS)


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_meta_model_has_the_config_shapes_and_no_storage(name):
    args = MODEL_CONFIGS[name]
    model = meta_model(name)
    assert all(p.is_meta for p in model.parameters())
    assert model.tok_embeddings.weight.shape == (args.vocab_size, args.dim)
    assert model.output.weight.shape == (args.vocab_size, args.dim)
    assert len(model.layers) == args.n_layers
    attn, ffn = model.layers[0].attention, model.layers[0].feed_forward
    assert attn.wq.weight.shape == (args.n_heads * args.head_dim, args.dim)
    assert attn.wk.weight.shape == (args.n_kv_heads * args.head_dim, args.dim)
    assert ffn.w1.weight.shape == (args.ffn_hidden, args.dim)
    assert model.rope_cos.shape == (args.max_seq_len, args.head_dim // 2)
    with torch.no_grad():  # the forward pass traces on meta too: shapes line up
        logits = model(torch.zeros(2, 8, dtype=torch.long, device="meta"))
    assert logits.shape == (2, 8, args.vocab_size)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_count_is_the_documented_one(name):
    assert count_parameters(meta_model(name)) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PARAM_RANGES))
def test_large_config_is_the_size_its_name_says(name):
    low, high = PARAM_RANGES[name]
    assert low <= count_parameters(meta_model(name)) <= high


def test_eight_b_has_llama3_8b_shapes():
    args = MODEL_CONFIGS["8b"]
    assert (args.dim, args.n_layers, args.n_heads, args.n_kv_heads) == (4096, 32, 32, 8)
    assert (args.ffn_hidden, args.vocab_size, args.rope_theta) == (14336, 128256, 500_000.0)


PEAK_RSS = """
import resource, sys, torch
from gauntlet.model import build_model, count_parameters
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
before = rss()
model = build_model(sys.argv[1], seed=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(count_parameters(model) * 4, peak - before)
"""


def test_build_model_allocates_the_weights_once():
    """Meta device, then to_empty, then in-place init: peak memory ~ one fp32 copy."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "150m"], capture_output=True, text=True, check=True
    ).stdout.split()
    weight_bytes, grown = int(out[0]), int(out[1])
    assert grown < 1.3 * weight_bytes, (grown, weight_bytes)
