"""Find numbers typed into prose that should come from a run.

A measured number on a page is glued from the run that made it
(``{glue:text}`name:.3f```), a run time is the notebook's recorded one
(``{runtime}`this```), and a number that is not a measurement of ours (a year,
a published figure next to its citation, a setting) is marked
``{lit}`...```. Everything else that looks measured is reported:

* a number with a decimal point (``1.63``), a percentage (``95%``), a ratio
  (``12.8x``, ``3×``);
* a number, in digits or words, before a unit of time or of loss
  (``76 s``, ``four minutes``, ``2.4 nats``).

Integers without a unit (``384 units``, ``step 3``, ``1000 updates``) are
settings or counts and pass. Code (inline and fenced), math, roles, link
targets and HTML are skipped.

    python tools/prose_numbers.py          # every page, one line a number
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

_SKIP = [
    re.compile(r"^(```|~~~|:::)[^\n]*\n.*?^\1\s*$", re.S | re.M),  # fenced blocks
    re.compile(r"^\$\$.*?^\$\$", re.S | re.M),  # display math
    re.compile(r"\{[a-zA-Z:_-]+\}`[^`]*`"),  # roles: glue, lit, runtime, cite, ...
    re.compile(r"``[^`]*``|`[^`]*`"),  # inline code
    re.compile(r"(?<!\\)\$[^$\n]+\$"),  # inline math
    re.compile(r"\]\([^)]*\)|\]: \S+|<[^>\n]+>|https?://\S+"),  # links, HTML
    re.compile(r"^\s*\(\S+\)=\s*$", re.M),  # MyST targets
    re.compile(r"^\s*:[a-z-]+:.*$", re.M),  # directive options
]
_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
    r"twenty|thirty|forty|fifty|sixty|ninety|a few|a hundred|a thousand|half an?)"
)
_UNIT = (
    r"(?:s|ms|sec|secs|seconds?|min|mins|minutes?|hours?|h|nats?|bits?|"
    r"GFLOP/s|FLOP/s|it/s|steps?/s|updates? per second)"
)
NUMBER = re.compile(
    r"(?<![\w.,/])(?<![\w.,/]-)(?:"  # "-0.5" counts; "top-0.9" does not
    r"\d[\d,]*\.\d+(?:\s*(?:%|x\b|×))?"  # 1.63, 12.8x, 0.5%
    r"|\d[\d,]*\s*(?:%|×|x\b|per ?cent\b)"  # 95%, 3×
    r"|\d[\d,]*\s+" + _UNIT + r"\b"  # 76 s, 30 minutes
    r"|\b" + _WORD + r"(?:[ -]" + _WORD + r")?\s+" + _UNIT + r"\b"  # four minutes
    r")",
    re.I,
)


def strip(markdown: str) -> str:
    """``markdown`` with code, math, roles, links and HTML blanked out."""
    for pattern in _SKIP:
        markdown = pattern.sub(" ", markdown)
    return markdown


def typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """``(number, its line)`` for every measured-looking number typed in
    ``markdown`` without ``{glue:text}``, ``{runtime}`` or ``{lit}``."""
    found = []
    for line in strip(markdown).splitlines():
        for match in NUMBER.finditer(line):
            found.append((match.group().strip(), line.strip()))
    return found


def pages(root: Path = ROOT) -> list[Path]:
    """The book's prose: every notebook and every Markdown page under book/."""
    notebooks = sorted(
        p
        for p in (root / "notebooks").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and not p.name.startswith(".")
    )
    return notebooks + sorted((root / "book").glob("*.md")) + [root / "README.md"]


def page_prose(path: Path) -> list[str]:
    """The Markdown of a page: a notebook's markdown cells, or the file."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [c.source for c in nb.cells if c.cell_type == "markdown"]
    return [path.read_text(encoding="utf-8")]


def report(root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """``{page: [(number, line), ...]}`` for every page with a typed number."""
    out = {}
    for path in pages(root):
        hits = [h for text in page_prose(path) for h in typed_numbers(text)]
        if hits:
            out[path.relative_to(root).as_posix()] = hits
    return out


def main() -> int:
    found = report()
    for page, hits in found.items():
        for number, line in hits:
            print(f"{page}: {number!r} in: {line[:100]}")
    total = sum(len(h) for h in found.values())
    print(f"{total} typed number(s) in {len(found)} page(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
