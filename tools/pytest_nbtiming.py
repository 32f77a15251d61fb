"""pytest plugin for ``make notebooks``: time each notebook, hold it to its
budget, and check that its re-executed numbers reproduce the committed ones.

Loaded with ``-p pytest_nbtiming`` (``tools/`` on ``PYTHONPATH``):

* every nbval cell whose committed output prints ``metric`` or ``order`` lines
  (``aigc_utils.report``) fails when the new run moved one of those numbers past
  its tolerance (``tools/repro.py``), naming the number;
* at the end, each notebook's time is printed beside its budget
  (``tools/budgets.yml``), and the run fails if a notebook took more than
  ``budgets.SLACK`` times its budget or has no budget at all.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import budgets
import pytest
import repro

_seconds: dict[str, float] = defaultdict(float)
_spreads: dict[str, dict[str, float]] = {}


def _spread_of(path: str) -> dict[str, float]:
    if path not in _spreads:
        _spreads[path] = repro.spreads(repro.seed_record(Path(path)))
    return _spreads[path]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed:
        return
    cell = getattr(item, "cell", None)
    new = getattr(item, "test_outputs", None)
    if cell is None or new is None:
        return
    old_text = repro.stream_text(cell.get("outputs", []))
    if "metric " not in old_text and "order " not in old_text:
        return
    path = item.nodeid.split("::")[0]
    problems = repro.compare(old_text, repro.stream_text(new), _spread_of(path))
    if problems:
        report.outcome = "failed"
        report.longrepr = (
            "the re-executed numbers do not reproduce the committed output "
            "(run make execute and review the change, or make seeds if the "
            "spread changed):\n  " + "\n  ".join(problems)
        )


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def _verdicts() -> list[tuple[str, float, float | None, str]]:
    table = budgets.load()
    rows = []
    for path, seconds in sorted(_seconds.items()):
        budget = table.get(budgets.key(Path(path)))
        rows.append((path, seconds, budget, budgets.verdict(seconds, budget)))
    return rows


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session) -> None:
    if any(v != "ok" for *_, v in _verdicts()) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _seconds:
        return
    terminalreporter.section("notebook execution times against budgets")
    over = []
    for path, seconds, budget, verdict in _verdicts():
        shown = "none" if budget is None else f"{budget:.0f}"
        terminalreporter.write_line(
            f"{seconds:8.1f} s  budget {shown:>5} s  {verdict:4}  {path}"
        )
        if verdict != "ok":
            over.append(path)
    terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  all notebooks")
    if over:
        terminalreporter.write_line(
            f"over budget (> {budgets.SLACK}x) or without one: {', '.join(over)}",
            red=True,
        )
