"""Reusable scratch buffers for the codec's intermediate tensors on CPU.

Why: a fresh float32 tensor of a large parameter's size is a fresh ``mmap`` on CPU
(glibc serves blocks over 32 MiB that way), and the kernel zero-fills every page on
first touch. Measured on the 2-core VM, that first touch costs as much as one extra
pass over the data: a chunk transform of a 46 MB matrix ran at 1.2 GB/s into fresh
buffers and 2.1 GB/s into reused ones. The codec's transforms, top-k and sparse
inverses therefore write their intermediates into buffers kept here; only what a
call returns is freshly allocated.

One process-wide set of buffers, taken by at most one thread at a time: a second
thread that finds it taken gets fresh tensors instead (correct, only slower), so the
memory kept is bounded by one set whatever the thread pool. On CUDA the caching
allocator already reuses memory, so every request is a fresh tensor there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_LOCK = threading.Lock()
_BUFFERS: dict[tuple[str, torch.dtype], torch.Tensor] = {}


class Workspace:
    """Named scratch tensors for one codec call. A slot's tensor is overwritten by the
    next :meth:`get` of the same slot, so a slot must not be reused while its previous
    tensor is still needed, and nothing from a slot may be returned to a caller."""

    def __init__(self, device: torch.device, cached: bool) -> None:
        self.device = device
        self.cached = cached

    def get(
        self, slot: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """An uninitialised contiguous tensor of ``shape`` (its contents are garbage)."""
        numel = 1
        for n in shape:
            numel *= n
        if not self.cached:
            return torch.empty(shape, dtype=dtype, device=self.device)
        buf = _BUFFERS.get((slot, dtype))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype)
            _BUFFERS[(slot, dtype)] = buf
        return buf[:numel].view(shape)


@contextmanager
def workspace(device: torch.device | str, held: Workspace | None = None) -> Iterator[Workspace]:
    """Scratch space for one call on ``device`` (see the module doc); ``held``, when the
    caller already holds one, is passed through (nested calls share it, so they must use
    distinct slots)."""
    if held is not None:
        yield held
        return
    dev = torch.device(device)
    if dev.type != "cpu" or not _LOCK.acquire(blocking=False):
        yield Workspace(dev, cached=False)
        return
    try:
        yield Workspace(dev, cached=True)
    finally:
        _LOCK.release()


def kept_bytes() -> dict[str, int]:
    """Bytes held per slot (``"slot/dtype"``): the memory a node keeps for the codec."""
    with _LOCK:
        return {
            f"{slot}/{str(dtype).removeprefix('torch.')}": buf.numel() * buf.element_size()
            for (slot, dtype), buf in sorted(_BUFFERS.items(), key=lambda kv: kv[0][0])
        }


def release() -> None:
    """Drop the kept buffers (e.g. after a one-off decode of a much larger model)."""
    with _LOCK:
        _BUFFERS.clear()
