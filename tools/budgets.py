"""The notebooks' time budgets (``tools/budgets.yml``) and the check on them.

Run time is information in a chapter, never a gate: a slow machine must not
fail a claim. The harness alone holds a notebook to its budget, with
``SLACK`` to spare, so a chapter that grew slower is noticed in CI.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tools" / "budgets.yml"
SLACK = 1.5  # fail above this many times the budget


def load(path: Path = TABLE) -> dict[str, float]:
    """``{"notebooks/part/name": seconds}`` from the budget table."""
    table = yaml.safe_load(path.read_text()) or {}
    bad = {k: v for k, v in table.items() if not isinstance(v, (int, float)) or v <= 0}
    if bad:
        raise ValueError(f"{path}: budgets must be positive seconds, got {bad}")
    return {str(k): float(v) for k, v in table.items()}


def key(path: Path) -> str:
    """The table's key of a notebook path (absolute or relative to the root)."""
    path = Path(path)
    if path.is_absolute():
        path = path.relative_to(ROOT)
    return path.with_suffix("").as_posix()


def verdict(seconds: float, budget: float | None) -> str:
    """``ok``, ``over`` (more than ``SLACK`` times the budget) or ``none``."""
    if budget is None:
        return "none"
    return "ok" if seconds <= SLACK * budget else "over"
