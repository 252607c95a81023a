"""Export to a Hugging Face ``LlamaForCausalLM`` directory (config.json + model.safetensors).

Written by hand, without importing transformers, so a node can export without
that dependency; the tests load the result with transformers and compare logits.

Our model *is* a Llama in HF's layout, so export only renames tensors. RoPE needs
no permutation: ``apply_rope`` pairs channel i with channel i + head_dim/2 (HF's
"rotate_half"), with the same frequencies theta^(-2i/head_dim). Meta's original
checkpoints rotate interleaved pairs (2i, 2i+1) instead, which is why their
conversion script permutes the rows of wq and wk; a model that did that would
need the same permutation here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gauntlet.model.args import MODEL_CONFIGS, ModelArgs
from gauntlet.model.export_tokenizer import write_tokenizer
from gauntlet.model.transformer import Transformer, build_model

# Our per-layer parameter names -> HF's (under "model.layers.{i}.").
_LAYER_NAMES = {
    "attention_norm.weight": "input_layernorm.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",  # inside silu
    "feed_forward.w3.weight": "mlp.up_proj.weight",  # the linear gate input
    "feed_forward.w2.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def hf_name(name: str) -> str:
    """HF Llama's name for one of our parameter names."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    prefix, index, rest = name.split(".", 2)
    if prefix != "layers" or rest not in _LAYER_NAMES:
        raise KeyError(f"no Hugging Face name for parameter {name!r}")
    return f"model.layers.{index}.{_LAYER_NAMES[rest]}"


def hf_config(args: ModelArgs, dtype: torch.dtype = torch.float32) -> dict[str, object]:
    """config.json for ``LlamaForCausalLM`` with the shapes of ``args``."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": args.vocab_size,
        "hidden_size": args.dim,
        "intermediate_size": args.ffn_hidden,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": args.max_seq_len,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "torch_dtype": _DTYPE_NAMES[dtype],
    }


def hf_state_dict(
    state: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Our state dict renamed to HF Llama's names, cast to ``dtype``, contiguous."""
    return {hf_name(k): v.detach().to(dtype).contiguous() for k, v in state.items()}


def export_hf(
    model: Transformer, args: ModelArgs, out_dir: Path, *, dtype: torch.dtype = torch.float32
) -> Path:
    """Write ``out_dir/config.json`` and ``out_dir/model.safetensors`` (one file,
    tensors in ``dtype``) so that ``LlamaForCausalLM.from_pretrained(out_dir)``
    computes the same logits as ``model``. Returns ``out_dir``."""
    if dtype not in _DTYPE_NAMES:
        raise ValueError(f"unsupported export dtype {dtype}; use one of {list(_DTYPE_NAMES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = hf_state_dict(model.state_dict(), dtype)
    # "format": "pt" is what transformers expects in the safetensors header.
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = hf_config(args, dtype)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out_dir


EXPORT_DTYPES = {name: dtype for dtype, name in _DTYPE_NAMES.items()}
EXPORT_FILE_MODE = 0o644  # an export is meant to be shared: readable by everyone


def export_cli(
    name: str,
    checkpoint: Path | None,
    out_dir: Path,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    tokenizer: Path | None = None,
) -> Path:
    """``gauntlet model export``: the named config with the weights of
    ``checkpoint`` (a safetensors file of our parameter names, as
    ``model.state_dict()`` gives them), or freshly initialised from ``seed`` if
    None, written as an HF Llama directory in ``out_dir`` with its tokenizer
    (:func:`~gauntlet.model.export_tokenizer.write_tokenizer`), every file mode 0644.

    The checkpoint's tensors are assigned into a meta-device model rather than
    copied into an initialised one, so an 8B export holds one copy of the weights."""
    try:
        args = MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_CONFIGS)}") from None
    if checkpoint is None:
        model = build_model(name, seed)
    else:
        with torch.device("meta"):
            model = Transformer(args)
        # strict: a missing, extra or mis-shaped tensor means the wrong config.
        model.load_state_dict(load_file(str(checkpoint)), strict=True, assign=True)
    export_hf(model, args, out_dir, dtype=dtype)
    write_tokenizer(out_dir, args.vocab_size, tokenizer, args.max_seq_len)
    for path in out_dir.iterdir():
        if path.is_file():
            path.chmod(EXPORT_FILE_MODE)
    return out_dir
