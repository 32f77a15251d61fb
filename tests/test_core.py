"""aigc_utils.runtime, report, training, plotting and checkpoints."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aigc_utils import report
from aigc_utils.checkpoints import (
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from aigc_utils.plotting import image_grid, plot_history, show_images
from aigc_utils.report import check, gate, gate_order, glued, skipped
from aigc_utils.runtime import describe_environment, get_device, seed_everything
from aigc_utils.source import show_source, source
from aigc_utils.training import History, fit, to_device

# ----------------------------------------------------------------- runtime


def test_get_device_auto_and_forced(monkeypatch) -> None:
    monkeypatch.delenv("AIGC_DEVICE", raising=False)
    assert get_device().type in {"cpu", "cuda", "mps"}
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("AIGC_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_get_device_unavailable(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="not available"):
        get_device("cuda")


def test_seed_everything_repeats() -> None:
    seed_everything(3)
    a = torch.randn(4)
    g = seed_everything(3)
    assert torch.equal(a, torch.randn(4))
    assert isinstance(g, torch.Generator)
    with pytest.raises(ValueError, match="non-negative"):
        seed_everything(-1)


def test_describe_environment() -> None:
    line = describe_environment(torch.device("cpu"))
    assert line.startswith("device cpu | torch ") and "threads" in line
    assert "\n" not in describe_environment()


# ------------------------------------------------------------------ report


def test_gate_ok_lines(capsys) -> None:
    gate("vae_test_neg_elbo", 104.2, at_most=105.0)
    gate("acc", torch.tensor(0.97), at_least=0.9)
    gate("mistakes", 256, at_most=300)
    gate("ratio", 0.5, at_least=0.0, at_most=1.0)
    assert capsys.readouterr().out.splitlines() == [
        "metric vae_test_neg_elbo = 104.2 (gate <= 105.0) ok",
        "metric acc = 0.97 (gate >= 0.9) ok",
        "metric mistakes = 256 (gate <= 300.0) ok",
        "metric ratio = 0.5 (gate in [0.0, 1.0]) ok",
    ]


def test_gate_failure_raises_same_line(capsys) -> None:
    with pytest.raises(AssertionError) as err:
        gate("vae_test_neg_elbo", 106.0, at_most=105.0)
    line = "metric vae_test_neg_elbo = 106.0 (gate <= 105.0) FAILED"
    assert str(err.value) == line
    assert capsys.readouterr().out.strip() == line
    with pytest.raises(AssertionError, match="FAILED"):
        gate("x", math.nan, at_least=0.0)
    with pytest.raises(AssertionError, match="FAILED"):
        gate("x", -1.0, at_least=0.0, at_most=1.0)


def test_gate_bad_arguments() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        gate("Bad Name", 1.0, at_most=2.0)
    with pytest.raises(ValueError, match="needs"):
        gate("x", 1.0)
    with pytest.raises(ValueError, match="at_least"):
        gate("x", 1.0, at_least=2.0, at_most=1.0)


def test_gate_order_rising_and_falling(capsys) -> None:
    gate_order("text_val_loss", {"gpt": 1.61, "lstm": 1.63, "5-gram": 1.692})
    gate_order("acc_by_w", {"w=0": 0.9, "w=1": 0.5}, increasing=False, min_step=0.1)
    assert capsys.readouterr().out.splitlines() == [
        "order text_val_loss: gpt 1.61 < lstm 1.63 < 5-gram 1.692 ok",
        "order acc_by_w: w=0 0.9 > w=1 0.5 (steps > 0.1) ok",
    ]


def test_gate_order_failures() -> None:
    with pytest.raises(AssertionError, match="FAILED"):
        gate_order("x", {"a": 1.0, "b": 1.0})  # a tie is not an order
    with pytest.raises(AssertionError, match="FAILED"):
        gate_order("x", {"a": 1.0, "b": 2.0, "c": 1.5})
    with pytest.raises(AssertionError, match="FAILED"):
        gate_order("x", {"a": 1.0, "b": 1.05}, min_step=0.1)
    with pytest.raises(AssertionError, match="FAILED"):
        gate_order("x", {"a": 1.0, "b": math.nan})
    with pytest.raises(ValueError, match="two"):
        gate_order("x", {"a": 1.0})
    with pytest.raises(ValueError, match="snake_case"):
        gate_order("X", {"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match="min_step"):
        gate_order("x", {"a": 1.0, "b": 2.0}, min_step=-1)


def test_glued_reads_the_packaged_value(tmp_path, monkeypatch) -> None:
    store = tmp_path / "glued.json"
    store.write_text('{"dcgan_fid_1000": 120.4, "dcgan_is": 6.8}')
    monkeypatch.setattr(report, "GLUED", store)
    monkeypatch.setattr(report, "_read", {})
    assert glued("dcgan_fid_1000") == 120.4
    assert report._read == {"dcgan_fid_1000": 120.4}
    with pytest.raises(KeyError, match="dcgan_is"):
        glued("dcgan_fid")
    with pytest.raises(ValueError, match="snake_case"):
        glued("DCGAN FID")


def test_report_mode_prints_without_raising(monkeypatch, capsys) -> None:
    monkeypatch.setenv("AIGC_GATES", "report")
    gate("x", 2.0, at_most=1.0)
    gate_order("y", {"a": 2.0, "b": 1.0})
    out = capsys.readouterr().out
    assert "metric x = 2.0 (gate <= 1.0) FAILED" in out
    assert "order y: a 2.0 < b 1.0 FAILED" in out
    monkeypatch.setenv("AIGC_GATES", "maybe")
    with pytest.raises(ValueError, match="AIGC_GATES"):
        gate("x", 2.0, at_most=1.0)


def test_seed_values_read_a_chapter_sweep(tmp_path, monkeypatch) -> None:
    (tmp_path / "dcgan.json").write_text(
        '{"values": {"dcgan_fid": [95.2, 88.6, null, 88.2]}}'
    )
    monkeypatch.setattr(report, "SEEDS", tmp_path)
    monkeypatch.setattr(report, "_files", set())
    assert report.seed_values("dcgan", "dcgan_fid") == [95.2, 88.6, 88.2]
    assert report._files == {str(tmp_path / "dcgan.json")}
    with pytest.raises(KeyError, match="dcgan_is"):
        report.seed_values("dcgan", "dcgan_is")
    with pytest.raises(FileNotFoundError, match="make seeds"):
        report.seed_values("vae", "vae_fid")


def test_skipped_says_which_gate_and_why(capsys) -> None:
    skipped("dcgan_fid_long_below_live", "no short run on a GPU")
    assert capsys.readouterr().out == (
        "skipped dcgan_fid_long_below_live: no short run on a GPU\n"
    )
    with pytest.raises(ValueError, match="snake_case"):
        skipped("Bad", "x")


def test_gate_prints_a_declared_tolerance(capsys) -> None:
    gate("x", 0.5, at_most=1.0, tol=0.05)
    assert capsys.readouterr().out == "metric x = 0.5 (gate <= 1.0, tol 0.05) ok\n"
    with pytest.raises(ValueError, match="tol"):
        gate("x", 0.5, at_most=1.0, tol=0)


def test_check_placeholder_wrong_and_right(capsys) -> None:
    for placeholder in (None, ...):
        with pytest.raises(NotImplementedError, match="replace the placeholder"):
            check("guidance_by_hand", placeholder, -0.7)
    with pytest.raises(TypeError, match="number"):
        check("guidance_by_hand", "minus 0.7", -0.7)
    with pytest.raises(AssertionError, match="off by 0.1"):
        check("guidance_by_hand", -0.6, -0.7)
    with pytest.raises(AssertionError):
        check("x", math.nan, 1.0)
    check("guidance_by_hand", torch.tensor(-0.7), -0.7)
    assert (
        capsys.readouterr().out.strip()
        == "check guidance_by_hand: your answer -0.7 is right"
    )


def test_source_of_package_code() -> None:
    text = source(gate)
    assert text.startswith("def gate(") and "AssertionError" in text
    assert "class" in source(torch.nn.Identity).split("(")[0]
    assert "def gate(" in show_source(gate)._repr_html_() or "gate" in str(
        show_source(gate)
    )
    with pytest.raises(TypeError, match="no Python source"):
        source(len)
    with pytest.raises(TypeError, match="no Python source"):
        source(3)


# ---------------------------------------------------------------- training


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def loss(self, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


def regression_data(n: int = 256) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)


def test_fit_learns_a_linear_map() -> None:
    seed_everything(0)
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    evaluate = lambda m: {"w0": m.linear.weight[0, 0]}  # noqa: E731
    hist = fit(
        model,
        regression_data(),
        opt,
        epochs=30,
        log_every=8,
        progress=False,
        evaluate=evaluate,
        eval_every=64,
        grad_clip=10.0,
    )
    assert hist.final_loss < 1e-3 and hist.epochs == 30
    assert hist.steps[-1] == 240 and len(hist.losses) == 30
    steps, values = hist.metric("w0")
    assert steps[-1] == 240 and abs(values[-1] - 1.0) < 0.05
    assert len(steps) == len(set(steps))  # the final evaluation is not repeated
    assert hist.seconds > 0
    with pytest.raises(KeyError):
        hist.metric("nope")


def test_fit_overfits_one_batch_with_loss_fn_and_limits() -> None:
    seed_everything(0)
    model = nn.Linear(3, 1)
    x, y = next(iter(regression_data()))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100)
    hist = fit(
        model,
        [(x, y)],
        opt,
        epochs=500,
        max_steps=300,
        scheduler=sched,
        loss_fn=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]),
        progress=False,
    )
    assert hist.steps[-1] == 300 and hist.final_loss < 1e-4

    class Counter:
        calls = 0

        def step(self) -> None:
            Counter.calls += 1

    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    lr0 = opt.param_groups[0]["lr"]
    fit(
        model,
        [(x, y)],
        opt,
        epochs=100,
        max_steps=10,
        scheduler=[sched, Counter()],
        loss_fn=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]),
        progress=False,
    )
    assert Counter.calls == 10 and opt.param_groups[0]["lr"] == pytest.approx(lr0 / 4)
    with pytest.raises(TypeError, match="max_seconds"):  # no clock in training
        fit(model, [(x, y)], opt, max_seconds=0.2)  # type: ignore[call-arg]


def test_fit_rejects_bad_input() -> None:
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no loss"):
        fit(model, regression_data(), opt, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(Regressor(), regression_data(), opt, epochs=0)
    with pytest.raises(ValueError, match="max_steps"):
        fit(Regressor(), regression_data(), opt, max_steps=0)
    with pytest.raises(ValueError, match="eval_every"):
        fit(Regressor(), regression_data(), opt, eval_every=5)
    with pytest.raises(ValueError, match="scalar"):
        fit(
            model,
            regression_data(),
            opt,
            progress=False,
            loss_fn=lambda m, b: (m(b[0]) - b[1]) ** 2,
        )
    with pytest.raises(ValueError, match="became"):
        fit(
            model,
            regression_data(),
            opt,
            progress=False,
            loss_fn=lambda m, b: m(b[0]).sum() * math.nan,
        )


def test_fit_accepts_named_loss_terms() -> None:
    from typing import NamedTuple

    class Terms(NamedTuple):
        total: torch.Tensor
        other: torch.Tensor

    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    named = lambda m, b: Terms(m.loss(b), torch.zeros(()))  # noqa: E731
    hist = fit(
        model,
        regression_data(),
        opt,
        epochs=5,
        loss_fn=named,
        log_every=8,
        progress=False,
    )
    assert hist.final_loss < hist.losses[0]


def test_fit_on_a_generator_of_batches() -> None:
    model = Regressor()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batches = (b for b in regression_data())  # no len(): unknown total
    hist = fit(model, batches, opt, progress=True, log_every=3)
    assert hist.steps == [3, 6, 8]


def test_to_device_structures() -> None:
    batch = {"x": torch.zeros(1), "pair": (torch.ones(1), [torch.ones(1)]), "n": 3}
    moved = to_device(batch, "cpu")
    assert moved["n"] == 3 and isinstance(moved["pair"], tuple)
    assert torch.equal(moved["pair"][1][0], torch.ones(1))


# ---------------------------------------------------------------- plotting


def test_image_grid_shapes() -> None:
    grid = image_grid(torch.rand(10, 1, 4, 5), nrow=4, padding=1)
    assert grid.shape == (3 * 5 + 1, 4 * 6 + 1)
    assert image_grid(torch.rand(2, 3, 4, 4), nrow=8).shape == (8, 14, 3)
    assert image_grid(torch.rand(3, 4, 4)).dim() == 2
    for bad in (torch.rand(2, 2, 4, 4), torch.rand(4, 4), torch.zeros(0, 1, 4, 4)):
        with pytest.raises(ValueError, match="shape"):
            image_grid(bad)
    with pytest.raises(ValueError, match="floating"):
        image_grid(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.rand(2, 1, 4, 4), nrow=0)


def test_show_images_and_history() -> None:
    fig = show_images(
        torch.rand(6, 1, 8, 8) * 2 - 1, nrow=3, title="t", value_range=(-1, 1)
    )
    assert isinstance(fig, Figure)
    fig = show_images(torch.rand(3, 1, 8, 8), labels=["a", "b", "c"], title="t")
    assert len([a for a in fig.axes if a.get_title()]) == 3
    with pytest.raises(ValueError, match="labels"):
        show_images(torch.rand(3, 1, 8, 8), labels=["a"])
    hist = History(steps=[1, 2], losses=[1.0, 0.5], evals=[{"step": 2.0, "acc": 0.9}])
    fig = plot_history(hist, metrics=["acc"], title="h")
    assert [a.get_ylabel() for a in fig.axes] == ["training loss", "acc"]
    with pytest.raises(ValueError, match="no logged"):
        plot_history(History())


# ------------------------------------------------------------- checkpoints


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    depth: int = 1


@dataclasses.dataclass(frozen=True)
class OtherConfig:
    width: int = 4


def test_checkpoint_roundtrip(tmp_path) -> None:
    cfg = TinyConfig()
    model = nn.Linear(cfg.width, 2)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, cfg, extra={"step": 7})
    fresh = nn.Linear(cfg.width, 2)
    assert load_checkpoint(path, fresh, cfg) == {"step": 7}
    assert torch.equal(fresh.weight, model.weight)
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp files left


def test_checkpoint_from_other_config_is_refused(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", nn.Linear(4, 2), TinyConfig())
    with pytest.raises(CheckpointMismatchError, match="width: checkpoint 4 vs model 8"):
        load_checkpoint(path, nn.Linear(8, 2), TinyConfig(width=8))
    with pytest.raises(CheckpointMismatchError, match="OtherConfig|TinyConfig"):
        load_checkpoint(path, nn.Linear(4, 2), OtherConfig())


class _Payload:
    """An arbitrary object: unpickling it would run code of the file's choosing."""

    def __reduce__(self):  # noqa: ANN204
        return (print, ("this must never run",))


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"config": {}, "state_dict": {}, "extra": _Payload()}, path)
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_checkpoint(path, nn.Linear(1, 1), TinyConfig())
    assert "must never run" not in capsys.readouterr().out


def test_checkpoint_bad_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt", nn.Linear(1, 1), TinyConfig())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_checkpoint(junk, nn.Linear(1, 1), TinyConfig())
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match="not a checkpoint saved by"):
        load_checkpoint(plain, nn.Linear(1, 1), TinyConfig())
    with pytest.raises(TypeError, match="dataclass"):
        save_checkpoint(tmp_path / "x.pt", nn.Linear(1, 1), {"width": 1})
