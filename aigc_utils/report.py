"""Stating measured numbers as gates: a chapter's claims that CI re-checks.

Each model chapter ends with lines such as::

    gate("vae_test_neg_elbo", neg_elbo, at_most=105.0)

which prints ``metric vae_test_neg_elbo = 104.2 (gate <= 105.0) ok`` and raises
``AssertionError`` with the same line ending in ``FAILED`` when the number misses
its threshold, so a regression fails the notebook run in CI. CI also compares
each printed line with the committed one (``tools/repro.py``): the printed
number must reproduce within its tolerance. A number from live training gets a
threshold beyond every seed of the chapter's sweep (``make seeds``), so that
another machine, which moves results as another seed does, passes too.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _asserting() -> bool:
    """False when ``AIGC_GATES=report``: gates then print ``FAILED`` but do not
    raise, so a seed sweep (``make seeds``) records every number of a chapter."""
    mode = os.environ.get("AIGC_GATES", "assert").strip().lower()
    if mode not in ("assert", "report"):
        raise ValueError(f"AIGC_GATES must be 'assert' or 'report', got {mode!r}")
    return mode == "assert"


def _fmt(x: float) -> str:
    """Four significant digits; a whole number keeps one decimal (``105.0``)."""
    text = f"{x:.4g}"
    return text if any(c in text for c in ".enia") else text + ".0"


def gate(
    name: str,
    value: float,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    tol: float | None = None,
) -> None:
    """Print a measured metric with its threshold; raise if it misses it.

    Args:
        name: ``snake_case`` metric name, ``<family>_<metric>`` by convention.
        value: the measured number (a Python number or 0-d tensor).
        at_most: the largest acceptable value.
        at_least: the smallest acceptable value. Give one or both bounds.
        tol: how far a re-execution may move this number before CI calls the
            committed output stale (printed as ``tol``). Leave it out for
            numbers that repeat exactly (mathematics, shipped weights); numbers
            from live training take theirs from the chapter's seed sweep
            (``aigc_utils/assets/seeds``); give it, with a comment saying why, where
            neither fits.

    Raises:
        ValueError: bad name, no bound, or bounds that exclude everything.
        AssertionError: the value misses the gate (or is NaN).
    """
    if not _NAME.match(name):
        raise ValueError(f"metric name must be snake_case, got {name!r}")
    if at_most is None and at_least is None:
        raise ValueError(f"gate {name!r} needs at_most, at_least or both")
    if at_most is not None and at_least is not None and at_least > at_most:
        raise ValueError(f"gate {name!r}: at_least {at_least} > at_most {at_most}")
    if tol is not None and not tol > 0:
        raise ValueError(f"gate {name!r}: tol must be > 0, got {tol}")
    is_int = isinstance(value, int) or (
        hasattr(value, "is_floating_point") and not value.is_floating_point()
    )
    value = float(value)
    if at_most is not None and at_least is not None:
        bound = f"in [{_fmt(at_least)}, {_fmt(at_most)}]"
    elif at_most is not None:
        bound = f"<= {_fmt(at_most)}"
    else:
        bound = f">= {_fmt(at_least)}"  # type: ignore[arg-type]
    ok = not math.isnan(value)
    ok = ok and (at_most is None or value <= at_most)
    ok = ok and (at_least is None or value >= at_least)
    shown = str(int(value)) if is_int else _fmt(value)
    if tol is not None:
        bound += f", tol {_fmt(tol)}"
    line = f"metric {name} = {shown} (gate {bound}) {'ok' if ok else 'FAILED'}"
    print(line)
    if not ok and _asserting():
        raise AssertionError(line)


def glue(name: str, value: float) -> None:
    """Record ``value`` under ``name`` for other pages of the book to paste.

    Uses MyST-NB's ``glue`` (without displaying anything) when the book's tools
    are installed; elsewhere, on Colab say, it does nothing.
    """
    if not _NAME.match(name):
        raise ValueError(f"glue name must be snake_case, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, float(value), display=False)


def skipped(name: str, reason: str) -> None:
    """Say that a gate does not apply here, and why (e.g. a claim about the CPU
    budget's model on a GPU, where the chapter trains another one)::

        skipped dcgan_fid_long_below_live: on a GPU the live model is the long run
    """
    if not _NAME.match(name):
        raise ValueError(f"gate name must be snake_case, got {name!r}")
    print(f"skipped {name}: {reason}")


def gate_order(
    name: str,
    values: dict[str, float],
    *,
    increasing: bool = True,
    min_step: float = 0.0,
) -> None:
    """Gate a ranking or a monotone trend that the prose states.

    ``values`` is read in its insertion order: with ``increasing=True`` each
    value must exceed the one before it by more than ``min_step`` (strictly
    rising), with ``increasing=False`` it must fall below it by more than
    ``min_step``. Prints, e.g.::

        order text_val_loss: gpt 1.61 < lstm 1.63 < 5-gram 1.69 ok

    Args:
        name: ``snake_case`` name of the claim.
        values: label -> measured number, in the order the claim states.
        increasing: direction of the claimed order.
        min_step: the smallest gap between neighbours that counts (>= 0).

    Raises:
        ValueError: bad name, fewer than two values, or a negative ``min_step``.
        AssertionError: the numbers are not in the stated order (or one is NaN).
    """
    if not _NAME.match(name):
        raise ValueError(f"claim name must be snake_case, got {name!r}")
    if len(values) < 2:
        raise ValueError(f"order {name!r} needs at least two values")
    if min_step < 0:
        raise ValueError(f"min_step must be >= 0, got {min_step}")
    labels = list(values)
    nums = [float(values[k]) for k in labels]
    sign = 1.0 if increasing else -1.0
    ok = all(
        not math.isnan(a) and not math.isnan(b) and sign * (b - a) > min_step
        for a, b in zip(nums, nums[1:])
    )
    sep = " < " if increasing else " > "
    body = sep.join(f"{k} {_fmt(v)}" for k, v in zip(labels, nums))
    step = f" (steps > {_fmt(min_step)})" if min_step else ""
    line = f"order {name}: {body}{step} {'ok' if ok else 'FAILED'}"
    print(line)
    if not ok and _asserting():
        raise AssertionError(line)


GLUED = Path(__file__).resolve().parent / "assets" / "glued.json"
SEEDS = Path(__file__).resolve().parent / "assets" / "seeds"
_read: dict[str, float] = {}  # what this process read, for make execute's record
_files: set[str] = set()  # package files read, for make execute's record


def seed_values(chapter: str, name: str) -> list[float]:
    """The values ``name`` took in ``chapter``'s seed sweep (``make seeds``):
    this run's seeds first, then the same chapter with every seed shifted.

    A chapter shows them where a claim rests on a small difference, e.g.
    "1.630 ± 0.008 over three seeds".

    Raises:
        FileNotFoundError: no sweep was recorded for ``chapter``.
        KeyError: the sweep has no number called ``name``.
    """
    path = SEEDS / f"{chapter}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no seed sweep recorded for {chapter!r} (make seeds NB=...{chapter}.ipynb)"
        )
    values = json.loads(path.read_text(encoding="utf-8"))["values"]
    if name not in values:
        raise KeyError(f"the seed sweep of {chapter!r} has no number {name!r}")
    _files.add(str(path))
    return [float(v) for v in values[name] if v is not None]


def glued(name: str) -> float:
    """The number another chapter glued under ``name``, as its last run made it.

    ``make execute`` collects every chapter's glued values into the package
    (``assets/glued.json``), so a chapter that compares itself with another
    reads the other's number instead of typing a copy. The notebook that read
    it is named stale by ``make check`` when that number changes.

    Raises:
        KeyError: no chapter glues ``name`` (the message lists close names).
    """
    if not _NAME.match(name):
        raise ValueError(f"glued name must be snake_case, got {name!r}")
    values = json.loads(GLUED.read_text(encoding="utf-8"))
    if name not in values:
        close = [k for k in values if name.split("_")[0] in k][:8]
        raise KeyError(
            f"no chapter glues {name!r}; execute the chapter that computes it "
            f"(make execute) or check the name (similar: {close})"
        )
    _read[name] = values[name]
    return float(values[name])


def check(name: str, answer: object, expected: float, *, tol: float = 1e-6) -> None:
    """Self-check of an exercise: ``answer`` (the student's) against ``expected``.

    The exercise cell ships ``answer = None`` (or ``...``); until the student
    replaces it, this raises ``NotImplementedError`` with a hint, so a student
    version of a notebook stops at the first unanswered exercise.

    Args:
        name: ``snake_case`` name of the exercise.
        answer: the student's number (or 0-d tensor); ``None``/``...`` if unanswered.
        expected: the value computed by the notebook (never typed in by hand).
        tol: largest accepted absolute difference.

    Raises:
        NotImplementedError: ``answer`` is still the placeholder.
        TypeError: ``answer`` is not a number.
        AssertionError: ``answer`` is further than ``tol`` from ``expected``.
    """
    if not _NAME.match(name):
        raise ValueError(f"exercise name must be snake_case, got {name!r}")
    if answer is None or answer is Ellipsis:
        raise NotImplementedError(
            f"exercise {name}: replace the placeholder (None or ...) in the cell "
            "above with your own computation, then run this check again"
        )
    try:
        value = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"exercise {name}: expected a number, got {type(answer).__name__}"
        ) from err
    off = abs(value - float(expected))
    if not off <= tol:
        raise AssertionError(
            f"exercise {name}: your answer {_fmt(value)} is off by {_fmt(off)} "
            f"(tolerance {_fmt(tol)}); check your computation"
        )
    print(f"check {name}: your answer {_fmt(value)} is right")
