"""Bit-packing of small unsigned integers, and the sparse codec's signed b-bit values.

Packing: a row of ``k`` codes of ``width`` bits each is one little-endian bit stream,
code ``i`` at bits ``[i*width, (i+1)*width)``, cut into ``ceil(k*width/8)`` bytes; the
unused high bits of the last byte are zero (the canonical form a receiver insists on).
It is done with integer tensor arithmetic, not per-bit arrays: ``g = 8 / gcd(width, 8)``
codes fill a whole number of bytes, so each group is one int64 word, written out byte by
byte. Odd widths above 7 would need more than 64 bits per group; they go bit by bit.

Values: a sign bit (the top bit) and ``bits - 1`` magnitude bits ``q``; magnitude
``lo + q * step`` on a per-chunk grid from the smallest to the largest kept magnitude
(``bits = 1``: the sign alone, times the mean kept magnitude). Error per value: at most
``step / 2``.
"""

from __future__ import annotations

import math

import torch


def packed_bytes(k: int, width: int) -> int:
    """Bytes per row of ``k`` codes of ``width`` bits."""
    return -(-k * width // 8)


def _group(width: int) -> tuple[int, int]:
    """Codes per group and bytes per group: the smallest byte-aligned run of codes."""
    g = 8 // math.gcd(width, 8)
    return g, g * width // 8


def _bit_weights(count: int, device: torch.device) -> torch.Tensor:
    return torch.arange(count, device=device, dtype=torch.int64)


def _pack_bitwise(codes: torch.Tensor, width: int) -> torch.Tensor:
    n, k = codes.shape
    bits = (codes[:, :, None] >> _bit_weights(width, codes.device)) & 1
    stream = torch.zeros(n, packed_bytes(k, width) * 8, dtype=torch.int64, device=codes.device)
    stream[:, : k * width] = bits.view(n, k * width)
    by_byte = stream.view(n, -1, 8) << _bit_weights(8, codes.device)
    return by_byte.sum(dim=2).to(torch.uint8)


def _unpack_bitwise(packed: torch.Tensor, k: int, width: int) -> torch.Tensor:
    n = packed.shape[0]
    bits = (packed.to(torch.int64)[:, :, None] >> _bit_weights(8, packed.device)) & 1
    stream = bits.view(n, -1)[:, : k * width].reshape(n, k, width)
    return (stream << _bit_weights(width, packed.device)).sum(dim=2)


def pack(codes: torch.Tensor, width: int) -> torch.Tensor:
    """``[n, k]`` integer codes, each ``< 2**width`` -> ``[n, packed_bytes(k, width)]`` uint8."""
    n, k = codes.shape
    g, nbytes = _group(width)
    if g * width > 56:
        return _pack_bitwise(codes.long(), width)
    groups = -(-k // g)
    padded = torch.zeros(n, groups * g, dtype=torch.int64, device=codes.device)
    padded[:, :k] = codes
    shifts = torch.arange(g, device=codes.device, dtype=torch.int64) * width
    words = (padded.view(n, groups, g) << shifts).sum(dim=2)  # disjoint bits: sum is OR
    byte_shifts = torch.arange(nbytes, device=codes.device, dtype=torch.int64) * 8
    out = ((words[:, :, None] >> byte_shifts) & 0xFF).to(torch.uint8).view(n, groups * nbytes)
    return out[:, : packed_bytes(k, width)].contiguous()


def unpack(packed: torch.Tensor, k: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pack`: ``[n, packed_bytes(k, width)]`` uint8 -> ``[n, k]`` int64."""
    n = packed.shape[0]
    g, nbytes = _group(width)
    if g * width > 56:
        return _unpack_bitwise(packed, k, width)
    groups = -(-k // g)
    full = torch.zeros(n, groups * nbytes, dtype=torch.int64, device=packed.device)
    full[:, : packed.shape[1]] = packed
    byte_shifts = torch.arange(nbytes, device=packed.device, dtype=torch.int64) * 8
    words = (full.view(n, groups, nbytes) << byte_shifts).sum(dim=2)
    shifts = torch.arange(g, device=packed.device, dtype=torch.int64) * width
    codes = (words[:, :, None] >> shifts) & ((1 << width) - 1)
    return codes.view(n, groups * g)[:, :k]


def high_bits_clear(packed: torch.Tensor, k: int, width: int) -> torch.Tensor:
    """Whether the bits after the ``k`` codes in each row's last byte are all zero: a 0-d
    bool tensor on ``packed``'s device (reading it is the caller's one synchronisation)."""
    used = k * width % 8
    if used == 0 or packed.shape[0] == 0:
        return torch.ones((), dtype=torch.bool, device=packed.device)
    return ((packed[:, -1].to(torch.int64) >> used) == 0).all()


def quantise_signed(values: torch.Tensor, bits: int) -> dict[str, torch.Tensor]:
    """Kept values ``[n, k]`` float32 -> ``code`` (``[n, k]`` int64, ``< 2**bits``), ``lo``
    and ``step`` (``[n]`` float32, both >= 0)."""
    magnitude = values.abs()
    levels = 1 << (bits - 1)  # magnitude levels
    if levels == 1:
        lo = magnitude.mean(dim=1)
        step = torch.zeros_like(lo)
        q = torch.zeros_like(values, dtype=torch.int64)
    else:
        lo = magnitude.amin(dim=1)
        step = (magnitude.amax(dim=1) - lo) / (levels - 1)
        # a chunk whose kept magnitudes are all equal has step 0: every q is 0, lo is exact
        safe = torch.where(step > 0, step, torch.ones_like(step))
        q = torch.round((magnitude - lo[:, None]) / safe[:, None]).clamp_(0, levels - 1).long()
    sign = (values < 0).long() << (bits - 1)
    return {"code": sign | q, "lo": lo, "step": step}


def dequantise_signed(
    code: torch.Tensor, lo: torch.Tensor, step: torch.Tensor, bits: int
) -> torch.Tensor:
    """Inverse of :func:`quantise_signed`: float32 ``[n, k]``."""
    levels = 1 << (bits - 1)
    magnitude = lo.float()[:, None] + (code & (levels - 1)).float() * step.float()[:, None]
    return torch.where((code >> (bits - 1)) & 1 == 1, -magnitude, magnitude)
