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


# Byte-level vocabulary everywhere for now, so no tokenizer download is needed.
# Larger configs (150M / 1.2B / 8B) go here as they are introduced.
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
}
