"""The committed notebooks can be trusted: integrity, freshness, table of contents,
and the Colab install URL. Each check is also shown to fail when it should."""

from __future__ import annotations

import functools
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbtools  # noqa: E402

NOTEBOOKS = nbtools.notebooks()


def test_there_are_notebooks() -> None:
    assert any(p.name == "getting_started.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_fresh_and_clean(path: Path) -> None:
    assert nbtools.check_notebook(path, glued=_all_glued()) == []


@functools.cache
def _all_glued() -> dict[str, float]:
    return nbtools.all_glued()


def test_toc_and_notebooks_match() -> None:
    assert nbtools.check_toc() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_from_the_configured_repository(path: Path) -> None:
    repo = nbtools.book_config()["repository"]
    first = nbtools.code_cells(nbformat.read(path, as_version=4))[0].source
    urls = re.findall(r"git\+(\S+?)@(\w[\w.-]*)\"", first)
    assert urls == [(repo["url"], repo["branch"])]


# ------------------------------------------------ the checks can fail


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A copy of the book's config with the getting-started notebook in it."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "aigc_utils",
        tmp_path / "aigc_utils",
        ignore=shutil.ignore_patterns("__pycache__", "longrun"),
    )
    src = ROOT / "notebooks" / "00_start" / "getting_started.ipynb"
    dst = tmp_path / "notebooks" / "00_start" / "getting_started.ipynb"
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    (tmp_path / "book").mkdir()
    for entry in nbtools.toc_files(tmp_path):
        target = tmp_path / f"{entry}.md"
        if not (tmp_path / f"{entry}.ipynb").exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("# page\n")
    toc = (tmp_path / "_toc.yml").read_text()
    kept = [
        line
        for line in toc.splitlines()
        if "notebooks/" not in line or "getting_started" in line
    ]
    (tmp_path / "_toc.yml").write_text("\n".join(kept) + "\n")
    nbtools.write_glued(tmp_path)
    assert nbtools.check([dst], tmp_path) == []
    return tmp_path


def nb_path(book: Path) -> Path:
    return book / "notebooks" / "00_start" / "getting_started.ipynb"


def edit(book: Path, change) -> list[str]:
    path = nb_path(book)
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)
    return nbtools.check([path], book)


def test_freshness_fails_on_an_edited_cell(book: Path) -> None:
    def change(nb):
        (cell,) = [c for c in nbtools.code_cells(nb) if "epochs=5" in c.source]
        cell.source = cell.source.replace("epochs=5", "epochs=6")

    problems = edit(book, change)
    assert len(problems) == 1 and "stale outputs" in problems[0]


def test_integrity_fails_on_unexecuted_cell(book: Path) -> None:
    problems = edit(
        book, lambda nb: nbtools.code_cells(nb)[2].update(execution_count=None)
    )
    assert any("never executed" in p for p in problems)


def test_integrity_fails_on_out_of_order_run(book: Path) -> None:
    problems = edit(
        book, lambda nb: nbtools.code_cells(nb)[2].update(execution_count=40)
    )
    assert any("top to bottom" in p for p in problems)


def test_integrity_fails_on_error_output(book: Path) -> None:
    error = nbformat.v4.new_output("error", ename="E", evalue="boom", traceback=[])
    problems = edit(book, lambda nb: nbtools.code_cells(nb)[1].outputs.append(error))
    assert any("error output" in p for p in problems)


def test_integrity_fails_on_a_different_setup_cell(book: Path) -> None:
    def change(nb):
        cell = nbtools.code_cells(nb)[0]
        cell.source = cell.source.replace("aigc-course/aigc-course", "someone/fork")

    problems = edit(book, change)
    assert any("standard setup cell" in p for p in problems)


def test_integrity_fails_without_hash(book: Path) -> None:
    problems = edit(book, lambda nb: nb.metadata.pop("aigc"))
    assert any("no code hash" in p for p in problems)


def test_integrity_fails_on_a_knob_shown_on_the_website(book: Path) -> None:
    def change(nb):
        cell = nbtools.code_cells(nb)[2]
        cell.source += "\nknob(print, w=[1, 2])"
        nb.metadata["aigc"]["code_sha256"] = nbtools.code_hash(nb)

    problems = edit(book, change)
    assert len(problems) == 1 and "remove-output" in problems[0]

    def tag(nb):
        nbtools.code_cells(nb)[2].metadata["tags"] = ["remove-output"]

    assert edit(book, tag) == []


def test_integrity_fails_on_kept_widget_state(book: Path) -> None:
    problems = edit(book, lambda nb: nb.metadata.update(widgets={"state": {}}))
    assert any("widget state" in p for p in problems)


def test_toc_check_fails_both_ways(book: Path) -> None:
    extra = book / "notebooks" / "00_start" / "orphan.ipynb"
    shutil.copy(nb_path(book), extra)
    (book / "_toc.yml").write_text(
        (book / "_toc.yml").read_text() + "  - caption: X\n    chapters:\n"
        "      - file: notebooks/missing\n"
    )
    problems = nbtools.check_toc(book)
    assert any("orphan.ipynb is not in _toc.yml" in p for p in problems)
    assert any("'notebooks/missing'" in p for p in problems)


def test_unreadable_notebook(book: Path) -> None:
    path = nb_path(book)
    path.write_text("{not json")
    assert "not a readable notebook" in nbtools.check_notebook(path, book)[0]


