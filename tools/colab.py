"""Colab editions of the chapters, with every MyST construct resolved.

    python tools/colab.py            # write colab/student and colab/teacher
    python tools/colab.py --check    # exit 1 when one lags its chapter

Colab renders plain Markdown and math, not MyST. For every notebook under
``notebooks/`` this writes two copies, at the same path below ``colab/student/``
and ``colab/teacher/``, with outputs and execution counts stripped and the
Markdown rewritten:

- ``{glue:text}`` (``name:.3f``, or ``path::name:.3f``): the number the executed run
  glued, formatted as MyST-NB formats it;
- ``{doc}`` and ``{term}``: links to the page, or to the glossary entry, on the
  website (``SITE_URL``); ``{cite}``, ``{cite:p}``, ``{cite:t}``: author and
  year, linked to the website's references page;
- ``{lit}``: its text; ``{runtime}``: the recorded run time in words;
- admonitions and non-teacher dropdowns: a bold title over their text;
  figures: a Markdown image with its caption; ``(label)=`` targets: removed.

The student copy is ``nbtools.student_version`` (no ``solution`` cells) and
also drops each dropdown written for teachers ("Suggested answers ... (for
teachers)"). The teacher copy keeps the solutions: a solution code cell opens
with a Colab form title (``SOLUTION_TITLE``), so Colab shows it collapsed, and
a teacher dropdown becomes a heading with its text. A role or directive this
module does not know raises ``ValueError`` naming it: teach it here first.

Each copy records its source and a SHA-256 of the source's cells and the
values it wrote in (``metadata.aigc_colab``); ``tests/test_colab.py``
regenerates every copy and fails when a committed one differs.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import posixpath
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import nbtools  # noqa: E402
from notebook_timings import about  # noqa: E402


def site_url(repo_url: str) -> str:
    """The GitHub Pages address of a GitHub repository:
    ``https://github.com/org/repo`` -> ``https://org.github.io/repo/``."""
    match = re.fullmatch(
        r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url
    )
    if not match:
        raise ValueError(f"not a GitHub repository URL: {repo_url!r} (_config.yml)")
    return f"https://{match[1].lower()}.github.io/{match[2]}/"


SITE_URL = site_url(nbtools.book_config()["repository"]["url"])
COLAB_DIR = ROOT / "colab"
VARIANTS = ("student", "teacher")
META_KEY = "aigc_colab"
SOLUTION_TITLE = '# @title Reference solution (teacher) { display-mode: "form" }'
TEACHER_ONLY = re.compile(r"for teachers|suggested answer", re.IGNORECASE)
BIBLIOGRAPHY, GLOSSARY = "book/bibliography", "book/glossary"
GLUE_MIME = "application/papermill.record/text/plain"

# A role, or an inline code span (whose text is left alone).
INLINE = re.compile(
    r"(?P<role>\{(?P<name>[A-Za-z][\w:.+-]*)\}`(?P<body>[^`]+)`)"
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))",
    re.DOTALL,
)
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})(?P<info>.*)$")
LABEL = re.compile(r"^ {0,3}\([^()\s]+\)=\s*$\n?", re.MULTILINE)
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
ADMONITIONS = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}


# ---------------------------------------------------------------------------
# what the conversion reads: the book's glue, run times, titles, terms, sources


