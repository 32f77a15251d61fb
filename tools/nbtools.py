"""Execute the course notebooks and check that what is committed can be trusted.

    python tools/nbtools.py execute notebooks/00_start/getting_started.ipynb
    python tools/nbtools.py check            # every notebook
    python tools/nbtools.py setup-cell       # print the standard first cell
    python tools/nbtools.py timings          # how long each notebook runs
    python tools/nbtools.py student [OUT]    # notebooks without the solutions

``execute`` runs a notebook top to bottom in a fresh kernel and writes it back
with its outputs, the SHA-256 of its code cells and its wall time in the
notebook metadata (``metadata.aigc``). It is the only sanctioned way to produce
committed outputs.

``check`` reads the committed files without running them and reports:
every code cell executed, in order, in one run; no error outputs; the first
code cell is the standard setup cell (with the repository named in
``_config.yml``); the code still hashes to what was executed (freshness); every
notebook is in ``_toc.yml`` and every ``_toc.yml`` entry exists.

``student`` writes a student version of every notebook under ``OUT`` (default
``_build/student``) at the same relative path, and all of them zipped into
``OUT/aigc-course-student-notebooks.zip``: the cells tagged ``solution``
removed, every output and execution count cleared. An exercise is three cells:
a code cell tagged ``exercise`` that assigns a placeholder (``answer = None`` or
``answer = ...``), directly after it the reference solution, a code cell tagged
``solution`` and ``hide-input`` (collapsed in the book, run in CI), then a cell
calling ``aigc_utils.report.check``. A markdown cell tagged ``solution`` (a
suggested answer to an open question) may stand anywhere and is removed too.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
META_KEY = "aigc"

SETUP_CELL = """\
# Standard setup (the same first cell in every chapter): on Colab, install the
# course's helper package; then pick the device and seed everything.
try:
    import aigc_utils
except ImportError:
    %pip install -q "aigc_utils @ git+{repo_url}@{branch}"
    import aigc_utils
from aigc_utils.runtime import describe_environment, get_device, seed_everything

device = get_device()
seed_everything(0)
print(describe_environment(device))"""


def book_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def setup_cell(root: Path = ROOT) -> str:
    """The standard first code cell, with the repository from ``_config.yml``."""
    repo = book_config(root)["repository"]
    return SETUP_CELL.format(repo_url=repo["url"], branch=repo.get("branch", "main"))


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 over the source of every non-empty code cell, in order."""
    sources = [c.source for c in code_cells(nb)]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(
        p
        for p in (root / "notebooks").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and not p.name.startswith(".")
    )


