"""Grading submitted notebooks (``tools/grade.py``): planted right, wrong, empty
and partly right submissions of a tiny chapter give exactly the expected CSV
rows; a notebook out of time keeps what it did before; the layout's usage
errors; and the exercise names of every real chapter are found by parsing."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import nbtools  # noqa: E402

CHAPTER = "01_part/tiny"
PLACEHOLDER = (
    "replace the placeholder (None or ...) in the cell above with your own "
    "computation, then run this check again"
)


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


def teacher_notebook() -> nbformat.NotebookNode:
    """A chapter with three exercises, in the course's pattern."""
    cells = [
        new_markdown_cell("# A tiny chapter"),
        code("from aigc_utils.report import check"),
    ]
    for name, var, solution, expected, tol in [
        ("tiny_sum", "your_sum", "1 + 2", "3", "tol=0"),
        ("tiny_half", "your_half", "1 / 2", "0.5", "tol=1e-9"),
        ("tiny_words", "your_count", 'len("a b c".split())', "3", "tol=0"),
    ]:
        cells += [
            new_markdown_cell(f"Exercise {name}."),
            code(f"{var} = None  # replace None with your computation", "exercise"),
            code(f"{var} = {solution}", "solution", "hide-input"),
            code(f"check({name!r}, {var}, {expected}, {tol})"),
        ]
    return new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


def student_notebook(**answers: str) -> nbformat.NotebookNode:
    """The handed-out version with the exercise cells of ``answers`` (variable
    name -> new source of its cell) replaced."""
    nb, _ = nbtools.student_version(teacher_notebook())
    for cell in nb.cells:
        var = cell.source.split(" = ")[0]
        if "exercise" in nbtools.tags(cell) and var in answers:
            cell.source = answers[var]
    return nb


