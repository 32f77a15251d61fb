"""Do a notebook's re-executed numbers reproduce the committed ones?

Every chapter states its claims as ``metric`` and ``order`` lines
(``aigc_utils.report``). CI re-executes each notebook; this module reads those
lines from the committed outputs and from the new run and names every number
that moved further than its tolerance:

* a number from live training: the spread that the chapter's seed sweep
  recorded in ``aigc_utils/assets/seeds/<notebook>.json`` (``make seeds NB=...``), times
  ``SPREAD_FACTOR``, because another CPU moves a result as another seed does;
* a gate that declares ``tol`` (printed as ``, tol x``): that tolerance;
* anything else (mathematics, counting, shipped weights): the printed
  precision, one unit in the fourth significant digit.

An ``order`` line must keep its verdict, and each of its values is held to the
same tolerances under the key ``<order name>[<label>]``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = ROOT / "aigc_utils" / "assets" / "seeds"
SPREAD_FACTOR = 2.0  # three seeds understate the range of a fourth machine

METRIC = re.compile(
    r"^metric (?P<name>[a-z][a-z0-9_]*) = (?P<value>\S+) "
    r"\(gate (?P<bound>.*?)(?:, tol (?P<tol>\S+))?\) (?P<verdict>ok|FAILED)$"
)
ORDER = re.compile(
    r"^order (?P<name>[a-z][a-z0-9_]*): (?P<body>.*?)"
    r"(?: \(steps > (?P<step>\S+)\))? (?P<verdict>ok|FAILED)$"
)


def stream_text(outputs: list) -> str:
    """The text a cell printed to stdout, from a list of nbformat outputs."""
    return "".join(
        "".join(o.get("text", ""))
        for o in outputs
        if o.get("output_type") == "stream" and o.get("name", "stdout") == "stdout"
    )


def parse(text: str) -> dict[str, dict]:
    """``{key: {"value": float, "tol": float | None, "ok": bool}}`` for every
    metric line and every value of every order line in ``text``; the verdict of
    an order line is kept under its own name with ``value`` None."""
    found: dict[str, dict] = {}
    for line in text.splitlines():
        line = line.rstrip()
        m = METRIC.match(line)
        if m:
            tol = float(m["tol"]) if m["tol"] else None
            found[m["name"]] = {
                "value": float(m["value"]),
                "tol": tol,
                "ok": m["verdict"] == "ok",
            }
            continue
        m = ORDER.match(line)
        if not m:
            continue
        found[m["name"]] = {"value": None, "tol": None, "ok": m["verdict"] == "ok"}
        for part in re.split(r" [<>] ", m["body"]):
            label, _, value = part.rpartition(" ")
            try:
                found[f"{m['name']}[{label}]"] = {
                    "value": float(value),
                    "tol": None,
                    "ok": True,
                }
            except ValueError:
                continue
    return found


def printed_precision(value: float) -> float:
    """One unit in the fourth significant digit of ``value`` (``_fmt``'s ``.4g``)."""
    if value == 0 or not math.isfinite(value):
        return 1e-12
    return 10 ** (math.floor(math.log10(abs(value))) - 3)


def seed_record(notebook: Path) -> dict:
    """The seed sweep of ``notebook`` (``{}`` when none was recorded).

    Records are named by the notebook's stem and say which notebook they
    belong to (two chapters may share a stem, e.g. ``02_math/vae`` and
    ``04_autoencoders/vae``: a record serves only the notebook it names).
    """
    path = SEEDS_DIR / f"{notebook.stem}.json"
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    rel = Path(notebook).resolve()
    rel = rel.relative_to(ROOT).as_posix() if rel.is_relative_to(ROOT) else None
    return record if record.get("notebook") == rel else {}


def spreads(record: dict) -> dict[str, float]:
    """max - min over the recorded seeds, for each number of a seed record."""
    out = {}
    for key, values in record.get("values", {}).items():
        nums = [v for v in values if v is not None]
        if len(nums) >= 2:
            out[key] = max(nums) - min(nums)
    return out


def tolerance(key: str, old: dict, spread: dict[str, float]) -> tuple[float, str]:
    """How far ``key`` may move, and where that tolerance comes from."""
    precision = printed_precision(old["value"])
    if old["tol"] is not None:
        return old["tol"] + precision, "declared tol"
    if spread.get(key, 0.0) > 0:
        return SPREAD_FACTOR * spread[key] + precision, "seed spread"
    return precision, "printed precision"


def compare(old_text: str, new_text: str, spread: dict[str, float]) -> list[str]:
    """Every claim of ``old_text`` that ``new_text`` lost, flipped or moved."""
    old, new = parse(old_text), parse(new_text)
    problems = []
    for key, was in old.items():
        now = new.get(key)
        if now is None:
            problems.append(f"{key}: committed output has it, the new run printed none")
            continue
        if was["ok"] and not now["ok"]:
            problems.append(f"{key}: was ok, now FAILED")
        if was["value"] is None:
            continue
        tol, why = tolerance(key, was, spread)
        moved = abs(now["value"] - was["value"])
        if not moved <= tol:
            problems.append(
                f"{key} moved: committed {was['value']:.4g}, now {now['value']:.4g} "
                f"(|diff| {moved:.3g} > {tol:.3g}, {why})"
            )
    return problems