def _stream_text(rel: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / rel, as_version=4)
    return "".join(
        o.get("text", "")
        for c in nbtools.code_cells(nb)
        for o in c.outputs
        if o.output_type == "stream"
    )


def _code_text(rel: str) -> str:
    return "\n".join(
        c.source
        for c in nbtools.code_cells(
            nbformat.read(ROOT / "notebooks" / rel, as_version=4)
        )
    )


_GLUED_CALL = re.compile(r"""glued\(\s*["']([a-z0-9_]+)["']\s*\)""")


def test_numbers_from_other_chapters_are_read_not_typed() -> None:
    # a chapter that compares with another reads the other's glued number with
    # report.glued; the old quote("name", 1.23) typed a copy that could go stale
    glued = nbtools.all_glued()
    seen = 0
    for path in NOTEBOOKS:
        code = _code_text(str(path.relative_to(ROOT / "notebooks")))
        assert "quote(" not in code, f"{path.name} types a number with quote()"
        for name in _GLUED_CALL.findall(code):
            assert name in glued, f"{path.name} reads {name}, which no chapter glues"
            seen += 1
    assert seen >= 5


def test_the_package_holds_every_glued_number() -> None:
    assert nbtools.check_glued() == []


def test_glued_copy_check_fails_when_it_lags(book: Path) -> None:
    copy = book / "aigc_utils" / "assets" / "glued.json"
    copy.write_text('{"made_up": 1.0}\n')
    assert any("does not hold" in p for p in nbtools.check_glued(book))


def test_freshness_fails_when_a_package_module_changes(book: Path) -> None:
    module = book / "aigc_utils" / "runtime.py"
    module.write_text(module.read_text() + "\n# a changed default\n")
    problems = nbtools.check([nb_path(book)], book)
    assert len(problems) == 1
    assert "aigc_utils/runtime.py changed" in problems[0], problems


def test_freshness_fails_when_a_number_it_read_changes(book: Path) -> None:
    def change(nb):
        nb.metadata["aigc"]["glued_read"] = {"some_other_number": 1.0}

    problems = edit(book, change)
    assert len(problems) == 1 and "some_other_number" in problems[0]


def _shown_sources() -> list[tuple[str, str]]:
    shown = []
    for path in NOTEBOOKS:
        for cell in nbtools.code_cells(nbformat.read(path, as_version=4)):
            if "show_source(" not in cell.source:
                continue
            for out in cell.outputs:
                text = out.get("data", {}).get("text/plain")
                if out.output_type == "execute_result" and text:
                    shown.append((path.name, text))
    return shown


def _package_lines() -> list[str]:
    return [
        line.strip()
        for module in sorted((ROOT / "aigc_utils").rglob("*.py"))
        for line in module.read_text().splitlines()
    ] + ["<module boundary>"]


def _is_run_of(needle: list[str], haystack: list[str]) -> bool:
    first = needle[0]
    return any(
        haystack[i : i + len(needle)] == needle
        for i, line in enumerate(haystack)
        if line == first
    )


def test_every_show_source_output_is_the_current_source() -> None:
    # the page shows the package's code; a module edited after the chapter ran
    # would leave the page showing code that no longer exists
    shown = _shown_sources()
    assert len(shown) >= 40
    package = _package_lines()
    stale = [
        name
        for name, text in shown
        if not _is_run_of([line.strip() for line in text.splitlines()], package)
    ]
    assert stale == [], f"show_source output differs from the package in {stale}"


def test_show_source_check_catches_an_edit() -> None:
    name, text = _shown_sources()[0]
    lines = [line.strip() for line in text.splitlines()]
    lines[len(lines) // 2] += "  # edited"
    assert not _is_run_of(lines, _package_lines())


_FILE_REF = re.compile(
    r"(?<![\w/.-])([\w./-]*[A-Za-z0-9_-]+\.(?:md|py|ipynb|pt|json|txt|toml|yml|cfg|bib))\b"
)
# file names that are named as examples of what a reader creates, or that live in
# other projects the prose names with their repository
_EXTERNAL_FILES = {
    "train.py",
    "model.py",
    "sample.py",
    "config.json",
    "requirements.txt",
    "setup.py",
    "input.txt",
    "it.ipynb",
}


def _prose_texts() -> list[tuple[str, str]]:
    texts = [
        (str(p.relative_to(ROOT)), p.read_text())
        for p in sorted((ROOT / "book").glob("*.md"))
    ]
    texts.append(("README.md", (ROOT / "README.md").read_text()))
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        texts.append((str(path.relative_to(ROOT)), md))
    return texts


def test_prose_cites_only_files_the_repository_has() -> None:
    names = {
        p.name
        for p in ROOT.rglob("*")
        if ".venv" not in p.parts and ".git" not in p.parts
    }
    missing = []
    for where, text in _prose_texts():
        text = re.sub(
            r"https?://\S+", "", text
        )  # links to other sites are not files here
        for ref in _FILE_REF.findall(text):
            base = ref.rsplit("/", 1)[-1]
            if base in _EXTERNAL_FILES or base in names:
                continue
            missing.append(f"{where}: {ref}")
    assert not missing, (
        "prose cites files that are not in the repository:\n" + "\n".join(missing)
    )
