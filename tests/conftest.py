"""Fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

# Small enough to prepare in a second or two, large enough for 3+ miners' pages.
TEST_MAX_TOKENS = 1_000_000
TEST_PAGE_TOKENS = 4096


@pytest.fixture(scope="session")
def stdlib_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token dataset prepared once per test session from this machine's stdlib sources."""
    from gauntlet.data import ensure_dataset

    path = tmp_path_factory.mktemp("dataset") / "stdlib"
    ensure_dataset(path, page_tokens=TEST_PAGE_TOKENS, max_tokens=TEST_MAX_TOKENS)
    return path
