"""One training loop for every model of the course.

``fit`` runs the optimisation, shows a tqdm progress bar, times itself and
returns a :class:`History` (plain data; :mod:`aigc_utils.plotting` draws it).
A model either offers ``model.loss(batch) -> Tensor`` (the course's convention)
or you pass ``loss_fn(model, batch) -> Tensor``.

The loop is lean on purpose: it reads the loss back from the device only every
``log_every`` steps, because a per-step ``.item()`` synchronises and costs time
on small models.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.std import tqdm

Batch = Any


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes:
        steps: optimisation step (1-based) of each entry of ``losses``.
        losses: mean training loss over the ``log_every`` steps ending at ``steps``.
        evals: one dict per evaluation, with ``"step"`` and the metrics returned
            by ``evaluate``.
        seconds: wall-clock training time, evaluations excluded.
        epochs: number of passes over the data that were started.
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    epochs: int = 0

    @property
    def final_loss(self) -> float:
        """The last logged training loss (NaN before any step)."""
        return self.losses[-1] if self.losses else math.nan

    def metric(self, name: str) -> tuple[list[int], list[float]]:
        """Steps and values of one evaluation metric, for plotting."""
        rows = [e for e in self.evals if name in e]
        if not rows:
            raise KeyError(f"no evaluation recorded {name!r}")
        return [int(e["step"]) for e in rows], [e[name] for e in rows]


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    """Move a tensor, or a tuple/list/dict of tensors, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def fit(
    model: nn.Module,
    data: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int = 1,
    max_steps: int | None = None,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    scheduler: Any = None,
    grad_clip: float | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    log_every: int = 50,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``data`` and return its :class:`History`.

    Args:
        model: the network; in train mode during steps, eval mode during
            ``evaluate`` (restored afterwards).
        data: an iterable of batches (a DataLoader), re-iterated each epoch.
        optimizer: built over ``model``'s parameters.
        epochs: passes over ``data``; training stops earlier at ``max_steps``.
            There is deliberately no time limit: a run that stopped on the
            clock would give different results on a slower machine.
        loss_fn: ``loss_fn(model, batch) -> scalar``; default ``model.loss(batch)``.
            A NamedTuple of named terms with a ``total`` field also works.
        scheduler: stepped once after every optimiser step; a list or tuple
            of them (e.g. a learning-rate schedule and an EMA) is stepped in order.
        grad_clip: clip the global gradient norm to this value.
        evaluate: ``evaluate(model) -> {"name": value}``, called under
            ``torch.no_grad()`` every ``eval_every`` steps and at the end.
        log_every: steps averaged into one entry of ``History.losses``.
        device: where batches go; default: the device of the model's parameters.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: bad arguments, a model without ``loss`` and no ``loss_fn``,
            a non-scalar loss, or a loss that became NaN or infinite.
    """
    if epochs < 1 or log_every < 1:
        raise ValueError("epochs and log_every must be >= 1")
    if max_steps is not None and max_steps < 1:
        raise ValueError("max_steps must be >= 1")
    if eval_every is not None and (evaluate is None or eval_every < 1):
        raise ValueError("eval_every needs an evaluate function and must be >= 1")
    if loss_fn is None:
        if not callable(getattr(model, "loss", None)):
            raise ValueError(
                f"{type(model).__name__} has no loss(batch) method: pass loss_fn"
            )
        loss_fn = lambda m, b: m.loss(b)  # noqa: E731
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")

    if scheduler is None:
        schedulers: list[Any] = []
    elif isinstance(scheduler, (list, tuple)):
        schedulers = list(scheduler)
    else:
        schedulers = [scheduler]
    history = History()
    try:
        per_epoch = len(data)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    total = per_epoch * epochs if per_epoch is not None else None
    if max_steps is not None:
        total = min(total, max_steps) if total is not None else max_steps
    # Plain-text bar on stdout: it renders the same in a terminal, Jupyter, Colab
    # and the built book (a widget bar would need JavaScript from the internet).
    bar = tqdm(
        total=total,
        disable=not progress,
        unit="step",
        file=sys.stdout,
        mininterval=0.5,
        dynamic_ncols=False,
        ncols=100,
    )

    def run_eval(step: int) -> None:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model).items()}  # type: ignore[misc]
        model.train(was_training)
        history.evals.append({"step": float(step), **metrics})
        bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)

    def log_window(step: int, mean_loss: torch.Tensor) -> None:
        mean = mean_loss.item()
        if not math.isfinite(mean):
            bar.close()
            raise ValueError(
                f"the training loss became {mean} at step {step}: lower the "
                "learning rate or check the data"
            )
        history.steps.append(step)
        history.losses.append(mean)
        bar.set_postfix(loss=f"{mean:.4g}", refresh=False)

    step, running, in_window = 0, torch.zeros((), device=device), 0
    train_time, started, done = 0.0, time.perf_counter(), False
    model.train()
    for _ in range(epochs):
        history.epochs += 1
        for batch in data:
            batch = to_device(batch, device)
            loss = loss_fn(model, batch)
            loss = getattr(loss, "total", loss)  # a NamedTuple of named terms
            if loss.dim() != 0:
                raise ValueError(f"the loss must be a scalar, got shape {loss.shape}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            for sched in schedulers:
                sched.step()
            step += 1
            running += loss.detach()
            in_window += 1
            bar.update(1)
            stop = max_steps is not None and step >= max_steps
            if in_window == log_every or stop:
                log_window(step, running / in_window)
                running.zero_()
                in_window = 0
            if eval_every is not None and step % eval_every == 0 and not stop:
                train_time += time.perf_counter() - started
                run_eval(step)
                started = time.perf_counter()
            if stop:
                done = True
                break
        if done:
            break
    if in_window:  # a last partial window
        log_window(step, running / in_window)
    train_time += time.perf_counter() - started
    history.seconds = train_time
    if evaluate is not None and (
        not history.evals or history.evals[-1]["step"] != step
    ):
        run_eval(step)
    bar.close()
    return history


def cosine_lr(step: int, total: int, warmup: int = 0, floor: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
