"""Every relative link in the README and docs/ leads to a file that exists, and every `#anchor` to a heading of it
(a moved page, a renamed heading or a never-written page fails here; `mkdocs build --strict` checks the same in CI)."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages() -> list[str]:
    return sorted(
        {
            os.path.join(ROOT, "README.md"),
            *glob.glob(os.path.join(ROOT, "*.md")),
            *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True),
        }
    )


def prose(text: str) -> str:
    """The Markdown outside fenced code blocks (a `# comment` in a bash block is not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def anchors(path: str) -> set[str]:
    """The anchors the headings of the Markdown file at `path` get, as GitHub and as mkdocs spell them (they differ
    only where punctuation stands between words, or a heading repeats)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    with open(path) as handle:
        for heading in re.findall(r"^#{1,6} +(.+?) *#*$", prose(handle.read()), flags=re.M):
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
            words = re.sub(r"[^\w\s-]", "", text)
            github, mkdocs = words.replace(" ", "-"), re.sub(r"[-\s]+", "-", words).strip("-")
            count = seen.get(github, 0)
            seen[github] = count + 1
            found |= {github, mkdocs} if not count else {f"{github}-{count}", f"{mkdocs}_{count}"}
    return found


def broken_links(path: str) -> list[str]:
    """The relative link targets in the Markdown file at `path` whose file does not exist, or whose anchor is no
    heading of a Markdown file (web links aside)."""
    with open(path) as handle:
        targets = LINK.findall(prose(handle.read()))
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = os.path.join(os.path.dirname(path), file) if file else path
        if not os.path.exists(resolved):
            broken.append(target)
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append(target)
    return broken


def test_broken_links_sees_a_missing_page_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# Title\n\n## The part: one, two\n\n```bash\n# not a heading\n```\n")
    page.write_text(
        "# Top\n\n[a](there.md#the-part-one-two) [b](missing.md) [c](https://example.org/x.md) [d](#top) "
        "[e](there.md#not-a-heading) [f](#nowhere) [g](there.md)"
    )
    assert broken_links(str(page)) == ["missing.md", "there.md#not-a-heading", "#nowhere"]


def test_anchors_are_spelt_as_github_and_mkdocs_spell_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("## `schedule=` and [links](x.md) — both\n\n## Again\n\n## Again\n")
    assert {"schedule-and-links--both", "schedule-and-links-both", "again", "again-1", "again_1"} <= anchors(str(page))


def test_readme_and_docs_links_resolve():
    broken = {os.path.relpath(p, ROOT): links for p in pages() if (links := broken_links(p))}
    assert not broken, broken
