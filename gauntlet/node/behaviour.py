"""The points where a miner could deviate from the protocol, with the honest choice at each.

A production miner always runs :class:`Honest`. The local simulated subnet runs
adversarial subclasses (``gauntlet.localnet.behaviours``) through the very same
miner loop, so what the validator is tested against is a real miner process that
differs in one decision, not a separate fake. Each hook is called once per window,
in this order: ``online`` → ``training_pages`` / ``training_model`` → (training)
→ ``update`` → (compression) → ``wire_tensors`` → (signing) → ``finish`` →
``before_upload`` → (upload).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from gauntlet.compress.aggregate import Delta
from gauntlet.train.objective import objective_at

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime


def compute_pages(rt: Runtime, window: int, plain_pages: int) -> int:
    """Pages that ``plain_pages`` pages of plain training's compute cover in ``window``:
    more in a superposition phase (docs/tst.md). Behaviours that train "one page" mean
    one page's compute, in either phase."""
    return objective_at(rt.config.train, window).pages(plain_pages)


class Honest:
    """Train the assigned pages from θ_w, upload the true update, on time."""

    name = "honest"

    def online(self, window: int) -> bool:
        """Whether the miner takes part in ``window`` at all."""
        return True

    def declared_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        """Pages the manifest names: a prefix of the assigned stream (validators accept any
        non-empty one), so a miner may lower its budget from one window to the next."""
        return assigned

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        """Pages actually trained on, among the declared ones (the manifest names those)."""
        return assigned

    def training_model(self, rt: Runtime, window: int) -> nn.Module:
        """The model trained from; its fingerprint goes into the manifest."""
        return rt.model

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        """The pseudo-gradient handed to the codec."""
        return delta

    async def wire_tensors(
        self, rt: Runtime, window: int, tensors: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray] | None:
        """The compressed tensors that are signed and stored (None: upload nothing)."""
        return tensors

    def finish(self, window: int, payload: bytes) -> bytes:
        """The signed payload bytes as stored."""
        return payload

    async def before_upload(self, rt: Runtime, window: int) -> None:
        """Called right before the upload (after the on-time check)."""
