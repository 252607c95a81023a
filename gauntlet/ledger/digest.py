"""The model digest (:mod:`protocol.ledger`) of a live model, one parameter at a time.

The lead signs the digest of θ_{w+1} into its record of window ``w`` before it applies
the step, so :func:`model_digest_after` computes θ − lr·Δ per parameter exactly as
:func:`gauntlet.train.outer.apply_delta` does (the same ``sub`` with ``alpha``), without
changing the model; a checkpoint of that model then has the same digest.
"""

from __future__ import annotations

import hashlib
import sys

import torch
from torch import nn

from protocol.ledger import model_digest

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def tensor_sha256(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's raw bytes, row-major, little-endian (as safetensors stores it)."""
    if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
        raise RuntimeError("the model digest needs a little-endian host")
    raw = t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().data).hexdigest()


def _entry(name: str, t: torch.Tensor) -> tuple[str, str, list[int], str]:
    return name, _DTYPES[t.dtype], list(t.shape), tensor_sha256(t)


@torch.no_grad()
def model_sha256(model: nn.Module) -> str:
    """The model digest of ``model``'s parameters."""
    return model_digest(_entry(name, p) for name, p in model.named_parameters())


@torch.no_grad()
def model_sha256_after(model: nn.Module, delta: dict[str, torch.Tensor] | None, lr: float) -> str:
    """The model digest of θ − lr·Δ (the outer step), without changing ``model``: one
    parameter's updated copy at a time. ``delta`` None: the model as it is."""
    if delta is None:
        return model_sha256(model)
    return model_digest(
        _entry(name, p.detach().sub(delta[name].to(device=p.device, dtype=p.dtype), alpha=lr))
        for name, p in model.named_parameters()
    )
