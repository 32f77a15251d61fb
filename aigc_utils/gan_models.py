"""GAN players for the course and the one adversarial training loop.

- :class:`MLPGenerator` / :class:`MLPDiscriminator`: fully connected players,
  for points in the plane (``data_shape=(2,)``) or for 28x28 images
  (``data_shape=(1, 28, 28)``, a tanh output in [-1, 1]).
- :class:`DCGenerator` / :class:`DCDiscriminator`: the convolutional players of
  Radford et al. (2016) scaled to 28x28x1 (strided convolutions, batch norm, no
  pooling, ReLU in G and LeakyReLU in D); ``num_classes > 0`` makes them a
  conditional GAN (Mirza & Osindero 2014): a one-hot label is concatenated to
  ``z`` and, as constant maps, to the discriminator's input channels.
- :func:`train_gan`: alternating updates with :func:`aigc_utils.gans.adversarial_step`,
  a progress bar, a :class:`GANHistory` of both players' curves, and an optional
  exponential moving average (EMA) of the generator's weights.

Generators map ``z`` to data in the discriminator's space (images in [-1, 1]);
``sample(n)`` returns what a reader looks at: images in [0, 1], points as they are.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.std import tqdm

from .gans import adversarial_step

__all__ = [
    "DCDiscriminator",
    "DCGANConfig",
    "DCGenerator",
    "GANHistory",
    "MLPDiscriminator",
    "MLPGANConfig",
    "MLPGenerator",
    "plot_gan_history",
    "train_gan",
]


@dataclass(frozen=True)
class MLPGANConfig:
    """Sizes of the MLP players: ``latent -> hidden x depth -> data`` and back."""

    data_shape: tuple[int, ...] = (1, 28, 28)
    latent_dim: int = 64
    hidden: int = 256
    depth: int = 2

    def __post_init__(self) -> None:
        if min(self.latent_dim, self.hidden, self.depth, *self.data_shape) < 1:
            raise ValueError(f"every size must be >= 1, got {self}")

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3


def _mlp(sizes: list[int], act: Callable[[], nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


def _noise(n: int, latent_dim: int, device: torch.device) -> torch.Tensor:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return torch.randn(n, latent_dim, device=device)


class MLPGenerator(nn.Module):
    """``z: (B, latent_dim) -> (B, *data_shape)``; images through tanh."""

    def __init__(self, config: MLPGANConfig = MLPGANConfig()) -> None:
        super().__init__()
        self.config, self.latent_dim = config, config.latent_dim
        out = math.prod(config.data_shape)
        sizes = [config.latent_dim, *[config.hidden] * config.depth, out]
        self.net = _mlp(sizes, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z).reshape(len(z), *self.config.data_shape)
        return torch.tanh(x) if self.config.is_image else x

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples: images ``(n, 1, 28, 28)`` in [0, 1], or points ``(n, d)``."""
        x = self(_noise(n, self.latent_dim, next(self.parameters()).device))
        return (x + 1) / 2 if self.config.is_image else x


