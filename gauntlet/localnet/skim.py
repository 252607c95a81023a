"""An attack on a check of the declared pages page by page (``scenarios/skim.toml``).

The own-page sample averages its pages, so a miner that declares 8 pages and trains 6
passes it; measured one page at a time, the pages it never trained gain nothing of their
own and stand out (bench/page_advantages.py, docs/scoring.md "Page by page"). A check
built on that sees whether a page was touched, not how much compute it got. ``skim`` is the
cheapest miner that knows it: it trains some of its declared pages in full and touches
every other one with a single gradient step.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gauntlet.compress.aggregate import Delta
from gauntlet.localnet.adaptive import Lazy, gradient_on
from gauntlet.node.checks import delta_norm

if TYPE_CHECKING:
    from gauntlet.node.runtime import Runtime


class Skim(Lazy):
    """Declares its whole page budget, trains the first ``trained`` pages' compute in full
    and adds, for each other declared page, one step down the gradient of one batch of it at
    θ_w, as long as ``strength`` times a trained page's share of the update (its norm over
    the pages trained), so every declared page gains something of its own. Its compute is
    the trained pages plus a batch of each skimmed page (a page is four batches at the
    localnet's defaults)."""

    name = "skim"

    def __init__(self, trained: int = 1, strength: float = 1.0) -> None:
        super().__init__(trained)
        if strength <= 0:
            raise ValueError(f"need strength > 0, got {strength}")
        self.strength = strength
        self.pages: dict[int, tuple[int, list[int]]] = {}  # window -> (trained, skimmed)

    def training_pages(self, rt: Runtime, window: int, assigned: list[int]) -> list[int]:
        kept = super().training_pages(rt, window, assigned)
        self.pages = {window: (len(kept), assigned[len(kept) :])}
        return kept

    async def update(self, rt: Runtime, window: int, delta: Delta) -> Delta:
        trained, skimmed = self.pages.pop(window, (0, []))
        if not trained or not skimmed:
            return delta
        share = self.strength * delta_norm(delta) / trained
        out = dict(delta)
        for page in skimmed:
            grad = await asyncio.to_thread(gradient_on, rt, [page], window)
            step = share / max(delta_norm(grad), 1e-12)
            # Δ = θ_w − θ_after: a step down the page's loss adds +step·g to it.
            out = {name: t + step * grad[name].to(t.device, t.dtype) for name, t in out.items()}
        return out
