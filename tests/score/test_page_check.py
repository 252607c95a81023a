"""Manifest page ids against the assignment."""

from __future__ import annotations

from gauntlet.score.pages import check_pages


def test_exact_assignment_passes() -> None:
    assert check_pages([4, 9, 2], [4, 9, 2]).ok


def test_other_pages_fail_with_reason() -> None:
    check = check_pages([4, 9, 3], [4, 9, 2])
    assert not check.ok
    assert "differ" in check.reason


def test_order_matters_unless_told_otherwise() -> None:
    assert check_pages([9, 4, 2], [4, 9, 2]).reason == "page ids out of order"
    assert check_pages([9, 4, 2], [4, 9, 2], ordered=False).ok


def test_duplicates_and_wrong_counts_fail() -> None:
    assert check_pages([4, 4], [4, 9]).reason == "duplicate page ids"
    assert not check_pages([4], [4, 9]).ok
    assert not check_pages([4, 9, 2], [4, 9], ordered=False).ok


def test_no_pages_assigned_and_none_claimed_passes() -> None:
    assert check_pages([], []).ok
