"""The README and docs pages link to files and sections that exist (a broken link is a stumble)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PAGES = sorted([PROJECT_ROOT / "README.md", PROJECT_ROOT / "notebooks" / "README.md",
                *(PROJECT_ROOT / "docs").glob("*.md")])
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", _CODE.sub("", page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = _CODE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an external address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.relative_to(PROJECT_ROOT)}: broken links {broken}"


def test_the_readme_keeps_the_two_quick_start_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 -m pip install -e . && python3 -m fhirlake demo" in readme
    assert 'python3 -m pip install -e ".[test]" && python3 -m pytest' in readme


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    reachable: set[Path] = set()
    todo = [PROJECT_ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reachable or not page.is_file() or page.suffix != ".md":
            continue
        reachable.add(page)
        text = _CODE.sub("", page.read_text(encoding="utf-8"))
        todo += [(page.parent / t.partition("#")[0]).resolve() for t in _LINK.findall(text)
                 if not re.match(r"[a-z]+:", t) and t.partition("#")[0]]
    orphans = [p.name for p in (PROJECT_ROOT / "docs").glob("*.md") if p.resolve() not in reachable]
    assert not orphans, f"docs pages no README path leads to: {orphans}"
