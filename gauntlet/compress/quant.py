"""Encodings of the kept top-k values: f32 (exact), f16, or affine u8 per chunk.

Error bounds, per value ``v`` of a chunk whose kept values span ``[lo, hi]``:

* ``f32``: exact.
* ``f16``: relative error <= 2**-11 (half an ulp of an 11-bit significand) for
  ``|v|`` in f16's normal range; values beyond +-65504 are clamped (error
  feedback carries the clipped remainder into the next window).
* ``u8``: ``v ~ lo + q * scale`` with ``q = round((v - lo) / scale)`` in 0..255 and
  ``scale = (hi - lo) / 255``, so ``|error| <= scale / 2 = (hi - lo) / 510``.
  Costs 1 byte per value plus 8 bytes (f32 ``lo`` and ``scale``) per chunk.
"""

from __future__ import annotations

from typing import Literal

import torch

Quant = Literal["f32", "f16", "u8"]
F16_MAX = 65504.0

VALUE_DTYPE: dict[str, str] = {"f32": "F32", "f16": "F16", "u8": "U8"}


def quantise(values: torch.Tensor, quant: Quant) -> dict[str, torch.Tensor]:
    """Kept values ``[n_chunks, k]`` float32 -> payload parts (``val``, and for u8 ``lo``, ``scale``).

    ``lo`` and ``scale`` have shape ``[n_chunks]``, float32.
    """
    if quant == "f32":
        return {"val": values.float()}
    if quant == "f16":
        return {"val": values.clamp(-F16_MAX, F16_MAX).half()}
    lo = values.amin(dim=1)
    scale = (values.amax(dim=1) - lo) / 255.0
    # A chunk whose values are all equal has scale 0: every q is 0 and lo is exact.
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round((values - lo[:, None]) / safe[:, None]).clamp_(0, 255).to(torch.uint8)
    return {"val": q, "lo": lo, "scale": scale}


def dequantise(parts: dict[str, torch.Tensor], quant: Quant) -> torch.Tensor:
    """Inverse of :func:`quantise`: payload parts -> values ``[n_chunks, k]`` float32."""
    val = parts["val"]
    if quant != "u8":
        return val.float()
    return parts["lo"].float()[:, None] + val.float() * parts["scale"].float()[:, None]
