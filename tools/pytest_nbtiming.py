"""pytest plugin: print how long each notebook took under nbval, and the total.

Loaded by ``make notebooks`` (``-p pytest_nbtiming``) so CI shows the time
budget of every chapter at a glance.
"""

from __future__ import annotations

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _seconds:
        return
    terminalreporter.section("notebook execution times")
    for path, seconds in sorted(_seconds.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  all notebooks")
