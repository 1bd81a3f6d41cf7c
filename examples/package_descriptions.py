"""Debian package descriptions labelled by their archive section: a text set of thousands of longer, human-written
texts that works offline.

Each text is a package's short and long description (Debian's `Translation-en` index, joined to the `Packages`
index by `Description-md5`); its label is the package's section (net, science, admin, ...). Descriptions shared
by packages of several sections are left out, and each distinct description counts once.

    apt-get update -o Acquire::Languages=en     # fetches Translation-en (Docker images switch it off)
"""

from __future__ import annotations

import glob
import subprocess
import sys

LISTS = "/var/lib/apt/lists"
# Sections named by what a program does (not by its language or packaging), each with over 600 descriptions.
SECTIONS = ("net", "science", "admin", "games", "sound", "graphics")
FETCH = "apt-get update -o Acquire::Languages=en"


def _index(pattern: str) -> str:
    """The text of every apt list matching `pattern` (apt-helper reads lz4/gz/xz as apt stored them)."""
    paths = sorted(glob.glob(f"{LISTS}/*{pattern}*"))
    if not paths:
        sys.exit(f"No {pattern} index in {LISTS}: run `{FETCH}`.")
    return "".join(
        subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True, text=True, check=True).stdout
        for path in paths
    )


def _stanzas(text: str):
    """Debian control stanzas as dicts; continuation lines join their field with newlines."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def _clean(description: str) -> str:
    """A description as plain text: the short line, then the long text without its paragraph dots."""
    lines = [line for line in description.splitlines() if line != "."]
    return " ".join(" ".join(lines).split())


def read_descriptions(sections: tuple[str, ...] = SECTIONS) -> dict[str, list[str]]:
    """Per section, its distinct descriptions in the index's order."""
    section_of: dict[str, set[str]] = {}
    for package in _stanzas(_index("binary-amd64_Packages")):
        if "Description-md5" in package:
            section_of.setdefault(package["Description-md5"], set()).add(package.get("Section", "").split("/")[-1])
    texts: dict[str, list[str]] = {section: [] for section in sections}
    seen: set[str] = set()
    for entry in _stanzas(_index("i18n_Translation-en")):
        md5 = entry.get("Description-md5")
        owners = section_of.get(md5, set())
        if md5 in seen or len(owners) != 1 or next(iter(owners)) not in texts or "Description-en" not in entry:
            continue
        seen.add(md5)
        texts[next(iter(owners))].append(_clean(entry["Description-en"]))
    return texts


def split_sections(
    per_section: int,
    tokenizer,
    min_tokens: int = 100,
    seed: int = 0,
    sections: tuple[str, ...] = SECTIONS,
    reserve_factor: int = 0,
) -> dict[str, list[tuple[str, int]]]:
    """Per section, `per_section` descriptions of at least `min_tokens` tokens drawn with a fixed seed, split
    60% / 20% / 20% into train / validation / test (and a reserve: `split_per_label`)."""
    from text_classification import split_per_label

    long_texts = []
    for section, texts in read_descriptions(sections).items():
        long = [text for text in texts if len(tokenizer(text)["input_ids"]) >= min_tokens]
        if len(long) < per_section:
            raise SystemExit(
                f"Section {section!r} has {len(long)} descriptions of {min_tokens}+ tokens, not {per_section}."
            )
        long_texts.append(long)
    return split_per_label(long_texts, per_section, seed, reserve_factor)
