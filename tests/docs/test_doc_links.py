"""Every link into a section (``[text](file.md#section)`` or ``[text](#section)``) in
README.md, docs/*.md and protocol/SPEC.md names a file that exists and a heading it has.

The threat model and the research runs cite each other by section; a heading renamed
without its links leaves a reader at the top of a thousand-line page.
"""

from __future__ import annotations

import re

from doc_pages import PAGES, ROOT

HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
SECTION_LINK = re.compile(r"\]\(([^)\s#]*)#([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (backticks, dots,
    colons, slashes), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown page's headings, a repeated one numbered as GitHub numbers
    it (``name``, ``name-1``, ...); fenced code is not headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not (match := HEADING.match(line)):
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def test_slugs_follow_githubs_rule() -> None:
    assert slug("Validator cost per evaluated peer (`bench/validator.py`)") == (
        "validator-cost-per-evaluated-peer-benchvalidatorpy"
    )
    assert slug("Record: the limit-knowing boost operator") == (
        "record-the-limit-knowing-boost-operator"
    )
    assert anchors("# A\n## A\n```\n# B\n```\n") == {"a", "a-1"}


def test_every_section_link_names_a_heading_that_exists() -> None:
    bad = []
    for path in PAGES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for target, fragment in SECTION_LINK.findall(line):
                linked = (path.parent / target).resolve() if target else path
                where = f"{path.relative_to(ROOT)}:{number}"
                if not linked.is_file():
                    bad.append(f"{where}: no file {target}")
                elif fragment not in anchors(linked.read_text()):
                    bad.append(f"{where}: {linked.relative_to(ROOT)} has no #{fragment}")
    assert not bad, "\n".join(bad)
