"""The dense codec: every parameter's Δ as float32, named like the parameter.

The simplest honest codec; the sparse top-k codec with error feedback
replaces it as the default in a later step, behind the same three functions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from protocol.container import TensorSpec

Delta = dict[str, torch.Tensor]


def encode(delta: Delta) -> dict[str, np.ndarray]:
    """Δ (any float dtype, any device) -> float32 numpy arrays for the payload."""
    return {
        name: t.detach().to("cpu", torch.float32).contiguous().numpy() for name, t in delta.items()
    }


def decode(tensors: dict[str, np.ndarray], device: torch.device | str = "cpu") -> Delta:
    """Payload arrays (already validated against :func:`specs`) -> Δ tensors on ``device``."""
    return {
        name: torch.from_numpy(np.array(a, dtype=np.float32)).to(device)
        for name, a in tensors.items()
    }


def specs(model: nn.Module) -> dict[str, TensorSpec]:
    """The only tensors a dense payload for ``model`` may hold."""
    return {name: TensorSpec("F32", tuple(p.shape)) for name, p in model.named_parameters()}
