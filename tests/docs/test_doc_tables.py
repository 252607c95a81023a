"""Every Markdown table in README.md, docs/*.md and protocol/SPEC.md has as many cells in
each row as in its header.

GitHub drops the cells past the header's count without a word, so a row with one cell too
many loses its last column (in the threat model that is the test that shows the row), and
a bare ``|`` splits a cell even inside a code span (write ``\\|``).
"""

from __future__ import annotations

import re

from doc_pages import PAGES, ROOT

CELL_BORDER = re.compile(r"(?<!\\)\|")
DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def cell_count(row: str) -> int:
    """The cells of one table row as GitHub splits it: on every ``|`` not escaped, the
    row's leading and trailing ones aside."""
    inner = row.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return len(CELL_BORDER.split(inner))


def mismatched_rows(text: str) -> list[tuple[int, int, int]]:
    """(line number, cells, header cells) of every table row whose count is not its
    header's; fenced code blocks are not tables."""
    lines = text.splitlines()
    out: list[tuple[int, int, int]] = []
    fenced = False
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            fenced = not fenced
        header = not fenced and "|" in lines[i] and i + 1 < len(lines)
        if header and DELIMITER_ROW.match(lines[i + 1]):
            expected = cell_count(lines[i])
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                if (got := cell_count(lines[i])) != expected:
                    out.append((i + 1, got, expected))
                i += 1
            continue
        i += 1
    return out


def test_the_cell_count_follows_githubs_split() -> None:
    assert cell_count("| a | b |") == 2
    assert cell_count("a | b") == 2
    assert cell_count("| `||u||` | b |") == 6  # a code span does not protect a bare pipe
    assert cell_count(r"| `\|\|u\|\|` | b |") == 2
    assert cell_count(r"| a \| b |") == 1


def test_a_row_with_a_cell_too_many_is_found() -> None:
    table = "| attack | defence |\n|---|---|\n| x | y |\n| x | y | z |\n\ntext | not a table\n"
    assert mismatched_rows(table) == [(4, 3, 2)]
    assert mismatched_rows("```\n| a |\n|---|\n| b | c |\n```\n") == []


def test_every_table_row_has_its_headers_cells() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {got} cells under a header of {expected}"
        for path in PAGES
        for line, got, expected in mismatched_rows(path.read_text())
    ]
    assert not bad, "\n".join(bad)
