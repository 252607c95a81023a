"""Window arithmetic: pure functions of block numbers.

Window ``w`` covers blocks ``[w * B, (w + 1) * B)`` where ``B`` is
``blocks_per_window``. Every node derives time from chain blocks, never from
its own clock.
"""

from __future__ import annotations


def window_of(block: int, blocks_per_window: int) -> int:
    """The window that contains ``block``."""
    _check(block, blocks_per_window)
    return block // blocks_per_window


def window_start(window: int, blocks_per_window: int) -> int:
    """First block of ``window``."""
    _check(window, blocks_per_window)
    return window * blocks_per_window


def window_end(window: int, blocks_per_window: int) -> int:
    """First block *after* ``window`` (exclusive end; also the upload deadline block)."""
    return window_start(window + 1, blocks_per_window)


def upload_deadline_block(window: int, blocks_per_window: int) -> int:
    """Block by which a contribution for ``window`` must be stored.

    A contribution is on time when the store's server timestamp of the object
    is no later than the chain timestamp of this block plus the grace period
    (see :func:`is_on_time`).
    """
    return window_end(window, blocks_per_window)


def is_on_time(uploaded_at: float, deadline_time: float, grace_seconds: float) -> bool:
    """Whether an object stored at ``uploaded_at`` (server time, unix seconds) is on time."""
    return uploaded_at <= deadline_time + grace_seconds


def _check(value: int, blocks_per_window: int) -> None:
    if blocks_per_window <= 0:
        raise ValueError(f"blocks_per_window must be positive, got {blocks_per_window}")
    if value < 0:
        raise ValueError(f"block/window must be non-negative, got {value}")
