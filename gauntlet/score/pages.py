"""The page ids a manifest claims must be a prefix of the miner's assigned page stream.

Each window the protocol assigns every miner an ordered stream of pages
(``assign_pages``); a miner trains on as many of them as its compute allows, in
order, and declares them: what it processed is what it is scored for."""

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


def check_declared_pages(declared: Sequence[int], stream: Sequence[int]) -> PageCheck:
    """Whether ``declared`` (the manifest's page ids) is a non-empty prefix of ``stream``."""
    if not declared:
        return PageCheck(False, "no pages declared")
    if len(set(declared)) != len(declared):
        return PageCheck(False, "duplicate page ids")
    if len(declared) > len(stream):
        return PageCheck(False, f"{len(declared)} pages declared, the stream has {len(stream)}")
    if list(declared) != list(stream[: len(declared)]):
        if set(declared) <= set(stream):
            return PageCheck(False, "page ids are not the stream's first pages, in order")
        return PageCheck(False, "page ids differ from the assignment")
    return PageCheck(True)