def toc_files(root: Path = ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (without extension), in order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return found


# ---------------------------------------------------------------------------
# execute


def run_notebook(
    path: Path | nbformat.NotebookNode,
    timeout: int = 1800,
    allow_errors: bool = False,
    cwd: Path | None = None,
) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook (a path, or a notebook object with ``cwd``) top to bottom
    in a fresh kernel started in ``cwd`` (default: the notebook's folder);
    return the executed notebook and the wall time. Nothing is written."""
    from nbclient import NotebookClient

    if isinstance(path, Path):
        nb, cwd = nbformat.read(path, as_version=4), cwd or path.parent
    else:
        nb = path
    if cwd is None:
        raise ValueError("give cwd, the folder the notebook runs in")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        allow_errors=allow_errors,
        coalesce_streams=True,  # and apply carriage returns (progress bars)
    )
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


# What a notebook's outputs depend on besides its own code: the package's
# modules it imported, and the shipped files those modules load.
DEPENDENCY_PROBE = (
    "import json as _j, sys as _s\n"
    "_r = getattr(_s.modules.get('aigc_utils.report'), '_read', {})\n"
    "_f = sorted(getattr(_s.modules.get('aigc_utils.report'), '_files', set()))\n"
    "print(_j.dumps([sorted({getattr(m, '__file__', None) or '' "
    "for n, m in list(_s.modules.items()) if n.split('.')[0] == 'aigc_utils'} - {''})"
    " + _f, _r]))"
)
GLUED = ROOT / "aigc_utils" / "assets" / "glued.json"
ASSETS_OF = {  # module -> the shipped files it reads (globs, from the root)
    "aigc_utils/evaluator.py": ["aigc_utils/assets/mnist_evaluator.pt"],
    "aigc_utils/longrun.py": ["aigc_utils/assets/longrun/*"],
}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dependency_hashes(module_files: list[str], root: Path = ROOT) -> dict[str, str]:
    """``{path relative to root: sha256}`` of the given package modules and of
    the assets they load (``ASSETS_OF``)."""
    rels = set()
    for name in module_files:
        path = Path(name).resolve()
        if not path.is_relative_to(root.resolve()):
            continue  # an installed copy elsewhere says nothing about this tree
        rel = path.relative_to(root.resolve()).as_posix()
        rels.add(rel)
        for pattern in ASSETS_OF.get(rel, []):
            rels.update(p.relative_to(root).as_posix() for p in root.glob(pattern))
    return {rel: file_sha256(root / rel) for rel in sorted(rels)}


def execute(path: Path, timeout: int = 1800) -> float:
    """Run ``path`` top to bottom in a fresh kernel and save it with outputs,
    its code hash, the hashes of the package modules and assets it used, and
    its wall time."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DEPENDENCY_PROBE))
    nb, seconds = run_notebook(nb, timeout, cwd=path.parent)
    probe = nb.cells.pop()
    modules, read = json.loads(
        "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
    )
    # Widget state is not kept: a live kernel re-creates the sliders, and the
    # website shows each knob's sweep as a static figure instead.
    nb.metadata.pop("widgets", None)
    nb.metadata[META_KEY] = {
        "code_sha256": code_hash(nb),
        "depends": dependency_hashes(modules),
        "glued_read": read,
        "wall_seconds": round(seconds, 1),
    }
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, path)
    write_glued()
    return seconds


def glue_texts(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{name: text/plain}`` of every value ``nb`` glued (MyST-NB's records)."""
    found = {}
    for cell in code_cells(nb):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            text = out.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                found[name] = text
    return found


def glued_values(nb: nbformat.NotebookNode) -> dict[str, float]:
    """``{name: value}`` of every number ``nb`` glued (texts that are not
    numbers are left out)."""
    values = {}
    for name, text in glue_texts(nb).items():
        try:
            values[name] = float(text)
        except ValueError:
            continue
    return values


def all_glued(root: Path = ROOT) -> dict[str, float]:
    """Every chapter's glued numbers, by name (sorted)."""
    values: dict[str, float] = {}
    for path in notebooks(root):
        values.update(glued_values(nbformat.read(path, as_version=4)))
    return dict(sorted(values.items()))


def write_glued(root: Path = ROOT) -> None:
    """Refresh the package's copy of all glued numbers (``report.glued``)."""
    path = root / GLUED.relative_to(ROOT)
    path.write_text(json.dumps(all_glued(root), indent=0) + "\n")


# ---------------------------------------------------------------------------
# check


KNOB_CALL = re.compile(r"(?<![\w.])knob\(")


def check_notebook(
    path: Path, root: Path = ROOT, glued: dict[str, float] | None = None
) -> list[str]:
    """Problems of one committed notebook; empty when it can be trusted."""
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a problem
        return [f"{rel}: not a readable notebook ({err})"]
    problems: list[str] = []
    cells = code_cells(nb)
    if not cells:
        return [f"{rel}: has no code cells"]
    if cells[0].source.strip() != setup_cell(root).strip():
        problems.append(
            f"{rel}: the first code cell is not the standard setup cell "
            "(python tools/nbtools.py setup-cell prints it; its repository URL "
            "comes from _config.yml)"
        )
    counts = [c.get("execution_count") for c in cells]
    if any(n is None for n in counts):
        problems.append(f"{rel}: {counts.count(None)} code cell(s) never executed")
    elif counts != list(range(1, len(counts) + 1)):
        problems.append(
            f"{rel}: cells were not executed top to bottom in one fresh run "
            f"(execution counts {counts[:8]}...); run make execute NB={rel}"
        )
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{rel}: code cell {i + 1} has an error output")
        if KNOB_CALL.search(cell.source) and "remove-output" not in tags(cell):
            problems.append(
                f"{rel}: code cell {i + 1} shows a knob but is not tagged "
                "remove-output (a web page cannot run sliders; show the same "
                "sweep as a static figure in the next cell)"
            )
    if "widgets" in nb.metadata:
        problems.append(f"{rel}: keeps widget state; run make execute NB={rel}")
    meta = nb.metadata.get(META_KEY, {})
    if "code_sha256" not in meta:
        problems.append(f"{rel}: never executed with make execute (no code hash)")
    elif meta["code_sha256"] != code_hash(nb):
        problems.append(
            f"{rel}: stale outputs: the code changed after it was executed; "
            f"run make execute NB={rel}"
        )
    if "depends" not in meta:
        problems.append(
            f"{rel}: no record of the package modules it used; "
            f"run make execute NB={rel}"
        )
    else:
        changed = [
            dep
            for dep, digest in meta["depends"].items()
            if not (root / dep).is_file() or file_sha256(root / dep) != digest
        ]
        if changed:
            problems.append(
                f"{rel}: stale outputs: {', '.join(changed)} changed after it was "
                f"executed; run make execute NB={rel}"
            )
    current = glued if glued is not None else all_glued(root)
    moved = [
        f"{name} (read {value:.4g}, now {current.get(name, float('nan')):.4g})"
        for name, value in meta.get("glued_read", {}).items()
        if current.get(name) != value
    ]
    if moved:
        problems.append(
            f"{rel}: stale outputs: numbers it reads from other chapters changed: "
            f"{', '.join(moved)}; run make execute NB={rel}"
        )
    return problems


def check_toc(root: Path = ROOT) -> list[str]:
    problems = []
    entries = toc_files(root)
    for entry in entries:
        if not any((root / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")):
            problems.append(f"_toc.yml names {entry!r} but no such .md or .ipynb")
    listed = set(entries)
    for nb in notebooks(root):
        key = nb.relative_to(root).with_suffix("").as_posix()
        if key not in listed:
            problems.append(f"{key}.ipynb is not in _toc.yml")
    return problems


def check_glued(root: Path = ROOT) -> list[str]:
    """The package's copy of the glued numbers equals the notebooks' glue, and
    no name is glued by two chapters."""
    problems = []
    owner: dict[str, str] = {}
    for path in notebooks(root):
        for name in glued_values(nbformat.read(path, as_version=4)):
            rel = path.relative_to(root).as_posix()
            if name in owner and owner[name] != rel:
                problems.append(f"{name} is glued by both {owner[name]} and {rel}")
            owner[name] = rel
    copy = root / GLUED.relative_to(ROOT)
    stored = json.loads(copy.read_text()) if copy.exists() else None
    if stored != all_glued(root):
        problems.append(
            f"{copy.relative_to(root)} does not hold the notebooks' glued numbers; "
            "run python tools/nbtools.py glued (make execute does it)"
        )
    return problems


def check(paths: list[Path], root: Path = ROOT) -> list[str]:
    problems = check_toc(root) + check_glued(root)
    glued = all_glued(root)
    for path in paths:
        problems += check_notebook(path, root, glued)
    return problems


# ---------------------------------------------------------------------------
# student

EXERCISE, SOLUTION, HIDE_INPUT = "exercise", "solution", "hide-input"
STUDENT_DIR = Path("_build") / "student"
STUDENT_ZIP = "aigc-course-student-notebooks"  # .zip, beside notebooks/ in OUT


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def python_only(source: str) -> str:
    """``source`` with its IPython magics and shell escapes blanked, so that
    ``ast`` can parse the rest (line numbers stay)."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines()
    )


def has_placeholder(source: str) -> bool:
    """Whether ``source`` assigns ``None`` or ``...`` to a name (the placeholder).

    Lines that are IPython magics or shell escapes are ignored.
    """
    try:
        tree = ast.parse(python_only(source))
    except SyntaxError:
        return False

    def blank(node: ast.expr | None) -> bool:
        if isinstance(node, ast.Tuple):
            return bool(node.elts) and all(blank(e) for e in node.elts)
        return isinstance(node, ast.Constant) and node.value in (None, Ellipsis)

    return any(
        isinstance(node, (ast.Assign, ast.AnnAssign)) and blank(node.value)
        for node in ast.walk(tree)
    )


def exercise_problems(nb: nbformat.NotebookNode, rel: object) -> list[str]:
    """What breaks the exercise convention in ``nb``; empty when it holds.

    Each ``exercise`` cell assigns a placeholder; each ``solution`` code cell
    directly follows an ``exercise`` cell and is tagged ``hide-input`` too (or
    the website shows the answer).
    """
    problems: list[str] = []
    previous: nbformat.NotebookNode | None = None
    for i, cell in enumerate(nb.cells):
        where = f"{rel}: cell {i + 1}"
        cell_tags = tags(cell)
        if EXERCISE in cell_tags and SOLUTION in cell_tags:
            problems.append(f"{where} is tagged both {EXERCISE!r} and {SOLUTION!r}")
        elif EXERCISE in cell_tags and (
            cell.cell_type != "code" or not has_placeholder(cell.source)
        ):
            problems.append(
                f"{where} is tagged {EXERCISE!r} but assigns no placeholder; "
                "ship e.g. `your_answer = None  # replace None with ...`"
            )
        elif SOLUTION in cell_tags and cell.cell_type == "code":
            if previous is None or EXERCISE not in tags(previous):
                problems.append(
                    f"{where} is a {SOLUTION!r} code cell that does not directly "
                    f"follow an {EXERCISE!r} cell; put it right after the exercise"
                )
            if HIDE_INPUT not in cell_tags:
                problems.append(
                    f"{where} is a {SOLUTION!r} code cell without the "
                    f"{HIDE_INPUT!r} tag, so the book shows the answer; add it"
                )
        previous = cell
    return problems


def student_version(
    nb: nbformat.NotebookNode,
) -> tuple[nbformat.NotebookNode, int]:
    """A copy of ``nb`` without its ``solution`` cells, outputs and execution
    counts; returns it with the number of cells removed. ``nb`` is unchanged."""
    out = copy.deepcopy(nb)
    kept = [c for c in out.cells if SOLUTION not in tags(c)]
    removed = len(out.cells) - len(kept)
    for cell in kept:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    out.cells = kept
    # the code hash and run time describe the executed teacher's version
    out.metadata.pop(META_KEY, None)
    out.metadata.pop("widgets", None)  # widget state belongs to cleared outputs
    return out, removed


def write_student(out: Path, root: Path = ROOT) -> dict[str, int]:
    """Write the student version of every notebook under ``root/notebooks`` to
    ``out`` (same relative paths); returns the solution cells removed per
    notebook (path relative to ``root``).

    Raises:
        ValueError: a notebook breaks the exercise convention (nothing is
            written), or ``out`` would overwrite the notebooks themselves.
    """
    out = out.resolve()
    if (out / "notebooks").resolve() == (root / "notebooks").resolve():
        raise ValueError(f"{out} would overwrite the course's notebooks")
    paths = notebooks(root)
    books = {p.relative_to(root): nbformat.read(p, as_version=4) for p in paths}
    problems = [q for rel, nb in books.items() for q in exercise_problems(nb, rel)]
    if problems:
        raise ValueError("\n".join(problems))
    removed: dict[str, int] = {}
    for rel, nb in books.items():
        student, removed[rel.as_posix()] = student_version(nb)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
    # one download for a class (the teacher's kit links it)
    shutil.make_archive(str(out / STUDENT_ZIP), "zip", out, "notebooks")
    return removed


# ---------------------------------------------------------------------------
# seeds

SEED_OFFSETS = (1000, 2000)  # beside the committed run's own seeds (offset 0)


def seed_sweep(
    path: Path, offsets: tuple[int, ...] = SEED_OFFSETS, rev: str | None = None
) -> dict:
    """Re-run ``path`` with every seed it sets shifted by each offset
    (``tools/seedshift``), gates reporting instead of raising, and return each
    metric and order value of the committed run and of every shifted run.
    With ``rev``, the notebook as committed at that git revision is run."""
    import os

    import repro

    if rev is not None:  # the notebook as committed at ``rev``
        import subprocess

        rel = path.relative_to(ROOT).as_posix()
        text = subprocess.run(
            ["git", "show", f"{rev}:{rel}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        nb = nbformat.reads(text, as_version=4)
    else:
        nb = nbformat.read(path, as_version=4)
    if nb.metadata.get(META_KEY, {}).get("code_sha256") != code_hash(nb):
        raise ValueError(f"{path}: run make execute first (its outputs are stale)")
    runs = [
        repro.parse("\n".join(repro.stream_text(c.outputs) for c in code_cells(nb)))
    ]
    saved = {
        k: os.environ.get(k) for k in ("AIGC_SEED_OFFSET", "AIGC_GATES", "PYTHONPATH")
    }
    try:
        for offset in offsets:
            os.environ["AIGC_SEED_OFFSET"] = str(offset)
            os.environ["AIGC_GATES"] = "report"
            os.environ["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT / "tools" / "seedshift")]
                + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])
            )
            print(f"  seed offset {offset} ...", flush=True)
            done, seconds = run_notebook(
                copy.deepcopy(nb), allow_errors=True, cwd=path.parent
            )
            print(f"  seed offset {offset}: {seconds:.0f} s", flush=True)
            errors = [
                f"cell {i + 1}: {out.ename}: {out.evalue[:300]}"
                for i, cell in enumerate(code_cells(done))
                for out in cell.outputs
                if out.output_type == "error"
            ]
            if errors:  # a crashed run measures nothing: no record from it
                raise RuntimeError(
                    f"{path.name} raised under seed offset {offset}:\n  "
                    + "\n  ".join(errors)
                )
            runs.append(
                repro.parse(
                    "\n".join(repro.stream_text(c.outputs) for c in code_cells(done))
                )
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    keys = list(runs[0])
    return {
        "notebook": path.relative_to(ROOT).as_posix(),
        "offsets": [0, *offsets],
        "code_sha256": code_hash(nb),
        "values": {
            k: [r.get(k, {}).get("value") for r in runs]
            for k in keys
            if runs[0][k]["value"] is not None
        },
        "ok": {k: [r.get(k, {}).get("ok") for r in runs] for k in keys},
    }


def seed_table(record: dict) -> str:
    """A Markdown table of a seed record: each number, its values, its spread."""
    lines = [
        "| number | "
        + " | ".join(f"offset {o}" for o in record["offsets"])
        + " | spread | all ok |",
        "| --- |" + " ---: |" * (len(record["offsets"]) + 1) + " :---: |",
    ]
    for key, values in record["values"].items():
        nums = [v for v in values if v is not None]
        spread = max(nums) - min(nums) if nums else float("nan")
        ok = all(record["ok"].get(key, [True])) and all(
            record["ok"].get(key.split("[")[0], [True])
        )
        cells = " | ".join("-" if v is None else f"{v:.4g}" for v in values)
        lines.append(f"| {key} | {cells} | {spread:.3g} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run notebooks in place, saving outputs")
    ex.add_argument("paths", nargs="+", type=Path)
    ch = sub.add_parser("check", help="integrity and freshness of notebooks")
    ch.add_argument("paths", nargs="*", type=Path)
    sub.add_parser("setup-cell", help="print the standard first code cell")
    sub.add_parser("glued", help="refresh aigc_utils/assets/glued.json")
    sub.add_parser("timings", help="table of each notebook's recorded run time")
    sd = sub.add_parser(
        "seeds", help="re-run notebooks under other seeds, record spreads"
    )
    sd.add_argument("paths", nargs="+", type=Path)
    sd.add_argument("--rev", help="run the notebooks as committed at this revision")
    st = sub.add_parser("student", help="notebooks without solutions or outputs")
    st.add_argument(
        "out", nargs="?", type=Path, help=f"output folder (default {STUDENT_DIR})"
    )
    args = parser.parse_args(argv)

    if args.command == "glued":
        write_glued()
        return 0
    if args.command == "setup-cell":
        print(setup_cell())
        return 0
    if args.command == "timings":
        import budgets

        table = budgets.load()
        total = 0.0
        print("| notebook | budget (s) | last make execute (s) | verdict |")
        print("| --- | ---: | ---: | --- |")
        for path in notebooks():
            meta = nbformat.read(path, as_version=4).metadata.get(META_KEY, {})
            seconds = meta.get("wall_seconds", float("nan"))
            total += seconds
            budget = table.get(budgets.key(path))
            shown = "none" if budget is None else f"{budget:.0f}"
            verdict = budgets.verdict(seconds, budget)
            print(f"| {path.relative_to(ROOT)} | {shown} | {seconds:.0f} | {verdict} |")
        print(f"| all | {sum(table.values()):.0f} | {total:.0f} | |")
        return 0
    if args.command == "student":
        out = args.out if args.out is not None else ROOT / STUDENT_DIR
        try:
            removed = write_student(out, ROOT)
        except ValueError as err:
            print(f"no student version written:\n{err}", file=sys.stderr)
            return 1
        for rel, n in removed.items():
            print(f"{rel}: {n} solution cell(s) removed")
        print(
            f"wrote {len(removed)} student notebook(s), "
            f"{sum(removed.values())} solution cell(s) removed, to {out.resolve()}"
        )
        return 0
    if args.command == "seeds":
        failed = 0
        for path in args.paths:
            path = path.resolve()
            print(f"seed sweep of {path.relative_to(ROOT)} ...", flush=True)
            out = ROOT / "aigc_utils" / "assets" / "seeds" / f"{path.stem}.json"
            rel = path.relative_to(ROOT).as_posix()
            if out.exists() and json.loads(out.read_text())["notebook"] != rel:
                print(f"  {out.name} belongs to another notebook; not swept: {rel}")
                failed += 1
                continue
            record = seed_sweep(path, rev=args.rev)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record, indent=1) + "\n")
            print(seed_table(record))
            bad = [k for k, oks in record["ok"].items() if not all(oks)]
            for key in bad:
                print(f"  {key}: does not hold on every seed {record['ok'][key]}")
            failed += len(bad)
            print(f"  wrote {out.relative_to(ROOT)}")
        return 1 if failed else 0
    if args.command == "execute":
        for path in args.paths:
            print(f"executing {path} ...", flush=True)
            seconds = execute(path.resolve())
            print(f"  {path}: {seconds:.1f} s", flush=True)
        return 0
    paths = [p.resolve() for p in args.paths] or notebooks()
    problems = check(paths)
    for problem in problems:
        print(problem)
    print(f"checked {len(paths)} notebook(s): {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
