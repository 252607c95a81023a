"""Window arithmetic: pure functions of block numbers.

Window ``w`` covers blocks ``[w * B, (w + 1) * B)`` where ``B`` is
``blocks_per_window``. Every node derives time from chain blocks, never from
its own clock.

Timeline of window ``w``: miners train and upload during ``w``; the upload
deadline is the chain timestamp of block ``window_end(w)`` (first block of
``w + 1``) plus a grace period, judged by the store's server timestamp. When the
chain reaches ``window_end(w)`` every node gathers the peer set's contributions
for ``w`` (:func:`gather_window`) and steps to θ_{w+1}; validators evaluate
``w`` during ``w + 1`` (:func:`evaluation_window`), one window behind.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def upload_deadline_time(deadline_block_time: float, grace_seconds: float) -> float:
    """Latest server timestamp (unix seconds) an on-time upload may carry.

    ``deadline_block_time`` is the chain timestamp of
    :func:`upload_deadline_block`; the grace absorbs block-time jitter and
    store clock skew, and is a config fact every node must share.
    """
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must be non-negative, got {grace_seconds}")
    return deadline_block_time + grace_seconds


def is_window_start(block: int, blocks_per_window: int) -> bool:
    """Whether ``block`` is a boundary: the first block of its window."""
    _check(block, blocks_per_window)
    return block % blocks_per_window == 0


def gather_window(block: int, blocks_per_window: int) -> int | None:
    """The window whose contributions are gathered and aggregated once the chain is at ``block``.

    The boundary ``w -> w + 1`` gathers ``w``, so at any block of ``w + 1`` the
    window being (or just) aggregated is ``w``; None during window 0.
    """
    current = window_of(block, blocks_per_window)
    return current - 1 if current > 0 else None


def evaluation_window(block: int, blocks_per_window: int) -> int | None:
    """The window a validator evaluates at ``block``: one behind, so uploads are final.

    Same value as :func:`gather_window`; a separate name because the two roles
    may diverge (for example a validator that lags several windows).
    """
    return gather_window(block, blocks_per_window)


def blocks_until_window_end(block: int, blocks_per_window: int) -> int:
    """Blocks left in ``block``'s window, counting ``block`` itself (1..B)."""
    return window_end(window_of(block, blocks_per_window), blocks_per_window) - block


def _check(value: int, blocks_per_window: int) -> None:
    if blocks_per_window <= 0:
        raise ValueError(f"blocks_per_window must be positive, got {blocks_per_window}")
    if value < 0:
        raise ValueError(f"block/window must be non-negative, got {value}")


@dataclass(frozen=True)
class Timeline:
    """The phases of one window, in blocks (protocol/SPEC.md, "Window timeline").

    For window ``w`` with ``D = window_end(w)`` (the upload deadline block):

    - upload: blocks ``[window_start(w), D)``: miners train and upload their *sealed*
      contribution; validators poll and record what they see, stamped with the head block;
    - grace ``[D, D + grace_blocks)``: uploads still count if a validator observes them
      before the head reaches the observation close ``C = D + grace_blocks``;
    - reveal ``[C, C + reveal_blocks)``: miners publish their keys; a reveal counts if a
      validator fetches it before the head reaches ``R = C + reveal_blocks``;
    - record: the lead publishes the window's signed aggregation record; it counts if the
      lead's store holds it by the chain time of block ``R + record_blocks``. Every node
      applies exactly that record; with none in time, θ_{w+1} = θ_w on every node.
    """

    blocks_per_window: int
    grace_blocks: int = 1
    reveal_blocks: int = 2
    record_blocks: int = 5

    def __post_init__(self) -> None:
        if self.blocks_per_window <= 0 or min(self.grace_blocks, self.record_blocks) < 0:
            raise ValueError(f"bad timeline {self}")
        if self.reveal_blocks < 1:
            raise ValueError("reveal_blocks must be at least 1")

    def deadline(self, window: int) -> int:
        return window_end(window, self.blocks_per_window)

    def observation_close(self, window: int) -> int:
        """First block at which no new upload for ``window`` counts, and reveals begin."""
        return self.deadline(window) + self.grace_blocks

    def reveal_close(self, window: int) -> int:
        """First block at which no reveal for ``window`` counts."""
        return self.observation_close(window) + self.reveal_blocks

    def record_deadline(self, window: int) -> int:
        """The aggregation record of ``window`` must be stored by this block's chain time."""
        return self.reveal_close(window) + self.record_blocks

    def observing(self, window: int, head: int) -> bool:
        """Whether uploads for ``window`` can still be observed with the chain at ``head``."""
        return window_start(window, self.blocks_per_window) <= head < self.observation_close(window)
