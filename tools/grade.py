"""Grade students' notebooks: run each one and record every exercise's self-check.

    python tools/grade.py SUBMISSIONS [--out grades.csv] [--timeout 1800]
    make grade SUBMISSIONS=dir [GRADES=grades.csv]

``SUBMISSIONS`` holds one folder per student, named by the student's id, with
that student's notebooks under the file names ``make student`` gave them::

    SUBMISSIONS/alice/gan_game.ipynb
    SUBMISSIONS/alice/02_math/vae.ipynb          two chapters are vae.ipynb:
    SUBMISSIONS/alice/04_autoencoders/vae.ipynb  the part's folder tells which
    SUBMISSIONS/bob/notebooks/05_gans/dcgan.ipynb   the handed-out zip, unpacked

A notebook belongs to the chapter with its file name; where two chapters share
a file name, to the one whose path under ``notebooks/`` ends the notebook's
path. Hidden files and folders (``.ipynb_checkpoints``) and ``__MACOSX`` are
skipped, and so are files other than notebooks inside a student's folder.
Anything else is a usage error, reported before anything runs: a file beside
the student folders (a flat ``alice__gan_game.ipynb`` included), a notebook
whose name is no chapter's, a shared name without its part folder, or one
chapter twice for a student.

The exercises of a chapter are the names of the ``check("name", ...)`` calls in
the teacher's notebook under ``notebooks/``. Each submission runs top to bottom
in a fresh kernel, as ``make execute`` runs a chapter, but from a copy in
memory with its old outputs cleared, in an empty temporary folder, with the
environment of this command (``AIGC_DATA_DIR`` included) and with errors
allowed, so that one failed check does not hide the next. Nothing is written
into ``SUBMISSIONS``. Each exercise gets one status:

    passed         its check printed ``check NAME: your answer ... is right``
    failed         its check raised AssertionError (a wrong value) or
                   TypeError (not a number)
    not attempted  its check raised NotImplementedError (the placeholder is
                   still there), or no check of it ran: its cell was deleted or
                   raised another error first, or the notebook ran out of time

The CSV has one row per student, chapter and exercise (``student, chapter,
exercise, status, detail``); ``detail`` is the first line of the check's
message, or why no check ran. A summary per student is printed.

The checks run inside the students' notebooks, so a student who edits a check
cell can fake a pass; and grading runs the students' code with your rights, so
grade in a container or an account of its own.

Exit status: 0 when every submission was graded, however the students did; 2
for a usage error (then nothing runs and nothing is written).
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import math
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbtools  # noqa: E402

ROOT = nbtools.ROOT
PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
COLUMNS = ("student", "chapter", "exercise", "status", "detail")
DEFAULT_TIMEOUT = 1800  # seconds a notebook may run, as ``make execute`` allows
SKIPPED_NAMES = ("__MACOSX",)  # what archivers add beside the notebooks
DETAIL_CHARS = 200

CHECK_LINE = re.compile(r"^check ([a-z][a-z0-9_]*): (your answer .* is right)\s*$")
EXERCISE_ERROR = re.compile(r"^exercise ([a-z][a-z0-9_]*): (.*)")
STATUS_OF_ERROR = {
    "AssertionError": FAILED,
    "TypeError": FAILED,
    "NotImplementedError": NOT_ATTEMPTED,
}
CHECK_CALL = re.compile(r"""(?<![\w])check\(\s*["']([a-z][a-z0-9_]*)["']""")


class UsageError(ValueError):
    """The command was asked for something it cannot do; nothing has run."""


class Row(NamedTuple):
    student: str
    chapter: str
    exercise: str
    status: str
    detail: str


class Submission(NamedTuple):
    student: str
    chapter: str  # path under notebooks/ without .ipynb, e.g. 02_math/gan_game
    path: Path


# ---------------------------------------------------------------------------
# what each chapter asks


def check_names(source: str) -> list[str]:
    """The exercise names of the ``check("name", ...)`` calls in a code cell's
    source, in order (``check`` or ``report.check``). IPython magics and shell
    lines are ignored; a cell that is not Python falls back to a regex."""
    try:
        tree = ast.parse(nbtools.python_only(source))
    except SyntaxError:
        return CHECK_CALL.findall(source)
    calls = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Call)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    return [
        call.args[0].value
        for call in calls
        if (
            (isinstance(call.func, ast.Name) and call.func.id == "check")
            or (isinstance(call.func, ast.Attribute) and call.func.attr == "check")
        )
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    ]


def notebook_exercises(nb: nbformat.NotebookNode) -> list[str]:
    """Every ``check`` name of ``nb``'s code cells, in order (repeats kept)."""
    return [
        name
        for cell in nb.cells
        if cell.cell_type == "code"
        for name in check_names(cell.source)
    ]


def chapter_exercises(root: Path = ROOT) -> dict[str, list[str]]:
    """``{chapter: exercise names}`` of every notebook under ``root/notebooks``,
    a chapter named by its path there without ``.ipynb`` (``02_math/gan_game``)."""
    return {
        path.relative_to(root / "notebooks").with_suffix("").as_posix(): list(
            dict.fromkeys(notebook_exercises(nbformat.read(path, as_version=4)))
        )
        for path in nbtools.notebooks(root)
    }


# ---------------------------------------------------------------------------
# who submitted what


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_NAMES


def chapter_of(rel: Path, chapters: Iterable[str]) -> str:
    """The chapter a student's notebook ``rel`` (its path inside the student's
    folder) belongs to.

    Raises:
        UsageError: no chapter has its file name, or several do and its
            folders do not say which.
    """
    same_name = [c for c in chapters if c.rsplit("/", 1)[-1] == rel.stem]
    if not same_name:
        raise UsageError(
            f"{rel.as_posix()} is not a chapter's notebook (no chapter under "
            "notebooks/ has that file name); name it as make student did"
        )
    if len(same_name) == 1:
        return same_name[0]
    parts = rel.with_suffix("").parts
    ending = [
        c for c in same_name if parts[-len(c.split("/")) :] == tuple(c.split("/"))
    ]
    if len(ending) != 1:
        raise UsageError(
            f"{rel.as_posix()}: several chapters have this file name "
            f"({', '.join(same_name)}); put it in its part's folder, e.g. "
            f"{same_name[0]}.ipynb"
        )
    return ending[0]


def find_submissions(folder: Path, chapters: Iterable[str]) -> list[Submission]:
    """Every student's notebooks under ``folder`` (one folder per student), by
    student and then in the chapters' order.

    Raises:
        UsageError: ``folder`` is missing or breaks the layout of the module's
            docstring; the message lists every problem.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of submissions")
    chapters = list(chapters)
    order = {c: i for i, c in enumerate(chapters)}
    problems: list[str] = []
    found: list[Submission] = []
    students = [p for p in sorted(folder.iterdir()) if not _skipped(p.name)]
    for entry in students:
        if not entry.is_dir():
            problems.append(
                f"{entry.name} stands beside the student folders; put each "
                "student's notebooks in a folder named by the student's id "
                f"(e.g. {folder}/alice/gan_game.ipynb)"
            )
            continue
        mine: dict[str, Path] = {}
        for path in sorted(entry.rglob("*.ipynb")):
            rel = path.relative_to(entry)
            if any(_skipped(part) for part in rel.parts):
                continue
            try:
                chapter = chapter_of(rel, chapters)
            except UsageError as err:
                problems.append(f"{entry.name}/{err}")
                continue
            if chapter in mine:
                problems.append(
                    f"{entry.name} has two notebooks of {chapter}: "
                    f"{mine[chapter].relative_to(entry).as_posix()} and "
                    f"{rel.as_posix()}; keep one"
                )
                continue
            mine[chapter] = path
        found += [
            Submission(entry.name, c, mine[c]) for c in sorted(mine, key=order.get)
        ]
    if not students:
        problems.append(f"{folder} holds no student folders")
    if problems:
        raise UsageError("\n".join(problems))
    return found


# ---------------------------------------------------------------------------
# running a submission


def fresh_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without outputs or execution counts, so that every
    outcome read afterwards comes from this run."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def run_submission(nb: nbformat.NotebookNode, timeout: float, cwd: Path) -> str:
    """Run ``nb`` top to bottom in a fresh kernel started in ``cwd``, keeping
    the outputs in ``nb`` and going on past errors; return why the run
    stopped early ("" when every cell ran).

    Unlike ``nbtools.run_notebook``, ``timeout`` bounds the whole notebook (in
    seconds, not counting the kernel's start), and a run cut short keeps the
    outputs of the cells before the cut.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        allow_errors=True,
        coalesce_streams=True,
    )
    with client.setup_kernel():
        deadline = time.monotonic() + timeout
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = deadline - time.monotonic()
            where = f"cell {index + 1}"
            if left <= 0:
                return f"the notebook ran past its {timeout:g} s limit before {where}"
            client.timeout = max(1, math.ceil(left))
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                return f"the notebook ran past its {timeout:g} s limit in {where}"
            except DeadKernelError:
                return f"the kernel died in {where} (out of memory, or exit())"
    return ""


def _first_line(text: str) -> str:
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return line if len(line) <= DETAIL_CHARS else line[: DETAIL_CHARS - 3] + "..."


def outcomes(nb: nbformat.NotebookNode) -> dict[str, tuple[str, str]]:
    """``{exercise: (status, detail)}`` of every check outcome in ``nb``'s
    outputs; where one exercise has several, the last counts."""
    found: dict[str, tuple[str, str]] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.output_type == "stream" and out.get("name") == "stdout":
                for line in out.text.splitlines():
                    match = CHECK_LINE.match(line)
                    if match:
                        found[match[1]] = (PASSED, match[2])
            elif out.output_type == "error" and out.ename in STATUS_OF_ERROR:
                match = EXERCISE_ERROR.match(out.evalue)
                if match:
                    status = STATUS_OF_ERROR[out.ename]
                    found[match[1]] = (status, _first_line(match[2]))
    return found


def why_no_outcome(nb: nbformat.NotebookNode, name: str, stopped: str) -> str:
    """Why the executed ``nb`` holds no outcome of exercise ``name``."""
    cells = [
        c for c in nb.cells if c.cell_type == "code" and name in check_names(c.source)
    ]
    if not cells:
        return "no cell calls its check"
    errors = [o for o in cells[-1].get("outputs", []) if o.output_type == "error"]
    if errors:
        return (
            f"its check cell raised {errors[0].ename}: {_first_line(errors[0].evalue)}"
        )
    if stopped and cells[-1].get("execution_count") is None:
        return f"its check never ran: {stopped}"
    return "its check cell printed no outcome"


def grade_notebook(sub: Submission, names: list[str], timeout: float) -> list[Row]:
    """One row per exercise ``names`` of ``sub``'s chapter, from a run of a
    copy of the submission (the file is only read)."""
    try:
        nb = fresh_copy(nbformat.read(sub.path, as_version=4))
    except Exception as err:  # noqa: BLE001 - any unreadable file is the student's
        reason = f"not a readable notebook ({_first_line(err)})"
        return [Row(*sub[:2], name, NOT_ATTEMPTED, reason) for name in names]
    with tempfile.TemporaryDirectory(prefix="aigc-grade-") as tmp:
        stopped = run_submission(nb, timeout, Path(tmp))
    found = outcomes(nb)
    rows = []
    for name in names:
        if name in found:
            rows.append(Row(*sub[:2], name, *found[name]))
        else:
            reason = why_no_outcome(nb, name, stopped)
            rows.append(Row(*sub[:2], name, NOT_ATTEMPTED, reason))
    return rows


# ---------------------------------------------------------------------------
# the command


def write_csv(rows: list[Row], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def summary(rows: list[Row], students: list[str]) -> str:
    """One line per student: how many exercises passed, failed, not attempted."""
    lines = []
    width = max(map(len, students), default=0)
    for student in students:
        mine = [r for r in rows if r.student == student]
        counts = Counter(r.status for r in mine)
        chapters = len({r.chapter for r in mine})
        lines.append(
            f"{student:<{width}}  {counts[PASSED]} passed, {counts[FAILED]} failed, "
            f"{counts[NOT_ATTEMPTED]} not attempted, in {chapters} notebook(s)"
        )
    return "\n".join(lines)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Layout and statuses: see the docstring of tools/grade.py.",
    )
    parser.add_argument(
        "submissions", type=Path, help="one folder per student, named by the id"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("grades.csv"), help="default: grades.csv"
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each notebook may run (default {DEFAULT_TIMEOUT})",
    )
    args = parser.parse_args(argv)
    try:
        exercises = chapter_exercises(ROOT)
        plan = find_submissions(args.submissions, exercises)
        if args.out.resolve().is_relative_to(args.submissions.resolve()):
            raise UsageError(
                f"--out {args.out} is inside {args.submissions}; grading writes "
                "nothing there, so put the CSV elsewhere"
            )
    except UsageError as err:
        print(f"grade: {err}", file=sys.stderr)
        return 2
    students = sorted(
        p.name
        for p in args.submissions.iterdir()
        if p.is_dir() and not _skipped(p.name)
    )
    rows: list[Row] = []
    for sub in plan:
        names = exercises[sub.chapter]
        if not names:
            print(f"{sub.student} {sub.chapter}: the chapter has no exercises; not run")
            continue
        print(f"grading {sub.student} {sub.chapter} ...", flush=True)
        start = time.perf_counter()
        rows += grade_notebook(sub, names, args.timeout)
        print(f"  {len(names)} exercise(s), {time.perf_counter() - start:.0f} s")
    for student in sorted(set(students) - {s.student for s in plan}):
        print(f"{student}: no notebooks; nothing graded", file=sys.stderr)
    write_csv(rows, args.out)
    print(summary(rows, students))
    print(f"wrote {len(rows)} row(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
