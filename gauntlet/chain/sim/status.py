"""``gauntlet chain status``: the simulated chain's metagraph as a plain text table."""

from __future__ import annotations

from gauntlet.chain.base import Metagraph
from gauntlet.chain.sim.client import SimChainClient

_COLUMNS = ("uid", "hotkey", "stake", "vpermit", "incentive", "dividends", "emission", "updated")


def format_metagraph(mg: Metagraph) -> str:
    """Pure formatting, so it is testable without a service."""
    rows = [
        (
            str(n.uid),
            f"{n.hotkey[:6]}…{n.hotkey[-4:]}" if len(n.hotkey) > 12 else n.hotkey,
            f"{n.stake:.2f}",
            "yes" if n.validator_permit else "no",
            f"{n.incentive:.4f}",
            f"{n.dividends:.4f}",
            f"{n.emission:.4f}",
            str(n.last_update),
        )
        for n in mg.neurons
    ]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
    lines = [f"netuid {mg.netuid}  block {mg.block}  neurons {len(mg.neurons)}"]
    for row in (_COLUMNS, *rows):
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


async def render_status(endpoint: str, netuid: int) -> str:
    client = SimChainClient(endpoint, netuid)
    try:
        return format_metagraph(await client.metagraph())
    finally:
        await client.close()
