"""aigc_utils.longrun: the budget switch, training and loading long runs, and the
shipped weights themselves (re-evaluated on a small batch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from aigc_utils import longrun

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
    longrun.train("ddpm", steps=2, out_dir=tmp_path, log=lambda _: None)
    model, info = longrun.load("ddpm", directory=tmp_path)
    x = model.sample(2, (1, 28, 28), labels=torch.tensor([3, 7]), guidance=1.0, steps=2)
    assert x.shape == (2, 1, 28, 28) and info["recipe"]["steps"] == 2


def test_dcgan_recipe_trains_and_loads(
    shared_data: Path, tmp_path: Path, one_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(longrun.RECIPES["dcgan"], "cosine", True)  # both paths run
    longrun.train("dcgan", steps=2, out_dir=tmp_path, log=lambda _: None)
    generator, info = longrun.load("dcgan", directory=tmp_path)
    x = generator.sample(3)
    assert x.shape == (3, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert info["curve"]["step"] == [2] and info["metrics"]["IS_1000"] >= 1.0


def test_train_then_load_round_trip(
    shared_data: Path, tmp_path: Path, one_thread
) -> None:
    path = longrun.train("gpt", steps=2, out_dir=tmp_path, log=lambda _: None)
    info = json.loads((tmp_path / "gpt.json").read_text())
    assert info["sha256"] == longrun.sha256(path)
    assert info["recipe"]["steps"] == 2 and info["command"].endswith("longrun gpt")
    assert len(info["curve"]["step"]) == len(info["curve"]["value"]) >= 1
    model, loaded = longrun.load("gpt", directory=tmp_path)
    assert loaded == info and not model.training
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="steps"):
        longrun.train("gpt", steps=0, out_dir=tmp_path)


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


# ------------------------------------------------ the shipped long runs


SHIPPED = ("gpt", "ddpm", "dcgan")


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
