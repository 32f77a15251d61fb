"""Student versions of the notebooks (``nbtools.py student``): the solutions are
gone, nothing else changed, a placeholder fails its self-check and the reference
solution passes it, and every committed notebook follows the exercise
convention (exercise cell, hidden solution cell, check cell)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from aigc_utils.report import check

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbtools  # noqa: E402

NOTEBOOKS = nbtools.notebooks()


def cell(kind: str, source: str, *tags: str, count: int | None = None):
    if kind == "markdown":
        return new_markdown_cell(source, metadata={"tags": list(tags)})
    out = new_output("stream", name="stdout", text="printed\n")
    return new_code_cell(
        source,
        metadata={"tags": list(tags)} if tags else {},
        execution_count=count,
        outputs=[out] if count else [],
    )


def exercise_notebook() -> nbformat.NotebookNode:
    """A teacher's notebook, executed, with one exercise and one open question."""
    nb = new_notebook(
        metadata={
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            },
            "aigc": {"code_sha256": "0" * 64, "wall_seconds": 1.0},
        }
    )
    nb.cells = [
        cell("markdown", "# A chapter\nCompute $(1 + 3) \\cdot 0.2 - 3 \\cdot 0.5$."),
        cell("code", "from aigc_utils.report import check", count=1),
        cell(
            "code",
            "your_answer = None  # replace None with your computation",
            "exercise",
            count=2,
        ),
        cell(
            "code",
            "your_answer = (1 + 3) * 0.2 - 3 * 0.5",
            "solution",
            "hide-input",
            count=3,
        ),
        cell("code", 'check("arith", your_answer, -0.7, tol=1e-9)', count=4),
        cell("markdown", "Why is the result negative?"),
        cell("markdown", "Because 1.5 > 0.8.", "solution"),
        cell("code", "print('done')", "hide-output", count=5),
    ]
    return nb


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course root with two notebooks, one of them with an exercise."""
    for rel, nb in [
        ("notebooks/01_part/chapter.ipynb", exercise_notebook()),
        ("notebooks/00_start/plain.ipynb", new_notebook(cells=[cell("code", "1")])),
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, tmp_path / rel)
    return tmp_path


def student_cli(course: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``nbtools.py student ARGS`` run on the course at ``course``."""
    monkeypatch.setattr(nbtools, "ROOT", course)
    return nbtools.main(["student", *args])


# ------------------------------------------------------------ the student version


def test_student_version_drops_solutions_outputs_and_run_metadata() -> None:
    teacher = exercise_notebook()
    student, removed = nbtools.student_version(teacher)
    assert removed == 2
    assert not any("solution" in nbtools.tags(c) for c in student.cells)
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "aigc" not in student.metadata
    assert student.metadata.kernelspec.name == "python3"
    # the teacher's notebook is untouched
    assert len(teacher.cells) == 8 and teacher.cells[1].outputs


def test_student_version_keeps_other_cells_unchanged_and_in_order() -> None:
    teacher = exercise_notebook()
    student, _ = nbtools.student_version(teacher)
    kept = [c for c in teacher.cells if "solution" not in nbtools.tags(c)]
    assert [c.id for c in student.cells] == [c.id for c in kept]
    for new, old in zip(student.cells, kept):
        assert (new.cell_type, new.source, new.metadata) == (
            old.cell_type,
            old.source,
            old.metadata,
        )
    nbformat.validate(student)


def _run(cells: list[nbformat.NotebookNode]) -> dict:
    namespace: dict = {}
    for c in cells:
        if c.cell_type == "code":
            exec(c.source, namespace)  # noqa: S102 - our own synthetic cells
    return namespace


def test_placeholder_fails_the_check_and_the_solution_passes_it() -> None:
    teacher = exercise_notebook()
    student, _ = nbtools.student_version(teacher)
    with pytest.raises(NotImplementedError, match="replace the placeholder"):
        _run(student.cells)
    assert _run(teacher.cells)["your_answer"] == pytest.approx(-0.7)
    # and the check really compares: a wrong answer fails it
    with pytest.raises(AssertionError, match="off by"):
        check("arith", 0.7, -0.7)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("your_answer = None  # replace None", True),
        ("x = 3\nyour_answer = ...", True),
        ("mu, sigma = None, None", True),
        ("answer: float = None", True),
        ("%matplotlib inline\nanswer = None", True),
        ("your_answer = 0.0", False),
        ("your_answer = None +", False),
        ("print(None)", False),
    ],
)
def test_has_placeholder(source: str, expected: bool) -> None:
    assert nbtools.has_placeholder(source) is expected


