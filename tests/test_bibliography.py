"""The bibliography can be trusted: every entry can be found and is used.

Every entry of every ``book/*.bib`` file names a DOI, an arXiv identifier or a
URL; no key is defined twice across the files; every entry is cited somewhere
in the book's Markdown pages or notebooks; every citation resolves to an
entry; and none of the non-existent works cited by the source articles
(``/work/shared/sources/ERRATA.md``) has crept in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pybtex.database import parse_string

ROOT = Path(__file__).resolve().parent.parent
BIB_FILES = sorted((ROOT / "book").glob("*.bib"))
# {cite}`a,b`, {cite:p}`a`, {cite:t}`a`, {cite:ps}`a` ...
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
ARXIV = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+/\d{7})(v\d+)?$")
# Works the source articles cite that do not exist (see ERRATA.md).
FABRICATED = [
    "Effective Fitting of 512x512 Facades",
    "Duke of Veritas",
    "Yannun",
]


def _entries(path: Path) -> dict[str, dict[str, str]]:
    data = parse_string(path.read_text(encoding="utf-8"), "bibtex")
    return {
        key: {k.lower(): str(v) for k, v in entry.fields.items()}
        for key, entry in data.entries.items()
    }


def _keys_in_order(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", text, flags=re.M)


def _sources() -> list[tuple[Path, str]]:
    """The text of every page and notebook the book is built from."""
    found = []
    for path in sorted((ROOT / "book").glob("*.md")):
        found.append((path, path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells)
        found.append((path, text))
    return found


def _cited() -> dict[str, list[str]]:
    """Each cited key with the files that cite it."""
    cited: dict[str, list[str]] = {}
    for path, text in _sources():
        for group in CITE.findall(text):
            for key in group.split(","):
                cited.setdefault(key.strip(), []).append(path.name)
    return cited


def _all_entries() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in BIB_FILES:
        merged.update(_entries(path))
    return merged


def test_bib_files_exist_and_parse() -> None:
    assert BIB_FILES, "no book/*.bib file found"
    for path in BIB_FILES:
        _entries(path)  # raises on malformed BibTeX


@pytest.mark.parametrize("path", BIB_FILES, ids=lambda p: p.name)
def test_every_entry_has_an_identifier(path: Path) -> None:
    missing = []
    for key, fields in _entries(path).items():
        eprint = fields.get("eprint", "").strip()
        if eprint and not ARXIV.match(eprint):
            missing.append(f"{key} (eprint {eprint!r} is not an arXiv id)")
        elif not (fields.get("doi") or eprint or fields.get("url")):
            missing.append(key)
    assert not missing, f"{path.name}: entries without DOI, arXiv id or URL: {missing}"


@pytest.mark.parametrize("path", BIB_FILES, ids=lambda p: p.name)
def test_entries_have_author_title_year(path: Path) -> None:
    data = parse_string(path.read_text(encoding="utf-8"), "bibtex")
    bad = [
        key
        for key, entry in data.entries.items()
        if not entry.persons.get("author")
        or "title" not in entry.fields
        or not re.fullmatch(r"\d{4}", str(entry.fields.get("year", "")))
    ]
    assert not bad, f"{path.name}: entries without author, title or year: {bad}"


def test_no_duplicate_keys_across_files() -> None:
    seen: dict[str, str] = {}
    duplicates = []
    for path in BIB_FILES:
        for key in _keys_in_order(path):
            if key.lower() in seen:
                duplicates.append(f"{key} ({seen[key.lower()]} and {path.name})")
            seen.setdefault(key.lower(), path.name)
    assert not duplicates, f"keys defined twice: {duplicates}"


def test_every_entry_is_cited() -> None:
    cited = _cited()
    uncited = sorted(set(_all_entries()) - set(cited))
    assert not uncited, (
        f"bibliography entries cited nowhere in book/*.md or notebooks/: {uncited}"
    )


def test_every_citation_resolves() -> None:
    entries = _all_entries()
    unknown = {k: v for k, v in _cited().items() if k not in entries}
    assert not unknown, f"cited keys with no bib entry (key: files): {unknown}"


def test_no_fabricated_references() -> None:
    for path in BIB_FILES:
        text = path.read_text(encoding="utf-8").lower()
        for phrase in FABRICATED:
            assert phrase.lower() not in text, f"{path.name} cites {phrase!r}"


def test_cite_pattern_reads_every_role_form() -> None:
    text = "{cite}`a,b` and {cite:p}`c` and {cite:t}`d` but not `e`"
    assert [k for g in CITE.findall(text) for k in g.split(",")] == [
        "a",
        "b",
        "c",
        "d",
    ]
