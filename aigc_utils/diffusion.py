"""Denoising diffusion: the noise schedule, the training loss and the samplers.

The forward process adds Gaussian noise in ``T`` small steps,
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``, so that in closed
form ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with
``abar_t = prod_{s<=t} (1 - beta_s)`` (Sohl-Dickstein et al. 2015; Ho et al.
2020). A network ``eps_theta(x_t, t, y)`` learns to predict the noise; the
samplers run the process backwards: DDPM's ancestral step (Ho et al. 2020) or
DDIM's (Song et al. 2021), with classifier-free guidance (Ho and Salimans 2022)
and RePaint-style inpainting (Lugmayr et al. 2022).

The schedule (:class:`NoiseSchedule`) holds no weights and knows no network,
as in diffusers; :class:`Diffusion` joins a schedule and a network and offers
the course's two verbs, ``loss(batch)`` and ``sample(n, ...)``. Timesteps are
0-based: ``t = 0`` is the first noising step and ``t = T - 1`` the last.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.std import tqdm

__all__ = [
    "EMA",
    "Diffusion",
    "MLPDenoiser",
    "NoiseSchedule",
    "timestep_embedding",
]


def _cosine_betas(steps: int, s: float = 0.008) -> torch.Tensor:
    # Nichol & Dhariwal (2021), eq. 17: abar(t) = cos^2((t/T + s)/(1 + s) * pi/2)
    f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) /
                  (1 + s) * math.pi / 2) ** 2  # fmt: skip
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


class NoiseSchedule:
    """The variances ``beta_t`` of the forward process and everything derived.

    Args:
        num_timesteps: ``T``, the number of noising steps.
        kind: ``"linear"`` (``beta`` from ``beta_start`` to ``beta_end``, Ho et
            al. 2020) or ``"cosine"`` (Nichol and Dhariwal 2021).

    Attributes (float64 tensors of shape ``(T,)``): ``betas``, ``alphas``
    ``= 1 - betas`` and ``alphas_cumprod`` (``abar_t``).

    Raises:
        ValueError: ``num_timesteps < 1``, an unknown ``kind`` or betas
            outside (0, 1).
    """

    def __init__(
        self,
        num_timesteps: int = 1000,
        kind: str = "cosine",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        if num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
        if kind == "linear":
            if not 0 < beta_start <= beta_end < 1:
                raise ValueError("need 0 < beta_start <= beta_end < 1")
            betas = torch.linspace(beta_start, beta_end, num_timesteps)
            betas = betas.double()
        elif kind == "cosine":
            betas = _cosine_betas(num_timesteps)
        else:
            raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
        self.num_timesteps, self.kind = num_timesteps, kind
        self.betas = betas
        self.alphas = 1 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)

    def __repr__(self) -> str:
        return f"NoiseSchedule(num_timesteps={self.num_timesteps}, kind={self.kind!r})"

    def _check_t(self, t: torch.Tensor | int, batch: int) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"timesteps must be integers, got {t.dtype}")
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(
                f"timesteps must be a scalar or of shape ({batch},), got "
                f"{tuple(t.shape)}"
            )
        if len(t) and (t.min() < 0 or t.max() >= self.num_timesteps):
            raise ValueError(
                f"timesteps must be in [0, {self.num_timesteps - 1}], got "
                f"[{int(t.min())}, {int(t.max())}]"
            )
        return t

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``abar_t`` for each row, shaped to broadcast against ``like``."""
        a = self.alphas_cumprod[t.cpu()].to(like.device, like.dtype)
        return a.view(-1, *([1] * (like.dim() - 1)))

    def add_noise(
        self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int
    ) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``: ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

        Args:
            x0: clean data ``(B, ...)``.
            noise: standard normal noise, the same shape as ``x0``.
            t: timesteps ``(B,)`` (or one int for all) in ``[0, T - 1]``.

        Raises:
            ValueError: shapes that differ or timesteps out of range.
        """
        if noise.shape != x0.shape:
            raise ValueError(
                f"noise {tuple(noise.shape)} must match x0 {tuple(x0.shape)}"
            )
        a = self._abar(self._check_t(t, len(x0)), x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    q_sample = add_noise  # the name in Ho et al.'s code

    def predict_x0(
        self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int
    ) -> torch.Tensor:
        """Invert :meth:`add_noise` given the noise: ``(x_t - sqrt(1-abar) eps) /
        sqrt(abar)``. Exact with the true noise; an estimate with a network's."""
        a = self._abar(self._check_t(t, len(x_t)), x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def timesteps(self, num_steps: int | None = None) -> list[int]:
        """The decreasing timesteps a sampler visits: all ``T`` of them, or
        ``num_steps`` evenly spaced ones ending at 0 (DDIM's sub-sequence)."""
        n = self.num_timesteps if num_steps is None else num_steps
        if not 1 <= n <= self.num_timesteps:
            raise ValueError(f"num_steps must be in [1, {self.num_timesteps}], got {n}")
        ts = torch.linspace(0, self.num_timesteps - 1, n).round().long()
        return ts.flip(0).tolist()

    def step(
        self,
        eps: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        *,
        prev_t: int | None = None,
        eta: float = 1.0,
        clip: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One reverse step from ``x_t`` to ``x_prev`` given predicted noise ``eps``.

        The generalised step of Song et al. (2021), eq. 12:
        ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps
        + sigma z`` with ``sigma = eta sqrt((1 - abar_prev) / (1 - abar_t))
        sqrt(1 - abar_t / abar_prev)``. ``eta = 0`` is deterministic DDIM;
        ``eta = 1`` with ``prev_t = t - 1`` is DDPM's ancestral step with the
        posterior variance ``beta_tilde_t`` (Ho et al. 2020).

        Args:
            eps: predicted noise, shape of ``x_t``.
            t: the current timestep; ``prev_t`` the next one visited (default
                ``t - 1``; ``-1`` means "return the clean estimate").
            clip: clamp the estimate ``x0_hat`` to ``[-clip, clip]`` (images).
            generator: for the fresh noise ``z`` (CPU generator).
        """
        prev_t = t - 1 if prev_t is None else prev_t
        if not -1 <= prev_t < t < self.num_timesteps:
            raise ValueError(f"need -1 <= prev_t < t < T, got t={t}, prev_t={prev_t}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        a_t = self.alphas_cumprod[t].item()
        a_prev = self.alphas_cumprod[prev_t].item() if prev_t >= 0 else 1.0
        x0 = (x_t - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        var = eta**2 * (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        out = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - var, 0.0)) * eps
        if var > 0:
            z = torch.randn(x_t.shape, generator=generator).to(x_t)
            out = out + math.sqrt(var) * z
        return out


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer timesteps ``(B,)`` (Vaswani
    et al. 2017, as used by Ho et al. 2020)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], 1)


@dataclass(frozen=True)
class MLPDenoiserConfig:
    """A noise-prediction MLP for points ``(B, dim)``."""

    dim: int = 2
    hidden: int = 128
    layers: int = 3
    time_dim: int = 32


class MLPDenoiser(nn.Module):
    """``eps_theta(x_t, t)`` for low-dimensional points: the timestep's
    sinusoidal embedding is concatenated to ``x_t`` and fed to an MLP."""

    def __init__(self, config: MLPDenoiserConfig = MLPDenoiserConfig()) -> None:
        super().__init__()
        self.config = c = config
        blocks: list[nn.Module] = []
        width = c.dim + c.time_dim
        for _ in range(c.layers):
            blocks += [nn.Linear(width, c.hidden), nn.SiLU()]
            width = c.hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, c.dim))

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x: (B, dim)``, ``t: (B,)`` integers; ``y`` is ignored (unconditional)."""
        return self.net(torch.cat([x, timestep_embedding(t, self.config.time_dim)], 1))


class Diffusion(nn.Module):
    """A noise-prediction network with its schedule: ``loss`` and ``sample``.

    Args:
        net: ``net(x_t, t, y) -> eps`` with ``x_t: (B, ...)``, ``t: (B,)`` and
            ``y: (B,)`` labels in ``0..num_classes`` (``num_classes`` is the
            null label of classifier-free guidance) or ``None``.
        schedule: the forward process.
        num_classes: number of real labels; 0 for an unconditional model.
        label_dropout: share of training labels replaced by the null label, so
            that one network learns both ``eps(x, y)`` and ``eps(x)``.
        min_snr_gamma: if set, weight each example's loss by
            ``min(SNR_t, gamma) / SNR_t`` with ``SNR_t = abar_t / (1 - abar_t)``
            (Hang et al. 2023), so that the many nearly noise-free timesteps,
            whose noise is hard to see and matters little for samples, stop
            dominating the gradient; ``None`` is the plain objective.
    """

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        *,
        num_classes: int = 0,
        label_dropout: float = 0.1,
        min_snr_gamma: float | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= label_dropout < 1:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
        if min_snr_gamma is not None and not min_snr_gamma > 0:
            raise ValueError(
                f"min_snr_gamma must be positive or None, got {min_snr_gamma}"
            )
        self.net, self.schedule = net, schedule
        self.num_classes, self.label_dropout = num_classes, label_dropout
        self.min_snr_gamma = min_snr_gamma

    def _labels(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.num_classes == 0:
            if y is not None:
                raise ValueError("this model is unconditional: pass no labels")
            return None
        if y is None:
            raise ValueError(f"this model needs {n} labels in 0..{self.num_classes}")
        if y.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {tuple(y.shape)}")
        if len(y) and (y.min() < 0 or y.max() > self.num_classes):
            raise ValueError(f"labels must be in 0..{self.num_classes} (null)")
        return y

    def loss(
        self, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """The simplified objective of Ho et al. (2020): ``E ||eps - eps_theta(
        sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)||^2``, ``t`` uniform.

        Args:
            batch: ``x0`` or ``(x0, y)``, data already scaled (e.g. to [-1, 1]).
        """
        x0, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        y = self._labels(y, len(x0))
        t = torch.randint(0, self.schedule.num_timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        if y is not None and self.label_dropout > 0:
            drop = torch.rand(len(y), device=y.device) < self.label_dropout
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        per_example = (self.net(x_t, t, y) - noise).pow(2).flatten(1).mean(1)
        if self.min_snr_gamma is None:
            return per_example.mean()
        abar = self.schedule.alphas_cumprod[t.cpu()].to(x0.device, x0.dtype)
        snr = abar / (1 - abar)
        return (per_example * snr.clamp(max=self.min_snr_gamma) / snr).mean()

    def predict_eps(
        self, x: torch.Tensor, t: int, y: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        """``eps`` at timestep ``t``; with labels and ``guidance = w > 0``, the
        classifier-free combination ``(1 + w) eps(x, y) - w eps(x)``, the
        conditional and unconditional passes run as one batch."""
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        if y is None or guidance == 0:
            return self.net(x, tt, y)
        null = torch.full_like(y, self.num_classes)
        both = self.net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return cond + guidance * (cond - uncond)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, ...],
        *,
        labels: torch.Tensor | None = None,
        guidance: float = 0.0,
        steps: int | None = None,
        eta: float = 0.0,
        clip: float | None = None,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        resample: int = 1,
        generator: torch.Generator | None = None,
        batch_size: int = 50,
        progress: bool = False,
        callback: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Generate ``n`` samples of ``shape`` by running the reverse process.

        Args:
            labels: ``(n,)`` for a conditional model; the null label
                ``num_classes`` samples the unconditional model.
            guidance: classifier-free guidance weight ``w`` (0: plain conditional).
            steps: timesteps visited (default all ``T``); ``eta = 1`` with all
                steps is DDPM, ``eta = 0`` is DDIM.
            clip: clamp each clean estimate to ``[-clip, clip]`` (1 for images);
                the output is then in ``[-clip, clip]`` too.
            known, mask: inpainting: ``known`` ``(n, *shape)`` with ``mask`` 1
                where pixels are given; after every step the known region is
                replaced by a fresh draw from ``q(x_prev | known)`` and the step
                is repeated ``resample`` times, re-noising in between (RePaint).
            generator: a CPU generator, for samples that repeat.
            batch_size: samples denoised together (twice as many network
                inputs with guidance); small batches stay in a CPU's cache and
                run faster there (measured: 50 beat 500 by about 2x).
            callback: ``callback(t, x)`` after each step with the batch reached
                (``t = -1`` for the final samples), e.g. to keep snapshots.

        Returns:
            ``(n, *shape)`` on the model's device.
        """
        if n < 1 or resample < 1 or batch_size < 1:
            raise ValueError("n, resample and batch_size must be >= 1")
        if (known is None) != (mask is None):
            raise ValueError("inpainting needs both known and mask")
        if known is not None and known.shape != (n, *shape):
            raise ValueError(f"known must have shape {(n, *shape)}")
        labels = self._labels(labels, n)
        if guidance != 0 and labels is None:
            raise ValueError("guidance needs labels: it contrasts them with the null label")
        device = next(self.net.parameters()).device
        ts = self.schedule.timesteps(steps)
        outs = []
        bar = tqdm(total=n * len(ts), disable=not progress, unit="img-step", ncols=100)
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            y = labels[lo:hi].to(device) if labels is not None else None
            kn = known[lo:hi].to(device) if known is not None else None
            mk = mask[lo:hi].to(device) if mask is not None else None
            x = torch.randn((hi - lo, *shape), generator=generator).to(device)
            for i, t in enumerate(ts):
                prev = ts[i + 1] if i + 1 < len(ts) else -1
                for r in range(resample):
                    eps = self.predict_eps(x, t, y, guidance)
                    x_prev = self.schedule.step(
                        eps, t, x, prev_t=prev, eta=eta, clip=clip, generator=generator
                    )
                    if kn is not None:
                        x_prev = self._paste(x_prev, kn, mk, prev, generator)
                    if r + 1 < resample and prev >= 0:
                        x = self._renoise(x_prev, prev, t, generator)
                    else:
                        x = x_prev
                if callback is not None:
                    callback(prev, x)
                bar.update(hi - lo)
            outs.append(x)
        bar.close()
        return torch.cat(outs)

    def _paste(self, x, known, mask, t, generator):  # noqa: ANN001, ANN202
        """Replace the known region by ``q(x_t | known)`` (the clean image at -1)."""
        if t >= 0:
            z = torch.randn(known.shape, generator=generator).to(known)
            known = self.schedule.add_noise(known, z, t)
        return mask * known + (1 - mask) * x

    def _renoise(self, x, t_from, t_to, generator):  # noqa: ANN001, ANN202
        """Draw ``q(x_{t_to} | x_{t_from})``: re-noise to a later level."""
        a = self.schedule.alphas_cumprod[t_to] / self.schedule.alphas_cumprod[t_from]
        z = torch.randn(x.shape, generator=generator).to(x)
        return a.sqrt().item() * x + (1 - a).sqrt().item() * z


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging).

    ``ema.step()`` after each optimiser step updates ``ema.model``, a frozen
    copy; pass it as ``fit(..., scheduler=ema)`` since ``fit`` steps its
    scheduler once per optimiser step.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.source = model
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def step(self) -> None:
        src = list(self.source.parameters()) + list(self.source.buffers())
        dst = list(self.model.parameters()) + list(self.model.buffers())
        floats = [(d, s) for d, s in zip(dst, src) if d.is_floating_point()]
        torch._foreach_lerp_(
            [d for d, _ in floats], [s for _, s in floats], 1 - self.decay
        )
