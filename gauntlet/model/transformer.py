"""A LLaMA-style decoder in one file: RMSNorm, RoPE, grouped-query attention,
SwiGLU MLP, untied output head. Knows nothing about distribution or devices;
parallelism is applied to it from outside."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gauntlet.model.args import MODEL_CONFIGS, ModelArgs

INIT_STD = 0.02


class RMSNorm(nn.Module):
    """x / rms(x) * g. Cheaper than LayerNorm (no mean, no bias) and as good for
    pre-norm transformers: only the scale of the residual stream needs taming."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32: the mean of squares underflows/overflows in bf16.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each [max_seq_len, head_dim // 2] in fp32.

    Channel pair i rotates by angle pos * theta^(-2i/head_dim): geometric
    frequencies, so low channels resolve nearby positions and high channels far
    ones, and q·k depends only on the relative offset of the two positions."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, T, H, head_dim] by position; cos/sin are [T, head_dim // 2].

    Channel i is paired with channel i + head_dim/2 (the "rotate half" layout),
    which is the same rotation as interleaved pairs up to a fixed permutation
    of the weights."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]  # broadcast over heads
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


class Attention(nn.Module):
    """Causal self-attention with grouped-query heads: ``n_kv_heads`` key/value
    heads are shared by groups of ``n_heads / n_kv_heads`` query heads, which
    shrinks the KV projections (and cache) at little cost in quality."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.n_kv_heads
        self.head_dim = args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        # Position enters only through q and k: v carries content, not position.
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, T, head_dim]
        # Query head h reads kv head h // n_rep.
        n_rep = self.n_heads // self.n_kv_heads
        if n_rep > 1:
            k = k.repeat_interleave(n_rep, dim=1)
            v = v.repeat_interleave(n_rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))

    def init_weights(self, generator: torch.Generator, residual_std: float) -> None:
        for lin in (self.wq, self.wk, self.wv):
            nn.init.normal_(lin.weight, std=INIT_STD, generator=generator)
        nn.init.normal_(self.wo.weight, std=residual_std, generator=generator)


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x). The multiplicative gate lets each hidden
    unit switch itself off per token, which beats a plain GELU MLP per FLOP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))

    def init_weights(self, generator: torch.Generator, residual_std: float) -> None:
        nn.init.normal_(self.w1.weight, std=INIT_STD, generator=generator)
        nn.init.normal_(self.w3.weight, std=INIT_STD, generator=generator)
        nn.init.normal_(self.w2.weight, std=residual_std, generator=generator)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)). The
    residual path stays an identity, so gradients reach early layers intact."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    """Decoder-only language model. Build it with :func:`build_model`, or call
    :meth:`init_weights` after construction: parameters start uninitialised
    and the RoPE tables are non-persistent buffers that ``init_weights`` fills."""

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        # Given an empty weight, Embedding skips its own normal_ init, which on
        # the meta device pulls in torch._dynamo (seconds); init_weights fills it.
        self.tok_embeddings = nn.Embedding(
            args.vocab_size, args.dim, _weight=torch.empty(args.vocab_size, args.dim)
        )
        self.layers = nn.ModuleList(TransformerBlock(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        # Derived from args, so kept out of state_dict: named_parameters() is the
        # whole trainable state and checkpoints carry only learned numbers.
        # Left empty here and filled by init_weights (arange on meta would also
        # pull in torch._dynamo).
        table = (args.max_seq_len, args.head_dim // 2)
        self.register_buffer("rope_cos", torch.empty(table), persistent=False)
        self.register_buffer("rope_sin", torch.empty(table), persistent=False)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """Draw every parameter from ``generator`` in a fixed order (so a seed
        fixes the model bitwise) and recompute the RoPE tables.

        Linear and embedding weights ~ N(0, 0.02²). The projections that write
        into the residual stream (wo, w2) are further scaled by 1/sqrt(2·n_layers)
        (GPT-2): 2·n_layers such writes add up, and this keeps the residual
        variance O(1) at init whatever the depth."""
        # Computed on the CPU and copied, so that fp32 tables are the same
        # numbers on any device the model was materialised on.
        cos, sin = rope_tables(self.args.head_dim, self.args.max_seq_len, self.args.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)
        residual_std = INIT_STD / math.sqrt(2 * self.args.n_layers)
        nn.init.normal_(self.tok_embeddings.weight, std=INIT_STD, generator=generator)
        for module in self.modules():  # registration order: layer by layer
            if isinstance(module, (Attention, FeedForward)):
                module.init_weights(generator, residual_std)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        # Small output weights give near-uniform logits: loss starts at ~ln(vocab).
        nn.init.normal_(self.output.weight, std=INIT_STD, generator=generator)

    def embed(self, tokens: torch.Tensor, bag: int = 1) -> torch.Tensor:
        """Input embeddings [B, T, dim] of tokens int64 [B, T * bag]: with ``bag`` s > 1
        (token superposition) position t is the mean embedding of tokens t*s .. t*s+s-1,
        so a sequence s times longer costs the same as a plain one past this line."""
        if bag == 1:
            return self.tok_embeddings(tokens)
        batch, length = tokens.shape
        if length % bag:
            raise ValueError(f"{length} tokens do not split into bags of {bag}")
        return self.tok_embeddings(tokens.view(batch, length // bag, bag)).mean(dim=2)

    def forward(self, tokens: torch.Tensor, bag: int = 1) -> torch.Tensor:
        """tokens: int64 [B, T * bag] with T <= max_seq_len -> logits fp32 [B, T, vocab]."""
        h = self.embed(tokens, bag)
        seq_len = h.shape[1]
        if seq_len > self.args.max_seq_len:
            raise ValueError(
                f"sequence length {seq_len} exceeds max_seq_len {self.args.max_seq_len}"
            )
        cos, sin = self.rope_cos[:seq_len], self.rope_sin[:seq_len]
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.output(self.norm(h)).float()


def build_model(name: str, seed: int) -> Transformer:
    """The named config with weights fixed by ``seed``: same name and seed give
    bitwise-identical parameters in any CPU process, whatever the global RNG."""
    try:
        args = MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_CONFIGS)}") from None
    # Allocate on meta, then materialise: nn.Linear's own init would consume
    # (and depend on) the global RNG and waste time on large models.
    with torch.device("meta"):
        model = Transformer(args)
    model.to_empty(device="cpu")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    model.init_weights(generator)
    return model


def causal_lm_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) over tokens int64 [B, T+1]: position
    t of tokens[:, :-1] predicts tokens[:, t+1]."""
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"expected tokens [B, T+1] with T >= 1, got {tuple(tokens.shape)}")
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def superposition_loss(model: nn.Module, tokens: torch.Tensor, bag: int) -> torch.Tensor:
    """Token-superposition loss (nats per token) over tokens int64 [B, (T+1) * bag]: bag t
    of the first T enters as one position (:meth:`Transformer.embed`) and its output is
    scored on each of the ``bag`` tokens of bag t+1: the mean of their cross-entropies
    (the multi-hot cross-entropy). ``bag`` 1 is :func:`causal_lm_loss`."""
    if bag == 1:
        return causal_lm_loss(model, tokens)
    if tokens.ndim != 2 or tokens.shape[1] % bag or tokens.shape[1] < 2 * bag:
        raise ValueError(
            f"expected tokens [B, (T+1) * bag] with bag {bag} and T >= 1, got {tuple(tokens.shape)}"
        )
    positions = tokens.shape[1] // bag - 1
    inputs, targets = tokens[:, : positions * bag], tokens[:, bag:]
    logits = model(inputs, bag=bag)  # [B, T, vocab]
    log_probs = F.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.reshape(tokens.shape[0], positions, bag))
    return -picked.mean()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
