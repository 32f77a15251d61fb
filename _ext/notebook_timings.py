"""Tables of the notebooks' measured run times, built when the book is built.

``make execute`` records each notebook's wall time in its metadata
(``metadata.aigc.wall_seconds``, see ``tools/nbtools.py``). Typing those numbers
into a page would make them stale the next time a chapter is re-executed, so
the teacher's kit asks for them with two directives instead:

``notebook-timings``
    One row per notebook of ``_toc.yml``, in reading order, with its part, a
    link to it and its measured time.

``notebook-schedule``
    A teaching plan. Each content line is ``label | activity | paths``, where
    ``paths`` are notebook paths as in ``_toc.yml`` separated by spaces. A row
    lists the notebooks as links with the sum of their measured times. A path
    that is not (yet) in the book is shown as plain text marked "not yet in
    the book" and adds no time, so the plan never links to a missing page and
    fills itself in as chapters land.

Two roles keep numbers in prose honest (``tests/test_prose_numbers.py``
fails on a measured-looking number that uses neither, nor ``{glue:text}``):

``{runtime}`this``` (or a notebook path as in ``_toc.yml``)
    The recorded run time of the page's own (or that) notebook ("about 4
    minutes"), so that "running it takes ..." follows its last ``make execute``.

``{lit}``
    A literal that is not a measurement of ours (a year, an image size, a
    published figure beside its citation, a setting the reader chooses):
    rendered as plain text, and exempt from the check.

Each page that uses a directive depends on the notebooks it reads, so an
incremental build refreshes the numbers after a notebook is re-executed.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.application import Sphinx

META_KEY = "aigc"


def toc_parts(srcdir: Path) -> list[tuple[str, str]]:
    """``(part caption, file)`` for every ``file:`` entry of ``_toc.yml``."""
    toc = yaml.safe_load((srcdir / "_toc.yml").read_text(encoding="utf-8"))
    found = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            if isinstance(chapter, dict) and "file" in chapter:
                found.append((part.get("caption", ""), chapter["file"]))
    return found


def wall_seconds(path: Path) -> float | None:
    """The recorded run time of the notebook at ``path``; None if there is none."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    seconds = meta.get(META_KEY, {}).get("wall_seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def minutes(seconds: float) -> str:
    """``83.4`` -> ``"1.4 min"``; under a minute in seconds."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _doc_link(docname: str) -> nodes.Node:
    """A ``{doc}`` cross-reference showing the page's title."""
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="doc",
        reftarget="/" + docname,
        refexplicit=False,
        refwarn=True,
    )
    ref += nodes.inline(docname, docname)
    return ref


def _table(header: list[str], rows: list[list[nodes.Node | str]]) -> nodes.table:
    table = nodes.table(classes=["notebook-timings"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for cells, parent in [(header, head)] + [(r, body) for r in rows]:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            para = nodes.paragraph()
            if isinstance(cell, nodes.Node):
                para += cell
            else:
                para += nodes.Text(cell)
            entry += para
            row += entry
        parent += row
    return table


class _Base(Directive):
    def _srcdir(self) -> Path:
        return Path(self.state.document.settings.env.srcdir)

    def _seconds(self, docname: str) -> float | None:
        path = self._srcdir() / f"{docname}.ipynb"
        if not path.exists():
            return None
        self.state.document.settings.env.note_dependency(str(path))
        return wall_seconds(path)


class NotebookTimings(_Base):
    """Every notebook of the book with its measured run time."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        rows: list[list[nodes.Node | str]] = []
        total = 0.0
        for caption, docname in toc_parts(self._srcdir()):
            if not (self._srcdir() / f"{docname}.ipynb").exists():
                continue  # pages without code have no run time
            seconds = self._seconds(docname)
            total += seconds or 0.0
            shown = minutes(seconds) if seconds is not None else "not executed"
            rows.append([caption, _doc_link(docname), shown])
        rows.append(["all notebooks", "", minutes(total)])
        return [_table(["part", "notebook", "measured run time"], rows)]


class NotebookSchedule(_Base):
    """A plan (weeks, sessions) whose times are summed from the notebooks."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        listed = {doc for _, doc in toc_parts(self._srcdir())}
        rows: list[list[nodes.Node | str]] = []
        for line in self.content:
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 3:
                raise self.error(f"need 'label | activity | paths', got {line!r}")
            label, activity, paths = parts
            cell = nodes.inline()
            total, known = 0.0, 0
            for i, docname in enumerate(paths.split()):
                if i:
                    cell += nodes.Text(", ")
                if docname in listed:
                    cell += _doc_link(docname)
                    seconds = self._seconds(docname)
                    if seconds is not None:
                        total += seconds
                        known += 1
                else:
                    cell += nodes.emphasis(text=f"{docname} (not yet in the book)")
            time = minutes(total) if known else "-"
            rows.append([label, activity, cell, time])
        header = ["when", "activity", "notebooks", "measured CPU time"]
        return [_table(header, rows)]


def about(seconds: float) -> str:
    """A run time as prose: ``76`` -> ``"about 1 minute"``, ``575`` ->
    ``"about 10 minutes"``, ``21`` -> ``"about 20 seconds"``."""
    if seconds < 55:
        n = max(10, int(round(seconds / 10.0)) * 10)
        return f"about {n} seconds"
    n = max(1, int(round(seconds / 60.0)))
    return f"about {n} minute{'s' if n != 1 else ''}"


def lit_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{lit}`1998``` -> the text itself: a literal that is not our measurement."""
    return [nodes.Text(text)], []


def runtime_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{runtime}`this``` -> the page's notebook's recorded run time, in words."""
    env = inliner.document.settings.env
    docname = env.docname if text.strip() in ("", "this") else text.strip().lstrip("/")
    path = Path(env.srcdir) / f"{docname}.ipynb"
    seconds = wall_seconds(path) if path.exists() else None
    if seconds is None:
        msg = inliner.reporter.error(
            f"{{runtime}}: no executed notebook {docname}.ipynb with a recorded "
            "run time (run make execute)",
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    env.note_dependency(str(path))
    return [nodes.Text(about(seconds))], []


def setup(app: Sphinx) -> dict:
    app.add_role("lit", lit_role)
    app.add_role("runtime", runtime_role)
    app.add_directive("notebook-timings", NotebookTimings)
    app.add_directive("notebook-schedule", NotebookSchedule)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