# ------------------------------------------------------------ the command


def test_command_writes_student_notebooks(
    course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "out"
    assert student_cli(course, monkeypatch, str(out)) == 0
    printed = capsys.readouterr().out
    assert "notebooks/01_part/chapter.ipynb: 2 solution cell(s) removed" in printed
    assert "notebooks/00_start/plain.ipynb: 0 solution cell(s) removed" in printed
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ipynb"))
    assert written == [
        "notebooks/00_start/plain.ipynb",
        "notebooks/01_part/chapter.ipynb",
    ]
    student = nbformat.read(out / written[1], as_version=4)
    assert len(student.cells) == 6 and student.metadata.kernelspec.name == "python3"
    with zipfile.ZipFile(out / "aigc-course-student-notebooks.zip") as archive:
        assert sorted(n for n in archive.namelist() if n.endswith(".ipynb")) == written
        zipped = nbformat.reads(archive.read(written[1]).decode(), as_version=4)
    assert zipped == student


def test_command_defaults_to_build_student(
    course: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert student_cli(course, monkeypatch) == 0
    assert (course / "_build/student/notebooks/01_part/chapter.ipynb").is_file()
    assert str(course / "_build" / "student") in capsys.readouterr().out


def test_command_refuses_to_overwrite_the_notebooks(
    course: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert student_cli(course, monkeypatch, str(course)) == 1
    assert "would overwrite" in capsys.readouterr().err
    assert len(nbformat.read(course / "notebooks/01_part/chapter.ipynb", 4).cells) == 8


def _break(course: Path, change) -> None:
    path = course / "notebooks/01_part/chapter.ipynb"
    nb = nbformat.read(path, as_version=4)
    change(nb.cells)
    nbformat.write(nb, path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda cells: cells[2].update(source="your_answer = 0.8 - 1.5"),
            "cell 3 is tagged 'exercise' but assigns no placeholder",
        ),
        (
            lambda cells: cells.insert(3, cell("markdown", "Now solve it.")),
            "cell 5 is a 'solution' code cell that does not directly follow",
        ),
        (
            lambda cells: cells[2].metadata.update(tags=[]),
            "cell 4 is a 'solution' code cell that does not directly follow",
        ),
        (
            lambda cells: cells[3].metadata.update(tags=["solution"]),
            "cell 4 is a 'solution' code cell without the 'hide-input' tag",
        ),
    ],
    ids=["no-placeholder", "solution-not-next", "no-exercise", "not-hidden"],
)
def test_command_rejects_a_broken_exercise(
    course: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    change,
    message: str,
) -> None:
    _break(course, change)
    out = tmp_path / "out"
    assert student_cli(course, monkeypatch, str(out)) == 1
    err = capsys.readouterr().err
    assert "no student version written" in err
    assert f"notebooks/01_part/chapter.ipynb: {message}" in err
    assert not out.exists()  # nothing half-written


# ------------------------------------------------------------ the real notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_follows_the_exercise_convention(path: Path) -> None:
    # every exercise cell has a placeholder; every solution code cell directly
    # follows an exercise cell and is hidden in the book
    nb = nbformat.read(path, as_version=4)
    assert nbtools.exercise_problems(nb, path.relative_to(ROOT)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_a_clean_student_version(path: Path) -> None:
    teacher = nbformat.read(path, as_version=4)
    student, removed = nbtools.student_version(teacher)
    kept = [c for c in teacher.cells if "solution" not in nbtools.tags(c)]
    assert removed == len(teacher.cells) - len(kept)
    assert [(c.cell_type, c.source, c.metadata) for c in student.cells] == [
        (c.cell_type, c.source, c.metadata) for c in kept
    ]
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert student.metadata.kernelspec.name == "python3"
