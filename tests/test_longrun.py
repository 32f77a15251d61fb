"""aigc_utils.longrun: the budget switch, training and loading long runs, the
shipped weights' protection (never written unasked, pinned by SHA-256) and the
shipped weights themselves (re-evaluated on a small batch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from aigc_utils import longrun

SHIPPED = ("gpt", "ddpm", "dcgan")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _shipped_record(name: str) -> dict:
    return json.loads((longrun._PACKAGE_LONGRUN / f"{name}.json").read_text())


def _same_layout(trained: dict, name: str) -> None:
    """A record ``train`` wrote has the shipped record's keys, curve and metrics."""
    shipped = _shipped_record(name)
    assert tuple(trained)[: len(longrun.RECORD_KEYS)] == longrun.RECORD_KEYS
    assert trained["curve"].keys() == shipped["curve"].keys()
    assert trained["metrics"].keys() == shipped["metrics"].keys()
    assert trained["recipe"].keys() == shipped["recipe"].keys()
    assert trained["config"].keys() == shipped["config"].keys()


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's assets under tmp_path, standing in for the real
    ones (``PACKAGE_ASSETS`` and ``ASSETS`` point at it); returns its long-run
    folder."""
    assets = tmp_path / "pkg" / "assets"
    shutil.copytree(longrun._PACKAGE_LONGRUN, assets / "longrun")
    monkeypatch.setattr(longrun, "PACKAGE_ASSETS", assets)
    monkeypatch.setattr(longrun, "ASSETS", assets / "longrun")
    return assets / "longrun"


# ---------------------------------------------------------------- budget


def test_budget_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGC_BUDGET", raising=False)
    assert longrun.budget(torch.device("cpu")) == "cpu"
    assert longrun.budget(torch.device("cuda")) == "gpu"
    assert longrun.budget(torch.device("mps")) == "cpu"


def test_budget_override_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGC_BUDGET", "GPU")
    assert longrun.budget(torch.device("cpu")) == "gpu"
    monkeypatch.setenv("AIGC_BUDGET", "cpu")
    assert longrun.budget(torch.device("cuda")) == "cpu"
    monkeypatch.setenv("AIGC_BUDGET", "tpu")
    with pytest.raises(ValueError, match="AIGC_BUDGET"):
        longrun.budget()


# ------------------------------------------------------- train, load, errors


def test_unknown_run() -> None:
    with pytest.raises(KeyError, match="no long run"):
        longrun.build("vae")
    with pytest.raises(KeyError, match="no long run"):
        longrun.load("vae")
    with pytest.raises(KeyError, match="no long run"):
        longrun.train("vae", steps=1)


def test_ddpm_recipe_trains_and_loads(
    shared_data: Path, tmp_path: Path, one_thread
) -> None:
    longrun.train("ddpm", steps=2, out_dir=tmp_path, note="busy", log=lambda _: None)
    model, info = longrun.load("ddpm", directory=tmp_path)
    x = model.sample(2, (1, 28, 28), labels=torch.tensor([3, 7]), guidance=1.0, steps=2)
    assert x.shape == (2, 1, 28, 28) and info["recipe"]["steps"] == 2
    assert tuple(info) == (*longrun.RECORD_KEYS, "note") and info["note"] == "busy"
    _same_layout(info, "ddpm")


def test_dcgan_recipe_trains_and_loads(
    shared_data: Path, tmp_path: Path, one_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(longrun.RECIPES["dcgan"], "cosine", True)  # both paths run
    longrun.train("dcgan", steps=2, out_dir=tmp_path, log=lambda _: None)
    generator, info = longrun.load("dcgan", directory=tmp_path)
    x = generator.sample(3)
    assert x.shape == (3, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert info["curve"]["step"] == [2] and info["metrics"]["IS_1000"] >= 1.0
    assert tuple(info) == longrun.RECORD_KEYS  # no note unless one is given
    _same_layout(info, "dcgan")


def test_train_then_load_round_trip(
    shared_data: Path, tmp_path: Path, one_thread
) -> None:
    (tmp_path / "gpt.json").write_text("{}")  # the user's own file
    with pytest.raises(
        FileExistsError, match="overwrite existing .*gpt.json.*--overwrite"
    ):
        longrun.train("gpt", steps=2, out_dir=tmp_path, log=lambda _: None)
    assert (tmp_path / "gpt.json").read_text() == "{}"  # untouched, nothing trained
    assert not (tmp_path / "gpt.pt").exists()
    path = longrun.train(
        "gpt", steps=2, out_dir=tmp_path, overwrite=True, log=lambda _: None
    )
    info = json.loads((tmp_path / "gpt.json").read_text())
    _same_layout(info, "gpt")
    assert info["sha256"] == longrun.sha256(path)
    assert info["recipe"]["steps"] == 2 and info["command"].endswith("longrun gpt")
    assert len(info["curve"]["step"]) == len(info["curve"]["value"]) >= 1
    model, loaded = longrun.load("gpt", directory=tmp_path)
    assert loaded == info and not model.training
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="steps"):
        longrun.train("gpt", steps=0, out_dir=tmp_path, overwrite=True)


def test_missing_and_corrupted_weights_say_how_to_retrain(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m aigc_utils.longrun ddpm"):
        longrun.load("ddpm", directory=tmp_path)
    for name in ("gpt.pt", "gpt.json"):
        shutil.copy(longrun.ASSETS / name, tmp_path / name)
    data = bytearray((tmp_path / "gpt.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "gpt.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256.*python -m aigc_utils.longrun gpt"):
        longrun.load("gpt", directory=tmp_path)


# ------------------------------------- the shipped files: never written unasked


def test_smoke_test_leaves_the_shipped_weights_alone(
    shared_data: Path,
    shipped_copy: Path,
    tmp_path: Path,
    one_thread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m aigc_utils.longrun gpt --steps 5`, the documented smoke test,
    writes neither the package's assets nor the copy standing in for them (which
    a regression to the old default would hit first)."""
    package = longrun._PACKAGE_LONGRUN  # the real aigc_utils/assets/longrun
    before, copy = _snapshot(package), _snapshot(shipped_copy)
    monkeypatch.chdir(tmp_path)
    assert longrun.main(["gpt", "--steps", "5"]) == 0
    out = tmp_path / "longrun-out"
    printed = capsys.readouterr().out
    assert f"written to {out / 'gpt.pt'} and {out / 'gpt.json'}" in printed
    assert _snapshot(package) == before  # byte for byte
    assert _snapshot(shipped_copy) == copy
    model, info = longrun.load("gpt", directory=out)  # the user's own weights load
    assert info["recipe"]["steps"] == 5 and not model.training

    # a second run refuses, before training, to overwrite the user's files
    mine = _snapshot(out)
    with pytest.raises(SystemExit) as exit_:
        longrun.main(["gpt", "--steps", "5"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "refusing to overwrite existing" in error and "gpt.pt" in error
    assert "--overwrite" in error
    with pytest.raises(FileExistsError, match="refusing to overwrite existing"):
        longrun.train("gpt", steps=5)  # the Python API too
    assert _snapshot(out) == mine
    assert _snapshot(package) == before and _snapshot(shipped_copy) == copy


def test_only_overwrite_writes_into_the_assets(
    shared_data: Path,
    shipped_copy: Path,
    one_thread,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = _snapshot(longrun._PACKAGE_LONGRUN)
    before = _snapshot(shipped_copy)
    for argv in (["--shipped"], ["--out", str(shipped_copy)]):
        with pytest.raises(SystemExit) as exit_:
            longrun.main(["gpt", "--steps", "2", *argv])
        assert exit_.value.code == 2
        assert "shipped with aigc_utils" in capsys.readouterr().err
    for folder in (shipped_copy, shipped_copy.parent / "elsewhere"):
        with pytest.raises(PermissionError, match="overwrite=True"):
            longrun.train("gpt", steps=2, out_dir=folder)
    assert _snapshot(shipped_copy) == before
    assert not (shipped_copy.parent / "elsewhere").exists()

    assert longrun.main(["gpt", "--steps", "2", "--shipped", "--overwrite"]) == 0
    after = _snapshot(shipped_copy)
    assert after.keys() == before.keys()  # no stray temporary files
    changed = {f for f in before if after[f] != before[f]}
    assert changed == {"gpt.pt", "gpt.json"}
    new_pt = longrun.sha256(shipped_copy / "gpt.pt")
    assert f'"gpt.pt": "{new_pt}",' in capsys.readouterr().out  # the pin to paste
    with pytest.raises(ValueError, match="gpt.pt has SHA-256"):
        longrun.load("gpt")  # not loaded until the new hashes are pinned
    assert _snapshot(longrun._PACKAGE_LONGRUN) == real


# ------------------------------------- the shipped files: pinned by SHA-256


def test_pins_cover_every_shipped_file() -> None:
    files = {p.name for p in longrun._PACKAGE_LONGRUN.iterdir()}
    assert set(longrun.SHIPPED_SHA256) == files
    for file, digest in longrun.SHIPPED_SHA256.items():
        assert longrun.sha256(longrun._PACKAGE_LONGRUN / file) == digest, file


def test_shipped_records_carry_only_what_train_writes() -> None:
    for name in SHIPPED:
        keys = tuple(_shipped_record(name))
        assert keys in (longrun.RECORD_KEYS, (*longrun.RECORD_KEYS, "note")), name


@pytest.mark.parametrize("file", ["gpt.pt", "gpt.json"])
def test_substituted_shipped_file_is_refused(shipped_copy: Path, file: str) -> None:
    longrun.load("gpt")  # the untouched copy loads
    path = shipped_copy / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if file == "gpt.pt":  # a record that agrees with the substitute
        record = json.loads((shipped_copy / "gpt.json").read_text())
        record["sha256"] = longrun.sha256(path)
        (shipped_copy / "gpt.json").write_text(json.dumps(record, indent=1) + "\n")
    expected = longrun.SHIPPED_SHA256[file]
    found = longrun.sha256(path)
    with pytest.raises(ValueError) as error:
        longrun.load("gpt")
    message = str(error.value)
    assert f"shipped file {path} has SHA-256 {found}, expected {expected}" in message
    assert "reinstall aigc_utils" in message and "SHIPPED_SHA256" in message


# ------------------------------------------------ the shipped long runs


def test_shipped_weights_are_small_and_recorded() -> None:
    total = 0
    for name in SHIPPED:
        info = json.loads((longrun.ASSETS / f"{name}.json").read_text())
        assert info["sha256"] == longrun.sha256(longrun.ASSETS / f"{name}.pt")
        recipe = {k: v for k, v in longrun.RECIPES[name].items() if k != "minutes_cpu"}
        assert info["recipe"] == json.loads(json.dumps(recipe)), name  # the same recipe
        total += (longrun.ASSETS / f"{name}.pt").stat().st_size
    assert total <= 20 * 2**20


def test_shipped_gpt_still_predicts(shared_data: Path, one_thread) -> None:
    from aigc_utils.data import shakespeare_splits
    from aigc_utils.text import lm_loss

    model, info = longrun.load("gpt")
    _, val, _ = shakespeare_splits()
    loss = lm_loss(model, val, model.config.block_size, max_windows=40)
    assert loss < info["metrics"]["val_loss"] + 0.15  # 5k characters: noisy, not broken


def test_shipped_ddpm_still_draws_the_asked_digit(
    shared_data: Path, one_thread
) -> None:
    from aigc_utils import metrics
    from aigc_utils.evaluator import load_evaluator

    model, _ = longrun.load("ddpm")
    labels = torch.arange(10).repeat(3)
    x = model.sample(
        30, (1, 28, 28), labels=labels, guidance=2.0, steps=10, clip=1.0,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    _, probs = metrics.evaluate_images(load_evaluator(), ((x + 1) / 2).clamp(0, 1))
    assert metrics.label_accuracy(probs, labels) >= 0.8  # broken weights score ~0.1


def test_shipped_dcgan_still_draws_digits(shared_data: Path, one_thread) -> None:
    from aigc_utils import metrics
    from aigc_utils.evaluator import load_evaluator

    generator, info = longrun.load("dcgan")
    torch.manual_seed(0)
    _, probs = metrics.evaluate_images(load_evaluator(), generator.sample(500))
    # broken weights (noise, one blob) score an IS near 1; 500 samples are noisy
    assert metrics.inception_score(probs) >= info["metrics"]["IS_1000"] - 1.0
