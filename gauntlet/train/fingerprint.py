"""Model fingerprints: θ at a few window-seeded coordinates, to prove a payload's sync.

Coordinates come from SHA-256 of public values (window, parameter names and
sizes), so every node picks the same ones and nobody needs the whole model.
"""

from __future__ import annotations

import hashlib
import struct

import torch
from torch import nn

FINGERPRINT_DOMAIN = b"gauntlet/fingerprint/v1"


def coordinates(window: int, sizes: list[tuple[str, int]], count: int) -> list[tuple[str, int]]:
    """``count`` (parameter name, flat index) pairs; ``sizes`` in named_parameters order."""
    names = sorted(sizes)
    out = []
    for i in range(count):
        digest = hashlib.sha256(FINGERPRINT_DOMAIN + struct.pack(">QQ", window, i)).digest()
        name, numel = names[int.from_bytes(digest[:8], "big") % len(names)]
        out.append((name, int.from_bytes(digest[8:16], "big") % numel))
    return out


@torch.no_grad()
def fingerprint(model: nn.Module, window: int, count: int = 16) -> list[float]:
    params = dict(model.named_parameters())
    picks = coordinates(window, [(n, p.numel()) for n, p in params.items()], count)
    return [float(params[name].detach().reshape(-1)[index]) for name, index in picks]


def max_abs_difference(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return float("inf")
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


@torch.no_grad()
def fingerprint_after(
    model: nn.Module, delta: dict[str, torch.Tensor] | None, lr: float, window: int, count: int = 16
) -> list[float]:
    """:func:`fingerprint` of θ − lr·Δ (the outer step) at ``window``'s coordinates, without
    changing the model: the lead signs it into its record before it applies the step."""
    if delta is None:
        return fingerprint(model, window, count)
    params = dict(model.named_parameters())
    picks = coordinates(window, [(n, p.numel()) for n, p in params.items()], count)
    out = []
    for name, index in picks:
        p = params[name].detach().reshape(-1)[index]
        d = delta[name].reshape(-1)[index].to(device=p.device, dtype=p.dtype)
        out.append(float(p.sub(d, alpha=lr)))
    return out
