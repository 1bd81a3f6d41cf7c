"""Every relative link in the README and docs/ leads to a file that exists (a moved or never-written page fails here)."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(path: str) -> list[str]:
    """The relative link targets in the Markdown file at `path` that do not exist (web links and anchors aside)."""
    with open(path) as handle:
        targets = LINK.findall(handle.read())
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    return [t for t in local if not os.path.exists(os.path.join(os.path.dirname(path), t))]


def test_broken_links_sees_a_missing_page(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("")
    page.write_text("[a](there.md#part) [b](missing.md) [c](https://example.org/x.md) [d](#top)")
    assert broken_links(str(page)) == ["missing.md"]


def test_readme_and_docs_links_resolve():
    pages = [
        os.path.join(ROOT, "README.md"),
        *glob.glob(os.path.join(ROOT, "*.md")),
        *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True),
    ]
    broken = {os.path.relpath(p, ROOT): links for p in sorted(set(pages)) if (links := broken_links(p))}
    assert not broken, broken
