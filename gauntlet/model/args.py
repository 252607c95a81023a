"""Model hyperparameters: one small dataclass per architecture, named configs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelArgs:
    """Shape of a LLaMA-style decoder. ``n_heads`` must divide ``dim`` and
    ``n_kv_heads`` must divide ``n_heads`` (grouped-query attention)."""

    vocab_size: int = 256
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_hidden: int = 176
    max_seq_len: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10_000.0

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}"
            )
        if (self.dim // self.n_heads) % 2:
            raise ValueError("head_dim must be even: RoPE rotates pairs of channels")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def swiglu_hidden(dim: int, multiple_of: int) -> int:
    """LLaMA's SwiGLU width: 2/3 of 4*dim (so the three matrices cost about what
    a 4*dim GELU MLP's two do), rounded up to ``multiple_of`` for fast matmuls."""
    hidden = int(2 * 4 * dim / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


# Vocabularies. tiny and small are byte-level (256), so tests and the CPU demo
# need no tokenizer download. The larger configs target a real BPE tokenizer:
# 150m and 1.2b use a 32,000-entry vocabulary (the LLaMA-2 / Mistral
# SentencePiece size; 32000 = 64 * 500, so the output matmul tiles well, and it
# keeps the 1.2B's embeddings at ~11% of its parameters); 8b uses LLaMA-3's
# 128,256-entry tiktoken vocabulary, like the model whose shapes it copies.
# Parameter counts are in docs/model.md (computed on the meta device).
MODEL_CONFIGS: dict[str, ModelArgs] = {
    # ~125k parameters: unit tests and the 2-core localnet.
    "tiny": ModelArgs(
        vocab_size=256,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_hidden=swiglu_hidden(64, 16),
        max_seq_len=256,
    ),
    # ~25M parameters: a CPU demo that still learns something.
    "small": ModelArgs(
        vocab_size=256,
        dim=512,
        n_layers=8,
        n_heads=8,
        n_kv_heads=4,
        ffn_hidden=swiglu_hidden(512, 256),
        max_seq_len=1024,
    ),
    # ~150M parameters: a single-GPU miner; GPT-2-small width, 16 layers, GQA 12/4.
    "150m": ModelArgs(
        vocab_size=32_000,
        dim=768,
        n_layers=16,
        n_heads=12,
        n_kv_heads=4,
        ffn_hidden=swiglu_hidden(768, 256),  # 2048
        max_seq_len=2048,
    ),
    # ~1.2B parameters: the size of the Gauntlet paper's run. TinyLlama-like depth
    # and width (22 x 2048, SwiGLU 5632) with GQA 16/8 (head_dim 128); the codec's
    # size table and bench use it as gauntlet.compress.sizes.ASSUMED_1B2.
    "1.2b": ModelArgs(
        vocab_size=32_000,
        dim=2048,
        n_layers=22,
        n_heads=16,
        n_kv_heads=8,
        ffn_hidden=swiglu_hidden(2048, 256),  # 5632
        max_seq_len=2048,
    ),
    # ~8B parameters: LLaMA-3-8B's shapes. Its FFN width 14336 is Meta's
    # swiglu_hidden(4096, 1024) after a 1.3x multiplier, written out here; the
    # large rope_theta keeps the slowest RoPE frequencies distinct at 8k tokens.
    "8b": ModelArgs(
        vocab_size=128_256,
        dim=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        ffn_hidden=14_336,
        max_seq_len=8192,
        rope_theta=500_000.0,
    ),
}
