"""The page ids a manifest claims must be exactly the pages the protocol assigned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PageCheck:
    """Verdict of :func:`check_pages`; ``reason`` is empty when ``ok``."""

    ok: bool
    reason: str = ""


def check_pages(
    claimed: Sequence[int], assigned: Sequence[int], *, ordered: bool = True
) -> PageCheck:
    """Whether the manifest's ``claimed`` page ids match ``assigned`` (from ``assign_pages``).

    ``ordered=True`` (the protocol: "pages trained on, in order") requires the
    same sequence; ``ordered=False`` the same set. Duplicates are always rejected.
    """
    if len(set(claimed)) != len(claimed):
        return PageCheck(False, "duplicate page ids")
    if len(claimed) != len(assigned):
        return PageCheck(False, f"{len(claimed)} page ids, {len(assigned)} assigned")
    if ordered and list(claimed) != list(assigned):
        if set(claimed) == set(assigned):
            return PageCheck(False, "page ids out of order")
        return PageCheck(False, "page ids differ from the assignment")
    if not ordered and set(claimed) != set(assigned):
        return PageCheck(False, "page ids differ from the assignment")
    return PageCheck(True)
