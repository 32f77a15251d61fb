"""Numbers that cannot go stale: the reproduction check CI applies to every
re-executed notebook, the seed sweep, the time budgets, and the check that no
measured number is typed into prose. Each check is shown to fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import budgets  # noqa: E402
import nbtools  # noqa: E402
import prose_numbers  # noqa: E402
import repro  # noqa: E402

OLD = """\
metric vae_test_neg_elbo = 104.0 (gate <= 110.0) ok
metric math_error = 1.11e-16 (gate <= 1e-12) ok
metric lstm_val_loss = 1.630 (gate <= 1.7, tol 0.02) ok
order text_val_loss: gpt 1.625 < lstm 1.63 < 5-gram 1.692 ok
"""


def test_parse_reads_metrics_orders_and_tolerances() -> None:
    found = repro.parse(OLD)
    assert found["vae_test_neg_elbo"] == {"value": 104.0, "tol": None, "ok": True}
    assert found["lstm_val_loss"]["tol"] == 0.02
    assert found["text_val_loss"]["ok"] is True
    assert found["text_val_loss[5-gram]"]["value"] == 1.692
    labels = [k for k in found if k.startswith("text_val_loss[")]
    assert labels == [
        "text_val_loss[gpt]",
        "text_val_loss[lstm]",
        "text_val_loss[5-gram]",
    ]


def test_identical_output_reproduces() -> None:
    assert repro.compare(OLD, OLD, {}) == []


def test_a_moved_number_is_named() -> None:
    new = OLD.replace("104.0 (", "104.3 (")
    (problem,) = repro.compare(OLD, new, {})
    assert (
        problem.startswith("vae_test_neg_elbo moved") and "printed precision" in problem
    )


def test_the_last_printed_digit_may_round_either_way() -> None:
    assert repro.compare(OLD, OLD.replace("104.0 (", "104.1 ("), {}) == []


def test_seed_spread_widens_the_tolerance() -> None:
    new = OLD.replace("104.0 (", "104.9 (")
    assert repro.compare(OLD, new, {"vae_test_neg_elbo": 0.5}) == []
    assert repro.compare(OLD, new, {"vae_test_neg_elbo": 0.3}) != []


def test_declared_tol_is_used() -> None:
    near = OLD.replace("1.630 (gate <= 1.7, tol", "1.645 (gate <= 1.7, tol")
    far = OLD.replace("1.630 (gate <= 1.7, tol", "1.66 (gate <= 1.7, tol")
    assert repro.compare(OLD, near, {}) == []
    assert "declared tol" in repro.compare(OLD, far, {})[0]


def test_a_flipped_or_missing_claim_is_named() -> None:
    flipped = OLD.replace("5-gram 1.692 ok", "5-gram 1.692 FAILED")
    assert "text_val_loss: was ok, now FAILED" in repro.compare(OLD, flipped, {})
    missing = "\n".join(OLD.splitlines()[1:])
    assert any("printed none" in p for p in repro.compare(OLD, missing, {}))


def test_order_values_are_held_too() -> None:
    new = OLD.replace("lstm 1.63 <", "lstm 1.65 <")
    (problem,) = repro.compare(OLD, new, {})
    assert problem.startswith("text_val_loss[lstm] moved")


def test_a_seed_record_serves_only_its_own_notebook() -> None:
    owner = ROOT / "notebooks" / "04_autoencoders" / "vae.ipynb"
    namesake = ROOT / "notebooks" / "02_math" / "vae.ipynb"
    assert repro.seed_record(owner)["notebook"] == "notebooks/04_autoencoders/vae.ipynb"
    assert repro.seed_record(namesake) == {}


def test_spreads_from_a_seed_record() -> None:
    record = {"values": {"a": [1.0, 1.2, 0.9], "b": [2.0, 2.0, 2.0], "c": [1.0]}}
    spread = repro.spreads(record)
    assert spread["a"] == pytest.approx(0.3) and spread["b"] == 0 and "c" not in spread


def test_seed_records_name_their_notebook_and_are_current() -> None:
    # a recorded spread belongs to a notebook that exists, and lists its seeds
    records = sorted(repro.SEEDS_DIR.glob("*.json"))
    assert len(records) >= 5, "seed sweeps missing (make seeds NB=...)"
    for path in records:
        named = json.loads(path.read_text())["notebook"]
        notebook = ROOT / named
        assert notebook.is_file() and notebook.stem == path.stem, path.name
        record = repro.seed_record(notebook)
        assert record["offsets"][0] == 0 and len(record["offsets"]) >= 3
        for key, values in record["values"].items():
            assert len(values) == len(record["offsets"]), key


def _seeded(offset: str | None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools" / "seedshift"))
    env.pop("AIGC_SEED_OFFSET", None)
    if offset is not None:
        env["AIGC_SEED_OFFSET"] = offset
    code = (
        "import torch; torch.manual_seed(3); a = torch.rand(1).item(); "
        "g = torch.Generator().manual_seed(3); b = torch.rand(1, generator=g).item(); "
        "print(a, b)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_seedshift_moves_every_seed_and_only_when_asked() -> None:
    plain, zero, shifted = _seeded(None), _seeded("0"), _seeded("1000")
    assert plain == zero
    assert shifted != plain
    a, b = shifted.split()
    assert a == b  # both kinds of seeding moved by the same offset


# ------------------------------------------------------------- time budgets


def test_every_notebook_has_a_budget_and_every_budget_a_notebook() -> None:
    table = budgets.load()
    keys = {budgets.key(p) for p in nbtools.notebooks()}
    assert set(table) == keys


def test_budget_verdicts() -> None:
    assert budgets.verdict(140.0, 100.0) == "ok"
    assert budgets.verdict(160.0, 100.0) == "over"
    assert budgets.verdict(1.0, None) == "none"


def test_a_bad_budget_table_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "budgets.yml"
    table.write_text("notebooks/a/b: -3\n")
    with pytest.raises(ValueError, match="positive"):
        budgets.load(table)


def test_no_chapter_stops_training_on_the_clock_or_gates_a_time() -> None:
    import re

    for path in nbtools.notebooks():
        code = "\n".join(
            c.source for c in nbtools.code_cells(nbtools.nbformat.read(path, 4))
        )
        assert "max_seconds" not in code, f"{path.name} trains on the clock"
        for name in re.findall(r"gate(?:_order)?\(\s*[\"']([a-z0-9_]+)[\"']", code):
            assert not re.search(r"seconds|minutes|speedup|_time\b|_time_", name), (
                f"{path.name} gates a wall-clock number: {name}"
            )


# ------------------------------------------------------- numbers in prose


@pytest.mark.parametrize(
    "text",
    [
        "It reaches 1.234 nats.",
        "Accuracy is 95% on the test set.",
        "Training takes 76 s here.",
        "Running it takes about four minutes.",
        "The latent step is 12.8x cheaper.",
        "The spelling score fell by -0.006.",
        "The gap was (-0.15 nats) after training.",
    ],
)
def test_a_typed_measured_number_is_found(text: str) -> None:
    assert prose_numbers.typed_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "It reaches {glue:text}`gpt_val_loss:.3f` nats.",
        "Running it takes {runtime}`this`.",
        "GPT-3 has {lit}`175` billion parameters {cite}`brown2020`.",
        "A layer of 384 units, windows of 100 characters, step 3.",
        "The code `lr = 3e-4 * 0.5` and the math $\\sigma = 0.5$ are skipped.",
        "```python\nx = 1.5\n```",
        "See [the docs](https://example.org/v2.0/).",
        "Claude-3.5 and top-0.9 sampling are names, not measurements.",
    ],
)
def test_glued_literal_code_and_settings_pass(text: str) -> None:
    assert prose_numbers.typed_numbers(text) == []


def test_no_measured_number_is_typed_into_the_book() -> None:
    found = prose_numbers.report()
    lines = [
        f"{page}: {n!r} in {line[:80]!r}"
        for page, hits in found.items()
        for n, line in hits
    ]
    assert lines == [], (
        "glue these numbers from the run ({glue:text}), use {runtime}`this` for a "
        "run time, or mark a literal that is not our measurement {lit}`...`:\n"
        + "\n".join(lines)
    )
