"""Pages unrelated to a miner's own: what the wrong-data behaviours train on instead."""

from __future__ import annotations


def far_pages(own: list[int], num_pages: int) -> list[int]:
    """One page half the dataset away from each of ``own`` (distinct, in order)."""
    out: list[int] = []
    for page in own:
        far = (page + num_pages // 2) % num_pages
        while far in out or far in own:
            far = (far + 1) % num_pages
        out.append(far)
    return out
