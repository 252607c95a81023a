"""Windows since a behaviour started: the ones that act after an honest start (sign-flip,
sleeper-boost), go stale (desync) or go offline count from the first window they see."""

from __future__ import annotations


class WindowsSeen:
    """Called with each window a behaviour is asked about, returns how many windows have
    passed since the first it was asked about (0 for that first one)."""

    def __init__(self) -> None:
        self.first: int | None = None

    def __call__(self, window: int) -> int:
        if self.first is None:
            self.first = window
        return window - self.first