RIGHT = {"your_sum": "your_sum = 1 + 2", "your_half": "your_half = 0.5"}
RIGHT["your_count"] = "your_count = 3"


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A course root whose chapters are the tiny one and two that share a name."""
    chapters = {
        "01_part/tiny": teacher_notebook(),
        "00_start/intro": new_notebook(cells=[code('check("intro_a", 1, 1)')]),
        "02_other/intro": new_notebook(cells=[code('check("intro_b", 1, 1)')]),
    }
    root = tmp_path / "course"
    for chapter, nb in chapters.items():
        path = root / "notebooks" / f"{chapter}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    monkeypatch.setattr(grade, "ROOT", root)
    return root


def plant(folder: Path, files: dict[str, nbformat.NotebookNode | str]) -> Path:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            nbformat.write(content, path)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def read_rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [tuple(row) for row in csv.reader(handle)]


# ------------------------------------------------------------ planted submissions


def test_right_wrong_empty_and_partly_right_submissions(
    course: Path, tmp_path: Path, capsys
) -> None:
    wrong = student_notebook(
        your_sum="your_sum = 1 + 3",
        your_half='your_half = "half"',
        your_count="your_count = 4",
    )
    # a stale "right" output from the student's own run must not count
    stale = "check tiny_sum: your answer 3.0 is right\n"
    first_check = next(c for c in wrong.cells if "check('tiny_sum'" in c.source)
    first_check.outputs = [new_output("stream", name="stdout", text=stale)]
    partly = student_notebook(
        your_sum="your_sum = 4",  # wrong, and the exercises after it still run
        your_half="your_half = 1 / 2",
        your_count="count = 3  # the student renamed the variable",
    )
    subs = plant(
        tmp_path / "subs",
        {
            "ada/tiny.ipynb": student_notebook(**RIGHT),
            "bob/notebooks/01_part/tiny.ipynb": wrong,  # the archive, unpacked
            "cyd/tiny.ipynb": student_notebook(),
            "cyd/.ipynb_checkpoints/tiny-checkpoint.ipynb": "skipped",
            "cyd/notes.txt": "files other than notebooks are skipped",
            "dee/tiny.ipynb": partly,
            "eve/tiny.ipynb": "{not a notebook",
            "fay/README.txt": "a student who handed in nothing",
        },
    )
    before = snapshot(subs)
    out = tmp_path / "out" / "grades.csv"
    assert grade.main([str(subs), "--out", str(out)]) == 0
    assert snapshot(subs) == before  # nothing written into the submissions
    rows = read_rows(out)
    assert rows == [
        ("student", "chapter", "exercise", "status", "detail"),
        ("ada", CHAPTER, "tiny_sum", "passed", "your answer 3.0 is right"),
        ("ada", CHAPTER, "tiny_half", "passed", "your answer 0.5 is right"),
        ("ada", CHAPTER, "tiny_words", "passed", "your answer 3.0 is right"),
        (
            "bob",
            CHAPTER,
            "tiny_sum",
            "failed",
            "your answer 4.0 is off by 1.0 (tolerance 0.0); check your computation",
        ),
        ("bob", CHAPTER, "tiny_half", "failed", "expected a number, got str"),
        (
            "bob",
            CHAPTER,
            "tiny_words",
            "failed",
            "your answer 4.0 is off by 1.0 (tolerance 0.0); check your computation",
        ),
        ("cyd", CHAPTER, "tiny_sum", "not attempted", PLACEHOLDER),
        ("cyd", CHAPTER, "tiny_half", "not attempted", PLACEHOLDER),
        ("cyd", CHAPTER, "tiny_words", "not attempted", PLACEHOLDER),
        (
            "dee",
            CHAPTER,
            "tiny_sum",
            "failed",
            "your answer 4.0 is off by 1.0 (tolerance 0.0); check your computation",
        ),
        ("dee", CHAPTER, "tiny_half", "passed", "your answer 0.5 is right"),
        (
            "dee",
            CHAPTER,
            "tiny_words",
            "not attempted",
            "its check cell raised NameError: name 'your_count' is not defined",
        ),
    ] + [
        (
            "eve",
            CHAPTER,
            name,
            "not attempted",
            rows[-1][4],  # the JSON parser's words, checked below
        )
        for name in ("tiny_sum", "tiny_half", "tiny_words")
    ]
    assert rows[-1][4].startswith("not a readable notebook (")
    printed = capsys.readouterr()
    assert "ada  3 passed, 0 failed, 0 not attempted, in 1 notebook(s)" in printed.out
    assert "dee  1 passed, 1 failed, 1 not attempted, in 1 notebook(s)" in printed.out
    assert "fay  0 passed, 0 failed, 0 not attempted, in 0 notebook(s)" in printed.out
    assert "fay: no notebooks; nothing graded" in printed.err
    assert f"wrote 15 row(s) to {out}" in printed.out


def test_a_notebook_out_of_time_keeps_the_checks_before_the_cut(
    course: Path, tmp_path: Path
) -> None:
    nb = student_notebook(
        your_sum="your_sum = 3",
        your_half="import time\ntime.sleep(60)\nyour_half = 0.5",
        your_count="your_count = 3",
    )
    nb.cells = [c for c in nb.cells if "tiny_words" not in c.source]  # deleted
    subs = plant(tmp_path / "subs", {"ada/tiny.ipynb": nb})
    out = tmp_path / "grades.csv"
    assert grade.main([str(subs), "--out", str(out), "--timeout", "4"]) == 0
    assert read_rows(out)[1:] == [
        ("ada", CHAPTER, "tiny_sum", "passed", "your answer 3.0 is right"),
        (
            "ada",
            CHAPTER,
            "tiny_half",
            "not attempted",
            "its check never ran: the notebook ran past its 4 s limit in cell 7",
        ),
        ("ada", CHAPTER, "tiny_words", "not attempted", "no cell calls its check"),
    ]


# ------------------------------------------------------------ pieces, no kernel


def test_outcomes_reads_check_lines_and_exercise_errors_only() -> None:
    def error(ename: str, evalue: str) -> nbformat.NotebookNode:
        return new_output("error", ename=ename, evalue=evalue, traceback=[])

    cell = code("...")
    cell.outputs = [
        new_output(
            "stream", name="stdout", text="x\ncheck a_b: your answer 1.0 is right\n"
        ),
        new_output("stream", name="stdout", text="check c: looks fine\n"),  # not one
        error("AssertionError", "metric m = 1.0 (gate <= 0.5) FAILED"),  # a gate
        error("AssertionError", "exercise d: your answer 2.0 is off by 1.0\nmore"),
        error("TypeError", "exercise e: expected a number, got list"),
        error("NotImplementedError", "exercise f: replace the placeholder"),
        error("ValueError", "exercise g: something else"),
    ]
    assert grade.outcomes(new_notebook(cells=[cell])) == {
        "a_b": ("passed", "your answer 1.0 is right"),
        "d": ("failed", "your answer 2.0 is off by 1.0"),
        "e": ("failed", "expected a number, got list"),
        "f": ("not attempted", "replace the placeholder"),
    }


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ('check("a", x, 1)\nreport.check("b", y, 2, tol=0)', ["a", "b"]),
        ("%matplotlib inline\ncheck('c', None if f is None else f(1), 0.0)", ["c"]),
        ('# check("commented", x, 1)\nprint("check(\'quoted\')")', []),
        ('check("broken", x,\n', ["broken"]),  # not Python: the regex
        ("gate('m', 1.0, at_most=2.0)", []),
    ],
)
def test_check_names(source: str, names: list[str]) -> None:
    assert grade.check_names(source) == names


@pytest.mark.parametrize(
    ("rel", "chapter"),
    [
        ("tiny.ipynb", "01_part/tiny"),
        ("homework/tiny.ipynb", "01_part/tiny"),
        ("02_other/intro.ipynb", "02_other/intro"),
        ("notebooks/00_start/intro.ipynb", "00_start/intro"),
    ],
)
def test_chapter_of(rel: str, chapter: str) -> None:
    chapters = ["00_start/intro", "01_part/tiny", "02_other/intro"]
    assert grade.chapter_of(Path(rel), chapters) == chapter


# ------------------------------------------------------------ usage errors


def _flat(subs: Path) -> None:
    plant(subs, {"alice__tiny.ipynb": student_notebook()})


def _unknown(subs: Path) -> None:
    plant(subs, {"alice/tiny (1).ipynb": student_notebook()})


def _ambiguous(subs: Path) -> None:
    plant(subs, {"alice/intro.ipynb": student_notebook()})


def _twice(subs: Path) -> None:
    plant(subs, {"alice/tiny.ipynb": "", "alice/01_part/tiny.ipynb": ""})


def _empty(subs: Path) -> None:
    plant(subs, {".DS_Store": ""})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "is not a folder of submissions"),
        (_flat, "alice__tiny.ipynb stands beside the student folders"),
        (_unknown, "alice/tiny (1).ipynb is not a chapter's notebook"),
        (_ambiguous, "several chapters have this file name (00_start/intro, 02_other"),
        (_twice, "alice has two notebooks of 01_part/tiny"),
        (_empty, "holds no student folders"),
    ],
)
def test_layout_errors_run_nothing_and_write_nothing(
    course: Path,
    tmp_path: Path,
    make: Callable[[Path], None] | None,
    message: str,
    capsys,
) -> None:
    subs = tmp_path / "subs"
    if make is not None:
        make(subs)
    out = tmp_path / "grades.csv"
    assert grade.main([str(subs), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_csv_may_not_go_into_the_submissions(
    course: Path, tmp_path: Path, capsys
) -> None:
    subs = plant(tmp_path / "subs", {"alice/tiny.ipynb": student_notebook()})
    assert grade.main([str(subs), "--out", str(subs / "grades.csv")]) == 2
    assert "is inside" in capsys.readouterr().err
    assert not (subs / "grades.csv").exists()


@pytest.mark.parametrize("argv", [[], ["subs", "--timeout", "0"], ["a", "b"]])
def test_bad_arguments(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        grade.main(argv)
    assert exit_.value.code == 2
    assert "usage: " in capsys.readouterr().err


def test_make_grade_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SUBMISSIONS", "MAKEFLAGS")}
    stamp = ".venv/.installed-stamp"  # -o: never reinstall for this test
    done = subprocess.run(
        ["make", "-s", "-o", stamp, "grade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "make grade SUBMISSIONS=" in done.stdout + done.stderr
    missing = tmp_path / "nowhere"
    done = subprocess.run(
        ["make", "-s", "-o", stamp, "grade", f"SUBMISSIONS={missing}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert f"{missing} is not a folder of submissions" in done.stderr


# ------------------------------------------------------------ the real chapters

CHECK_TEXT = re.compile(r"""\bcheck\(\s*["']([a-z][a-z0-9_]*)["']""")


CHAPTERS = {
    p.relative_to(ROOT / "notebooks").with_suffix("").as_posix(): p
    for p in nbtools.notebooks()
}


@pytest.fixture(scope="module")
def real_exercises() -> dict[str, list[str]]:
    return grade.chapter_exercises(ROOT)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapters_exercises_are_found_and_unique(
    chapter: str, real_exercises: dict[str, list[str]]
) -> None:
    teacher = nbformat.read(CHAPTERS[chapter], as_version=4)
    names = grade.notebook_exercises(teacher)
    assert names, "no check() call found: the chapter has no gradable exercise"
    assert len(names) == len(set(names)), f"an exercise name repeats: {names}"
    # parsing finds what a plain text search finds
    text = "\n".join(c.source for c in teacher.cells if c.cell_type == "code")
    assert names == CHECK_TEXT.findall(text)
    # and the handed-out version keeps every check cell
    student, _ = nbtools.student_version(teacher)
    assert grade.notebook_exercises(student) == names
    assert real_exercises[chapter] == names
