"""Pages unrelated to a miner's own: what the wrong-data behaviours train on instead.

Pages next to each other come from the same source file (the localnet's datasets are files
cut into pages in order), so a page is unrelated to a miner's own only if it is far from
*every* own page, not just from the one it replaces. Half the dataset away from one own
page can land next to another: in a CI adversarial run of 2026-12-05 the wrong-data miner
declared pages 1, 118 and 198 of 244 and trained 117, 2 and 82, two of them beside its own,
and in the next window 39 and 153 beside its own 37 and 155. Its own-page advantage came
out +0.022 and +0.013 there (the honest miners' +0.014 to +0.071), and it ended the run
paid: the scoring saw a miner that had trained on its own files, as it was."""

from __future__ import annotations


def far_pages(own: list[int], num_pages: int) -> list[int]:
    """One page for each of ``own`` (distinct, in order, none of them its own), each at
    least half the largest distance any page keeps from every own page (distances wrap
    around the dataset): the candidate nearest half the dataset away from the page it
    replaces that is that far from all of them. ValueError when the dataset has fewer pages
    than twice ``own``."""
    taken = set(own)
    if num_pages < 2 * len(taken) or len(taken) != len(own):
        raise ValueError(
            f"{len(own)} distinct own pages need {2 * len(own)} pages, not {num_pages}"
        )

    def clearance(page: int) -> int:
        return min(min(abs(page - o), num_pages - abs(page - o)) for o in own)

    free = [page for page in range(num_pages) if page not in taken]
    need = max(1, max((clearance(page) for page in free), default=0) // 2)
    out: list[int] = []
    for page in own:
        opposite = (page + num_pages // 2) % num_pages
        for step in range(num_pages):  # outward from the opposite page: +1, -1, +2, ...
            candidate = (opposite + (step + 1) // 2 * (1 if step % 2 else -1)) % num_pages
            if candidate not in taken and clearance(candidate) >= need:
                break  # found: every free page clears 1, so one always is
        out.append(candidate)
        taken.add(candidate)
    return out
