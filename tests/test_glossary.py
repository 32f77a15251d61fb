"""The glossary is part of the book, not an appendix nobody reaches: every entry
is linked from at least one chapter with the ``{term}`` role, and every such
link names an entry (Sphinx would warn, but this says which page and term)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "glossary.md"
# {term}`word` or {term}`shown text <entry>`
TERM = re.compile(r"\{term\}`([^`]+)`")


def glossary_entries() -> list[list[str]]:
    """Each entry's names (its first line and synonyms), from the glossary directive."""
    body = re.search(r"```\{glossary\}\n(.*?)\n```", GLOSSARY.read_text(), re.S).group(
        1
    )
    entries: list[list[str]] = []
    previous_was_name = False
    for line in body.splitlines():
        is_name = bool(line.strip()) and not line.startswith((" ", ":"))
        if is_name:
            if previous_was_name:
                entries[-1].append(line.strip())
            else:
                entries.append([line.strip()])
        previous_was_name = is_name
    return entries


def chapter_texts() -> dict[str, str]:
    """Markdown of every page and notebook except the glossary itself."""
    texts = {
        str(p.relative_to(ROOT)): p.read_text()
        for p in (ROOT / "book").glob("*.md")
        if p != GLOSSARY
    }
    for path in (ROOT / "notebooks").rglob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        texts[str(path.relative_to(ROOT))] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return texts


def linked_terms(text: str) -> set[str]:
    out = set()
    for ref in TERM.findall(text):
        target = re.search(r"<([^>]+)>\s*$", ref)
        out.add((target.group(1) if target else ref).strip().lower())
    return out


def test_glossary_parses() -> None:
    entries = glossary_entries()
    assert len(entries) > 50
    assert ["AIGC", "AI-generated content"] in entries


def test_every_glossary_entry_is_linked_from_a_chapter() -> None:
    linked = set().union(*(linked_terms(t) for t in chapter_texts().values()))
    unused = [e[0] for e in glossary_entries() if not {n.lower() for n in e} & linked]
    assert unused == [], f"glossary entries no chapter links to with {{term}}: {unused}"


def test_every_term_link_names_an_entry() -> None:
    names = {n.lower() for e in glossary_entries() for n in e}
    glossary_links = linked_terms(GLOSSARY.read_text())
    bad = {
        page: sorted(linked_terms(text) - names)
        for page, text in chapter_texts().items()
    }
    bad = {page: terms for page, terms in bad.items() if terms}
    assert bad == {} and glossary_links <= names