class MLPDiscriminator(nn.Module):
    """``x: (B, *data_shape) -> (B,)`` logits; LeakyReLU(0.2) hidden layers."""

    def __init__(self, config: MLPGANConfig = MLPGANConfig()) -> None:
        super().__init__()
        self.config = config
        sizes = [math.prod(config.data_shape), *[config.hidden] * config.depth, 1]
        self.net = _mlp(sizes, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


@dataclass(frozen=True)
class DCGANConfig:
    """Sizes of the DCGAN players for 28x28x1 images.

    ``channels`` is the width at 14x14 (``2 * channels`` at 7x7), in both players.
    ``num_classes > 0`` gives a conditional GAN with one-hot labels.
    """

    latent_dim: int = 64
    channels: int = 32
    num_classes: int = 0

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.channels < 1 or self.num_classes < 0:
            raise ValueError(f"sizes must be >= 1 (num_classes >= 0), got {self}")


def _one_hot(labels: torch.Tensor | None, config: DCGANConfig, n: int) -> torch.Tensor:
    if config.num_classes == 0:
        raise ValueError("this model is unconditional: do not pass labels")
    if labels is None or labels.shape != (n,) or labels.is_floating_point():
        raise ValueError(f"a conditional model needs integer labels of shape ({n},)")
    if labels.min() < 0 or labels.max() >= config.num_classes:
        raise ValueError(f"labels must lie in [0, {config.num_classes})")
    return F.one_hot(labels, config.num_classes).float()


def _dcgan_init(module: nn.Module) -> None:
    # Radford et al. (2016): weights from N(0, 0.02), batch-norm scales N(1, 0.02)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias) if m.bias is not None else None
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGenerator(nn.Module):
    """``z: (B, latent) [, labels: (B,)] -> (B, 1, 28, 28)`` in [-1, 1].

    Project to 7x7x(2c), then two stride-2 transposed convolutions (7 -> 14 ->
    28) with batch norm and ReLU, and tanh at the output.
    """

    def __init__(self, config: DCGANConfig = DCGANConfig()) -> None:
        super().__init__()
        self.config, self.latent_dim, c = config, config.latent_dim, config.channels
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim + config.num_classes, 2 * c * 49, bias=False),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        if labels is not None or self.config.num_classes:
            z = torch.cat([z, _one_hot(labels, self.config, len(z))], dim=1)
        return self.up(self.project(z))

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images ``(n, 1, 28, 28)`` in [0, 1].

        A conditional generator draws the digits ``labels`` ``(n,)``; without
        them it cycles through the classes (0, 1, ..., 9, 0, ...).
        """
        device = next(self.parameters()).device
        z = _noise(n, self.latent_dim, device)
        if self.config.num_classes and labels is None:
            labels = torch.arange(n, device=device) % self.config.num_classes
        return (self(z, None if labels is None else labels.to(device)) + 1) / 2


class DCDiscriminator(nn.Module):
    """``x: (B, 1, 28, 28) in [-1, 1] [, labels] -> (B,)`` logits.

    Two stride-2 convolutions (28 -> 14 -> 7) with LeakyReLU(0.2), batch norm
    on the second (not on the input layer, as Radford et al. advise), then a
    linear layer to one logit.
    """

    def __init__(self, config: DCGANConfig = DCGANConfig()) -> None:
        super().__init__()
        self.config, c = config, config.channels
        self.net = nn.Sequential(
            nn.Conv2d(1 + config.num_classes, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * c * 49, 1),
        )
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        if x.shape[1:] != (1, 28, 28):
            raise ValueError(f"images must be (B, 1, 28, 28), got {tuple(x.shape)}")
        if labels is not None or self.config.num_classes:
            maps = _one_hot(labels, self.config, len(x))[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, 28, 28)], dim=1)
        return self.net(x).squeeze(1)


@dataclass
class GANHistory:
    """What happened in :func:`train_gan`: curves averaged over ``log_every`` steps.

    Attributes:
        steps: the step (1-based) that ends each logged window.
        loss_d, loss_g, d_real, d_fake: window means of the discriminator's and
            generator's losses and of ``D`` on real and generated samples.
        evals: one dict per evaluation, with ``"step"`` and the metrics.
        seconds: training time, evaluations excluded.
    """

    steps: list[int] = field(default_factory=list)
    loss_d: list[float] = field(default_factory=list)
    loss_g: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def metric(self, name: str) -> tuple[list[int], list[float]]:
        """Steps and values of one evaluation metric, for plotting."""
        rows = [e for e in self.evals if name in e]
        if not rows:
            raise KeyError(f"no evaluation recorded {name!r}")
        return [int(e["step"]) for e in rows], [e[name] for e in rows]


def _batches(data: Iterable[Any]) -> Any:
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ValueError("data yielded no batches")


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: Iterable[Any],
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    steps: int,
    saturating: bool = False,
    d_steps: int = 1,
    ema_decay: float | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    log_every: int = 50,
    progress: bool = True,
    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = (),
) -> tuple[GANHistory, nn.Module]:
    """Train a GAN for ``steps`` generator updates; return its history and G.

    Each step makes ``d_steps`` discriminator updates (each on a fresh batch)
    and then one generator update, by :func:`aigc_utils.gans.adversarial_step`.

    Args:
        generator: has ``latent_dim``; conditional when batches carry labels.
        data: iterable of batches ``x`` or ``(x, labels)`` on the models'
            device, re-iterated as often as needed.
        saturating: the minimax generator loss instead of the non-saturating one.
        ema_decay: keep an exponential moving average of G's weights with this
            decay (e.g. 0.999) and return it instead of ``generator``. The
            decay at step ``t`` is ``min(ema_decay, (1 + t) / (10 + t))``, so
            the random initial weights are soon forgotten in short runs.
        evaluate: ``evaluate(G) -> {"name": value}`` on the returned generator,
            in eval mode under ``torch.no_grad()``, every ``eval_every`` steps
            and at the end; its time is not counted in ``seconds``.
        schedulers: learning-rate schedulers (of either optimizer), each
            stepped once after every generator update.

    Returns:
        ``(history, G)``: G is ``generator`` itself, or its EMA copy.

    Raises:
        ValueError: bad counts, or a loss that became NaN or infinite.
    """
    if min(steps, d_steps, log_every) < 1 or (
        eval_every is not None and eval_every < 1
    ):
        raise ValueError("steps, d_steps, log_every and eval_every must be >= 1")
    if ema_decay is not None and not 0 < ema_decay < 1:
        raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
    device = next(generator.parameters()).device
    ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay else None
    out = ema if ema is not None else generator
    history, batches = GANHistory(), _batches(data)
    window = torch.zeros(4, device=device)
    bar = tqdm(total=steps, disable=not progress, unit="step", file=sys.stdout,
               mininterval=0.5, ncols=100)  # fmt: skip

    def run_eval(step: int) -> None:
        out.eval()
        with torch.no_grad():
            values = {k: float(v) for k, v in evaluate(out).items()}  # type: ignore[misc]
        history.evals.append({"step": float(step), **values})
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)

    generator.train(), discriminator.train()
    started, in_window = time.perf_counter(), 0
    for step in range(1, steps + 1):
        for k in range(d_steps):
            batch = next(batches)
            real, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
            z = torch.randn(len(real), generator.latent_dim, device=device)
            stats = adversarial_step(
                generator, discriminator, opt_g, opt_d, real, z, labels,
                saturating=saturating, train_generator=k == d_steps - 1,
            )  # fmt: skip
        if ema is not None:  # warm-up: early on, average over fewer steps
            decay = min(ema_decay, (1 + step) / (10 + step))  # type: ignore[type-var]
            _ema_update(ema, generator, decay)
        for scheduler in schedulers:
            scheduler.step()
        window += torch.stack(list(stats))
        in_window += 1
        bar.update(1)
        if in_window == log_every or step == steps:
            means = (window / in_window).tolist()
            if not all(math.isfinite(v) for v in means):
                bar.close()
                raise ValueError(f"a loss became {means[:2]} at step {step}")
            history.steps.append(step)
            for name, value in zip(("loss_d", "loss_g", "d_real", "d_fake"), means):
                getattr(history, name).append(value)
            window.zero_()
            in_window = 0
        if evaluate is not None and (
            step == steps or (eval_every and step % eval_every == 0)
        ):
            history.seconds += time.perf_counter() - started
            run_eval(step)
            generator.train()
            started = time.perf_counter()
    history.seconds += time.perf_counter() - started
    bar.close()
    out.eval()
    return history, out


def plot_gan_history(history: GANHistory, title: str | None = None) -> Any:
    """Two panels against step: both losses, and mean ``D`` on real and fake.

    The horizontal lines mark the values at the game's equilibrium, where
    ``D = 1/2`` everywhere: ``loss_d = log 4`` and the non-saturating
    ``loss_g = log 2``. Returns the matplotlib ``Figure``.

    Raises:
        ValueError: a history with nothing logged.
    """
    import matplotlib.pyplot as plt

    if not history.steps:
        raise ValueError("the history has no logged steps: nothing to plot")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(history.steps, history.loss_d, label="discriminator loss")
    left.plot(history.steps, history.loss_g, label="generator loss")
    left.axhline(math.log(4), color="grey", ls=":", lw=1, label="log 4, log 2")
    left.axhline(math.log(2), color="grey", ls=":", lw=1)
    left.set(xlabel="step", ylabel="loss (nats)", title="losses")
    right.plot(history.steps, history.d_real, label="D(x), real")
    right.plot(history.steps, history.d_fake, label="D(G(z)), generated")
    right.axhline(0.5, color="grey", ls=":", lw=1)
    right.set(xlabel="step", ylabel="mean D", ylim=(0, 1), title="discriminator")
    for ax in (left, right):
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
