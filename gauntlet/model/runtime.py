"""How the model runs on a device: placement, bf16 autocast, optional torch.compile.

Applied to the model from outside (torchtitan's split): the Transformer itself
knows no devices or dtypes. Parameters stay fp32 (the master weights the
optimizer updates and the pseudo-gradient is taken from); on CUDA, autocast runs
the matmuls in bf16. The RoPE tables stay fp32 buffers: ``apply_rope`` rotates in
fp32 and autocast leaves elementwise ops alone, so positions far into the
sequence keep their precision (bf16 has 8 mantissa bits; angles up to
max_seq_len radians would lose the fine phase).
"""

from __future__ import annotations

import contextlib

import torch

from gauntlet.model.transformer import Transformer


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA, a no-op elsewhere.

    CPU autocast exists but its bf16 kernels are slower than fp32 on most CPUs
    and would make CPU results differ from the fp32 reference, so CPU runs in
    fp32. Use around the forward pass (and the loss); the backward pass follows
    the dtypes that the forward recorded."""
    if torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_for_training(
    model: Transformer, *, device: torch.device | str, compile: bool
) -> Transformer:
    """Move ``model`` to ``device`` (keeping fp32 parameters and RoPE tables)
    and, if ``compile``, compile each transformer block in place.

    Returns the same object: compiling per block with ``nn.Module.compile``
    (not ``torch.compile(model)``) keeps the module tree and state_dict keys
    unchanged, so checkpoints, codecs and optimizers see the plain model. All
    blocks share one code path, so Dynamo traces one block and reuses the graph
    (torchtitan does the same), which keeps compile time flat in depth."""
    model.to(device)
    if model.rope_cos.dtype != torch.float32 or model.rope_sin.dtype != torch.float32:
        raise ValueError("RoPE tables must stay fp32; cast with autocast, not model.to(dtype)")
    if compile:
        for block in model.layers:
            block.compile(fullgraph=True)
    return model