@dataclass
class Book:
    """Everything the conversion looks up, loaded once (``Book.load``).

    ``glue``: name -> (docname that glued it, its text/plain); ``seconds``:
    docname -> recorded run time; ``titles``: docname of every ``_toc.yml``
    page -> its title; ``terms``: lower-cased glossary term -> its anchor;
    ``bib``: citation key -> pybtex entry.
    """

    glue: dict[str, tuple[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    terms: dict[str, str] = field(default_factory=dict)
    bib: dict = field(default_factory=dict)
    notebooks: dict[str, nbformat.NotebookNode] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path = ROOT) -> Book:
        book = cls()
        for path in nbtools.notebooks(root):
            docname = path.relative_to(root).with_suffix("").as_posix()
            nb = nbformat.read(path, as_version=4)
            book.notebooks[docname] = nb
            for name, text in nbtools.glue_texts(nb).items():
                if name in book.glue:
                    raise ValueError(
                        f"{name!r} is glued by both {book.glue[name][0]} and {docname}"
                    )
                book.glue[name] = (docname, text)
            seconds = nb.metadata.get(nbtools.META_KEY, {}).get("wall_seconds")
            if isinstance(seconds, (int, float)):
                book.seconds[docname] = float(seconds)
        for docname in nbtools.toc_files(root):
            if docname in book.notebooks:
                cells = book.notebooks[docname].cells
                text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
            else:
                text = (root / f"{docname}.md").read_text(encoding="utf-8")
            book.titles[docname] = page_title(text, docname)
        book.terms = glossary_anchors((root / f"{GLOSSARY}.md").read_text("utf-8"))
        book.bib = bibliography(root)
        return book


def page_title(markdown: str, docname: str) -> str:
    """The text of the first ``# `` heading, which Sphinx uses as the title."""
    match = re.search(r"^# +(.+?)\s*$", markdown, re.MULTILINE)
    if not match:
        raise ValueError(f"{docname} has no '# ' title heading")
    return match[1]


def glossary_anchors(markdown: str) -> dict[str, str]:
    """Lower-cased term -> its HTML anchor on the glossary page.

    The terms are the unindented lines of the ``{glossary}`` directive; the
    anchor is Sphinx's own ``make_id`` of ``term-<term>``.
    """
    from sphinx.util.nodes import _make_id

    match = re.search(r"^```\{glossary\}\n(.*?)^```\s*$", markdown, re.M | re.S)
    if not match:
        raise ValueError("book/glossary.md has no ```{glossary} block")
    anchors: dict[str, str] = {}
    for line in match[1].splitlines():
        if not line.strip() or line[0].isspace() or line.startswith(":"):
            continue
        term = line.strip()
        anchor = _make_id(f"term-{term}")
        if anchor == "term" or anchor in anchors.values():
            raise ValueError(
                f"glossary term {term!r} gets no anchor of its own ({anchor!r}); "
                "Sphinx would number it, so no stable link can be written"
            )
        anchors[term.lower()] = anchor
    return anchors


def bibliography(root: Path = ROOT) -> dict:
    """Citation key -> pybtex entry, from every bib file in ``_config.yml``."""
    from pybtex.database import parse_file

    entries: dict = {}
    for name in nbtools.book_config(root)["bibtex_bibfiles"]:
        for key, entry in parse_file(str(root / name)).entries.items():
            if key in entries:
                raise ValueError(f"citation key {key!r} is defined twice ({name})")
            entries[key] = entry
    return entries


# ---------------------------------------------------------------------------
# inline roles


@dataclass
class Converter:
    """Converts the Markdown of one page (``docname``) for one variant."""

    book: Book
    docname: str
    variant: str = "teacher"
    used: dict[str, str] = field(default_factory=dict)  # values written in

    def resolve(self, target: str) -> str:
        """A ``{doc}`` target, relative to this page or absolute, as a docname."""
        target = re.sub(r"\.(ipynb|md)$", "", target.strip())
        if target.startswith("/"):
            return posixpath.normpath(target.lstrip("/"))
        return posixpath.normpath(
            posixpath.join(posixpath.dirname(self.docname), target)
        )

    def glue(self, body: str) -> str:
        doc, _, rest = body.rpartition("::")
        name, _, spec = rest.partition(":")
        if name not in self.book.glue:
            raise ValueError(f"{self.docname}: nothing glued as {name!r} ({body!r})")
        owner, text = self.book.glue[name]
        if owner != (self.resolve(doc) if doc else self.docname):
            raise ValueError(
                f"{self.docname}: {body!r}: {name!r} is glued by {owner}; "
                "write path::name with that notebook's path"
            )
        from myst_nb.core.variables import format_plain_text

        self.used[f"glue:{name}"] = text
        return format_plain_text(text, spec or "s")  # exactly as the website

    def doc(self, body: str) -> str:
        match = EXPLICIT.match(body)
        target = self.resolve(match["target"] if match else body)
        if target not in self.book.titles:
            raise ValueError(f"{self.docname}: {{doc}} {body!r}: no page {target}")
        text = match["text"] if match else self.book.titles[target]
        return f"[{text}]({SITE_URL}{target}.html)"

    def term(self, body: str) -> str:
        match = EXPLICIT.match(body)
        text, term = (match["text"], match["target"]) if match else (body, body)
        anchor = self.book.terms.get(" ".join(term.split()).lower())
        if anchor is None:
            raise ValueError(
                f"{self.docname}: {{term}} {term!r} is not in the glossary"
            )
        return f"[{text}]({SITE_URL}{GLOSSARY}.html#{anchor})"

    def cite(self, body: str, textual: bool) -> str:
        url = f"{SITE_URL}{BIBLIOGRAPHY}.html"
        parts = []
        for key in (k.strip() for k in body.split(",")):
            if key not in self.book.bib:
                raise ValueError(
                    f"{self.docname}: no reference {key!r} in the bib files"
                )
            who, year = author_year(self.book.bib[key])
            if textual:
                parts.append(f"[{who} ({year})]({url})")
            else:
                parts.append(f"[{who}, {year}]({url})")
        return ", ".join(parts) if textual else f"({'; '.join(parts)})"

    def runtime(self, body: str) -> str:
        docname = self.docname if body.strip() in ("", "this") else body.strip("/ ")
        if docname not in self.book.seconds:
            raise ValueError(f"{self.docname}: no recorded run time for {docname}")
        self.used[f"runtime:{docname}"] = str(self.book.seconds[docname])
        return about(self.book.seconds[docname])

    def role(self, name: str, body: str) -> str:
        roles: dict[str, Callable[[str], str]] = {
            "glue": self.glue,
            "glue:text": self.glue,
            "doc": self.doc,
            "term": self.term,
            "cite": lambda b: self.cite(b, textual=False),
            "cite:p": lambda b: self.cite(b, textual=False),
            "cite:t": lambda b: self.cite(b, textual=True),
            "lit": lambda b: b,
            "runtime": self.runtime,
            "math": lambda b: f"${b}$",
        }
        if name not in roles:
            raise ValueError(
                f"{self.docname}: unknown MyST role {{{name}}}`{body}`; "
                "teach tools/colab.py to convert it"
            )
        return roles[name](body)

    def inline(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            if match["code"]:
                return match[0]
            return self.role(match["name"], match["body"])

        return INLINE.sub(replace, text)

    # -----------------------------------------------------------------------
    # blocks

    def markdown(self, text: str) -> str:
        """``text`` with every role and directive resolved to plain Markdown."""
        lines, out, plain = text.split("\n"), [], []
        dropped = False
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match or (match["fence"][0] == "`" and "`" in match["info"]):
                plain.append(lines[i])
                i += 1
                continue
            indent, fence = match["indent"], match["fence"]
            close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            end = i + 1
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            body = [
                ln[len(indent) :] if ln.startswith(indent) else ln
                for ln in lines[i + 1 : end]
            ]
            info = match["info"].strip()
            if plain:
                out.append(self.inline(LABEL.sub("", "\n".join(plain))))
            plain = []
            if info.startswith("{"):
                block = self.directive(info, body)
                if block is None:
                    dropped = True
                else:
                    out.append(
                        "\n".join(indent + ln if ln else ln for ln in block.split("\n"))
                    )
            else:  # a code block: verbatim
                out.append("\n".join(lines[i : end + 1]))
            i = end + 1
        if plain or not out:
            out.append(self.inline(LABEL.sub("", "\n".join(plain))))
        result = "\n".join(out)
        if dropped:
            result = re.sub(r"\n{3,}", "\n\n", result).strip()
        return result

    def directive(self, info: str, body: list[str]) -> str | None:
        """A directive as plain Markdown; None when this variant leaves it out."""
        match = re.fullmatch(r"\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)", info)
        if not match:
            raise ValueError(f"{self.docname}: cannot read directive {info!r}")
        name, arg = match["name"], match["arg"].strip()
        options = {}
        while body and (opt := re.fullmatch(r":([\w-]+):\s*(.*)", body[0].strip())):
            options[opt[1]] = opt[2].strip()
            body = body[1:]
        content = self.markdown("\n".join(body).strip("\n"))
        if name == "dropdown" and TEACHER_ONLY.search(arg):
            if self.variant == "student":
                return None
            return f"#### {self.inline(arg)}\n\n{content}"
        if name in ("admonition", "dropdown") or name in ADMONITIONS:
            title = self.inline(arg) if arg else ADMONITIONS.get(name, "")
            return f"**{title}**\n\n{content}" if title else content
        if name in ("figure", "image"):
            url = self.image_url(arg)
            alt = options.get("alt") or " ".join(content.split()) or "figure"
            image = f"![{alt}]({url})"
            return f"{image}\n\n*{content}*" if name == "figure" and content else image
        if name == "math":
            return f"$$\n{content}\n$$"
        raise ValueError(
            f"{self.docname}: unknown MyST directive {{{name}}}; "
            "teach tools/colab.py to convert it"
        )

    def image_url(self, path: str) -> str:
        """An image path as a URL Colab can load (the repository's raw file)."""
        if re.match(r"https?://", path):
            return path
        repo = nbtools.book_config()["repository"]
        raw = repo["url"].replace(
            "https://github.com/", "https://raw.githubusercontent.com/"
        )
        return f"{raw}/{repo.get('branch', 'main')}/{self.resolve(path)}"


def author_year(entry) -> tuple[str, str]:
    """``("Goodfellow et al.", "2014")``: last names as the website's author-year
    style gives them (one, two joined by "and", or the first and "et al."),
    falling back on the editors, then the title."""
    from pybtex.backends.plaintext import Backend
    from pybtex.richtext import Text
    from sphinxcontrib.bibtex.style.names.last import LastNameStyle

    # the classes, not pybtex's plugin lookup: that reads every entry point
    # on each call, and a chapter cites dozens of works
    text, last = Backend(), LastNameStyle()
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [last.format(p, True).format().render(text) for p in persons]
    if len(names) > 2:
        who = f"{names[0]} et al."
    elif names:
        who = " and ".join(names)
    else:
        who = Text.from_latex(entry.fields.get("title", entry.key)).render(text)
    return who, entry.fields.get("year", "n.d.")


# ---------------------------------------------------------------------------
# notebooks


def teacher_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without outputs, each solution code cell collapsed
    under a Colab form title."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if nbtools.SOLUTION in nbtools.tags(cell):
                cell.source = f"{SOLUTION_TITLE}\n{cell.source}"
    out.metadata.pop(nbtools.META_KEY, None)
    out.metadata.pop("widgets", None)
    return out


def source_hash(nb: nbformat.NotebookNode, used: dict[str, str]) -> str:
    """SHA-256 of the source's cells (kind, text, tags) and the values used."""
    cells = [[c.cell_type, c.source, nbtools.tags(c)] for c in nb.cells]
    payload = json.dumps([cells, sorted(used.items())], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def colab_notebook(book: Book, docname: str, variant: str) -> nbformat.NotebookNode:
    """The Colab edition of one chapter (``docname`` as in ``_toc.yml``).

    Raises:
        ValueError: an unknown role or directive, a broken reference, or an
            exercise that breaks the convention of ``nbtools.student``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    source = book.notebooks[docname]
    problems = nbtools.exercise_problems(source, docname)
    if problems:
        raise ValueError("\n".join(problems))
    if variant == "student":
        nb, _ = nbtools.student_version(source)
    else:
        nb = teacher_version(source)
    convert = Converter(book, docname, variant)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = convert.markdown(cell.source)
            left = myst_left(cell.source)
            if left:
                raise ValueError(f"{docname}: MyST left after conversion: {left}")
            if not cell.source.strip():
                continue
        cells.append(cell)
    nb.cells = [intro_cell(book, docname, variant), *cells]
    nb.metadata["colab"] = {"toc_visible": True}
    nb.metadata[META_KEY] = {
        "generated_by": "tools/colab.py",
        "source": f"{docname}.ipynb",
        "source_sha256": source_hash(source, convert.used),
        "variant": variant,
    }
    return nb


def intro_cell(book: Book, docname: str, variant: str) -> nbformat.NotebookNode:
    page = f"[{book.titles.get(docname, docname)}]({SITE_URL}{docname}.html)"
    which = (
        "the student version: the reference solutions are left out"
        if variant == "student"
        else "the teacher version: each reference solution follows its exercise "
        "in a collapsed cell (double-click it to show the code), and the "
        "suggested answers are written out"
    )
    text = (
        f"*The Colab edition of {page}, from [Generative AI from Scratch]"
        f"({SITE_URL}); this is {which}. Run the setup cell first; the website "
        "shows every output and figure.*"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = "colab-edition"
    return cell


def myst_left(markdown: str) -> list[str]:
    """MyST syntax left in ``markdown``: roles outside code, directives,
    ``(label)=`` targets."""
    left = [
        m[0] for m in INLINE.finditer(markdown) if m["role"] and m["name"][0].islower()
    ]
    left += re.findall(r"^ *(?:`{3,}|:{3,}) *\{[^}]*\}", markdown, re.MULTILINE)
    left += [m.strip() for m in LABEL.findall(markdown)]
    return left


def colab_path(docname: str, variant: str, out: Path = COLAB_DIR) -> Path:
    """``notebooks/05_gans/dcgan`` -> ``out/<variant>/05_gans/dcgan.ipynb``."""
    rel = Path(docname).relative_to("notebooks")
    return out / variant / rel.with_suffix(".ipynb")


def as_text(nb: nbformat.NotebookNode) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def editions(book: Book) -> dict[tuple[str, str], str]:
    """``{(docname, variant): notebook text}`` for every chapter and variant."""
    return {
        (docname, variant): as_text(colab_notebook(book, docname, variant))
        for docname in book.notebooks
        for variant in VARIANTS
    }


def orphans(texts: dict[tuple[str, str], str], out: Path) -> list[Path]:
    """The edition files under ``out`` that belong to no chapter any more."""
    wanted = {colab_path(d, v, out) for d, v in texts}
    return [
        path
        for variant in VARIANTS
        for path in sorted((out / variant).rglob("*.ipynb"))
        if path not in wanted
    ]


def write(out: Path = COLAB_DIR, root: Path = ROOT) -> int:
    """Write every edition under ``out``, remove stale ones; returns the count."""
    texts = editions(Book.load(root))
    for stale in orphans(texts, out):
        stale.unlink()
    for (docname, variant), text in texts.items():
        path = colab_path(docname, variant, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return len(texts)


def lagging(out: Path = COLAB_DIR, root: Path = ROOT) -> list[str]:
    """The editions under ``out`` that differ from what the chapters give now."""
    texts = editions(Book.load(root))
    problems = []
    for (docname, variant), text in texts.items():
        path = colab_path(docname, variant, out)
        if not path.exists():
            problems.append(f"{path.relative_to(root)} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path.relative_to(root)} lags {docname}.ipynb")
    for extra in orphans(texts, out):
        problems.append(f"{extra.relative_to(root)} has no chapter")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="report editions that lag, write nothing"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = lagging()
            for problem in problems:
                print(problem)
            if problems:
                print("run make colab to refresh them")
            return 1 if problems else 0
        count = write()
    except ValueError as err:
        print(f"no Colab edition written:\n{err}", file=sys.stderr)
        return 1
    print(f"wrote {count} Colab notebook(s) to {COLAB_DIR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
