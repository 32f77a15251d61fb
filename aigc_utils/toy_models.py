"""One tiny generative model per family, for two-dimensional data.

Each model learns a distribution over points ``x: (N, 2)`` and offers the
course's two verbs, ``loss(x) -> scalar`` and ``sample(n) -> (n, 2)``; the
families with a tractable density also offer ``log_prob(x) -> (N,)`` in nats.

- :class:`GaussianMixture`: a mixture of full-covariance Gaussians fitted by
  expectation-maximisation (Dempster, Laird & Rubin 1977), the classic maximum
  likelihood model with a latent variable (which component drew the point).
- :class:`GridAR`: an autoregressive model over discretised coordinates,
  ``p(x1) p(x2 | x1)``, each factor a softmax over bins, made a density on the
  plane by spreading each bin's probability uniformly over the bin.
- :class:`ToyVAE`: a variational autoencoder with a Gaussian decoder (Kingma &
  Welling 2014); its ``log_prob`` is an importance-weighted lower bound.
- :class:`ToyGAN`: a generator and a discriminator trained with the losses of
  :mod:`aigc_utils.gans` (Goodfellow et al. 2014); it has no density.
- :class:`ToyDiffusion`: a denoising diffusion model with an MLP noise
  predictor (Ho et al. 2020).
- :class:`ToyFlow`: affine coupling layers (RealNVP, Dinh et al. 2017), which
  give an exact density by the change of variables.

These are previews for the core-concepts chapter; the model chapters build the
real ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .divergences import gaussian_kl
from .gans import gan_train_step
from .training import History, fit

__all__ = [
    "GaussianMixture",
    "GridAR",
    "ToyConfig",
    "ToyDiffusion",
    "ToyFlow",
    "ToyGAN",
    "ToyVAE",
    "mlp",
    "train_toy",
]

LOG_2PI = math.log(2 * math.pi)


def _check_points(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point torch.Tensor of points")
    if x.dim() != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(
            f"{name} must have shape (N, 2) with N > 0, got {tuple(x.shape)}"
        )
    return x


def mlp(sizes: list[int], act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``, linear output."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])


@dataclass(frozen=True)
class ToyConfig:
    """Sizes shared by the neural toy models: hidden width and depth, latent size."""

    hidden: int = 128
    layers: int = 3
    latent_dim: int = 2


def _net(cfg: ToyConfig, d_in: int, d_out: int) -> nn.Sequential:
    return mlp([d_in] + [cfg.hidden] * cfg.layers + [d_out])


# ---------------------------------------------------------------------------
# Gaussian mixture by EM


class GaussianMixture:
    """``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` with full 2x2 covariances.

    Args:
        k: number of components (>= 1).
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.weights = torch.full((k,), 1.0 / k)
        self.means = torch.zeros(k, 2)
        self.covs = torch.eye(2).repeat(k, 1, 1)

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, k)``: ``log w_k + log N(x_n; mu_k, Sigma_k)``."""
        chol = torch.linalg.cholesky(self.covs)  # (k, 2, 2)
        diff = (x[:, None, :] - self.means[None]).unsqueeze(-1)  # (N, k, 2, 1)
        sol = torch.linalg.solve_triangular(chol[None], diff, upper=False)
        maha = sol.squeeze(-1).pow(2).sum(-1)  # (N, k)
        log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return self.weights.log() - 0.5 * (maha + log_det + 2 * LOG_2PI)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (N, 2)`` -> ``(N,)`` log densities in nats."""
        return torch.logsumexp(self._component_log_probs(_check_points(x)), dim=1)

    def fit(
        self,
        x: torch.Tensor,
        iters: int = 100,
        generator: torch.Generator | None = None,
        reg: float = 1e-4,
    ) -> list[float]:
        """Run EM from ``k`` random data points as means; return the mean
        log-likelihood (nats per point) before each iteration and after the last.

        EM never decreases the likelihood; ``reg`` is added to each covariance's
        diagonal so that a component cannot collapse onto one point.

        Raises:
            ValueError: bad points, fewer points than components, ``iters < 1``.
        """
        x = _check_points(x)
        if len(x) < self.k or iters < 1:
            raise ValueError("fit needs at least k points and iters >= 1")
        self.means = _farthest_first(x, self.k, generator)
        self.covs = torch.cov(x.T).expand(self.k, 2, 2).clone()
        self.weights = torch.full((self.k,), 1.0 / self.k)
        trace = []
        for _ in range(iters):
            log_joint = self._component_log_probs(x)  # E step
            log_px = torch.logsumexp(log_joint, dim=1, keepdim=True)
            trace.append(log_px.mean().item())
            resp = (log_joint - log_px).exp()  # (N, k) responsibilities
            nk = resp.sum(0) + 1e-10  # M step
            self.weights = nk / len(x)
            self.means = resp.T @ x / nk[:, None]
            diff = x[:, None, :] - self.means[None]
            self.covs = (
                torch.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None]
            )
            self.covs = self.covs + reg * torch.eye(2)
        trace.append(self.log_prob(x).mean().item())
        return trace

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: pick a component by its weight, then draw from its Gaussian."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, 2, 1, generator=generator)
        return self.means[comp] + (
            torch.linalg.cholesky(self.covs)[comp] @ eps
        ).squeeze(-1)


def _farthest_first(
    x: torch.Tensor, k: int, gen: torch.Generator | None
) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new mean is a data
    point drawn with probability proportional to its squared distance to the
    nearest mean so far, which rarely puts two means in one cluster."""
    means = x[torch.randint(len(x), (1,), generator=gen)]
    for _ in range(k - 1):
        d2 = torch.cdist(x, means).min(1).values.pow(2)
        means = torch.cat([means, x[torch.multinomial(d2 + 1e-12, 1, generator=gen)]])
    return means.clone()


# ---------------------------------------------------------------------------
# Autoregressive model over discretised coordinates


class GridAR(nn.Module):
    """``p(x1, x2) = p(x1) p(x2 | x1)`` over ``bins`` bins per coordinate.

    Each coordinate of ``[-extent, extent]`` is cut into ``bins`` equal bins.
    ``p(x1)`` is a learned softmax over bins; ``p(x2 | x1)`` is a softmax whose
    logits an MLP computes from the embedding of ``x1``'s bin. The density at a
    point is the probability of its cell divided by the cell's area.
    """

    def __init__(self, bins: int = 64, extent: float = 3.0, hidden: int = 128) -> None:
        super().__init__()
        if bins < 2 or extent <= 0:
            raise ValueError("bins must be >= 2 and extent > 0")
        self.bins, self.extent = bins, extent
        self.width = 2 * extent / bins
        self.first = nn.Parameter(torch.zeros(bins))
        self.embed = nn.Embedding(bins, hidden)
        self.second = mlp([hidden, hidden, bins])

    def to_bins(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 2)`` points -> ``(N, 2)`` bin indices (points outside are clamped)."""
        idx = ((_check_points(x) + self.extent) / self.width).floor().long()
        return idx.clamp(0, self.bins - 1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` log densities in nats: ``log P(cell) - log(cell area)``."""
        b = self.to_bins(x)
        lp1 = F.log_softmax(self.first, 0)[b[:, 0]]
        lp2 = F.log_softmax(self.second(self.embed(b[:, 0])), -1)
        lp2 = lp2.gather(1, b[:, 1:]).squeeze(1)
        return lp1 + lp2 - 2 * math.log(self.width)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats per point."""
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: draw ``x1``'s bin, then ``x2``'s bin given it, then a
        uniform position inside the cell."""
        dev = self.first.device
        b1 = torch.multinomial(
            F.softmax(self.first, 0).cpu(), n, True, generator=generator
        )
        p2 = F.softmax(self.second(self.embed(b1.to(dev))), -1).cpu()
        b2 = torch.multinomial(p2, 1, generator=generator).squeeze(1)
        u = torch.rand(n, 2, generator=generator)
        cells = torch.stack([b1, b2], 1).float()
        return ((cells + u) * self.width - self.extent).to(dev)


# ---------------------------------------------------------------------------
# Variational autoencoder


class ToyVAE(nn.Module):
    """A VAE with ``q(z|x) = N(mu(x), diag s(x)^2)``, ``p(z) = N(0, I)`` and a
    Gaussian decoder ``p(x|z) = N(m(z), diag sigma^2)`` with a learned ``sigma``."""

    def __init__(self, config: ToyConfig = ToyConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = _net(config, 2, 2 * config.latent_dim)
        self.decoder = _net(config, config.latent_dim, 2)
        self.log_sigma = nn.Parameter(torch.full((2,), -1.0))

    def _log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        m, ls = self.decoder(z), self.log_sigma
        return (-0.5 * ((x - m) / ls.exp()).pow(2) - ls - 0.5 * LOG_2PI).sum(-1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The negative ELBO in nats per point: ``-E_q[log p(x|z)] + KL(q || p)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        return (gaussian_kl(mu, logvar) - self._log_px_given_z(x, z)).mean()

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, k: int = 64) -> torch.Tensor:
        """``(N,)``: the importance-weighted bound
        ``log (1/k) sum_i p(x, z_i) / q(z_i|x)``, a lower bound on ``log p(x)``
        that tightens as ``k`` grows (Burda et al. 2016)."""
        x = _check_points(x)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        std = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, device=x.device)
        z = mu + std * eps  # (k, N, d)
        log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)
        log_pz = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
        log_w = self._log_px_given_z(x, z) + log_pz - log_q
        return torch.logsumexp(log_w, 0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: ``z ~ N(0, I)``, then ``x ~ p(x|z)`` (decoder noise included)."""
        dev = self.log_sigma.device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(dev)
        eps = torch.randn(n, 2, generator=generator).to(dev)
        return self.decoder(z) + self.log_sigma.exp() * eps


# ---------------------------------------------------------------------------
# GAN


class ToyGAN(nn.Module):
    """A generator ``G: z (latent_dim) -> x (2)``, a discriminator ``D: x -> logit``."""

    def __init__(self, config: ToyConfig = ToyConfig(latent_dim=8)) -> None:
        super().__init__()
        self.config = config
        self.generator = _net(config, config.latent_dim, 2)
        self.discriminator = _net(config, 2, 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: ``G(z)`` with ``z ~ N(0, I)``."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.generator(z.to(next(self.parameters()).device))


# ---------------------------------------------------------------------------
# Diffusion


class ToyDiffusion(nn.Module):
    """DDPM: ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with a linear
    beta schedule, and a network ``eps(x_t, t)`` that predicts the added noise."""

    def __init__(self, config: ToyConfig = ToyConfig(), steps: int = 100) -> None:
        super().__init__()
        if steps < 2:
            raise ValueError("steps must be >= 2")
        self.config, self.steps = config, steps
        self.eps_model = _net(config, 2 + 16, 2)
        betas = torch.linspace(1e-4, 0.2 * 100 / steps, steps).clamp(max=0.999)
        self.register_buffer("betas", betas)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0))

    def _time_features(self, t: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(torch.linspace(0, math.log(100), 8, device=t.device))
        angle = t[:, None].float() / self.steps * freqs
        return torch.cat([angle.sin(), angle.cos()], -1)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t: (N, 2)``, ``t: (N,)`` ints in ``0..steps-1`` -> ``(N, 2)``."""
        return self.eps_model(torch.cat([x_t, self._time_features(t)], -1))

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``."""
        ab = self.alpha_bar[t][:, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """``E ||eps - eps(x_t, t)||^2`` with ``t`` uniform, the simple DDPM loss."""
        t = torch.randint(0, self.steps, (len(x),), device=x.device)
        noise = torch.randn_like(x)
        return F.mse_loss(self.predict_noise(self.q_sample(x, t, noise), t), noise)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: ancestral sampling from ``x_T ~ N(0, I)``, ``steps`` passes."""
        dev = self.betas.device
        x = torch.randn(n, 2, generator=generator).to(dev)
        for t in reversed(range(self.steps)):
            tt = torch.full((n,), t, device=dev, dtype=torch.long)
            beta, ab = self.betas[t], self.alpha_bar[t]
            mean = (x - beta / (1 - ab).sqrt() * self.predict_noise(x, tt)) / (
                1 - beta
            ).sqrt()
            noise = torch.randn(n, 2, generator=generator).to(dev) if t > 0 else 0.0
            x = mean + beta.sqrt() * noise
        return x


# ---------------------------------------------------------------------------
# Normalizing flow


class ToyFlow(nn.Module):
    """RealNVP: ``x = f(z)``, ``z ~ N(0, I)``, ``f`` a stack of affine couplings.

    Each coupling keeps one coordinate ``a`` and maps the other as
    ``b -> b * exp(s(a)) + t(a)``; its log-Jacobian is ``s(a)``, so
    ``log p(x) = log N(f^{-1}(x); 0, I) - sum of the s along the way``.
    """

    def __init__(self, couplings: int = 8, hidden: int = 64) -> None:
        super().__init__()
        if couplings < 1:
            raise ValueError("couplings must be >= 1")
        self.nets = nn.ModuleList(mlp([1, hidden, hidden, 2]) for _ in range(couplings))

    def _st(self, i: int, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.nets[i](a).chunk(2, dim=-1)
        return torch.tanh(s), t  # tanh keeps the scales in [e^-1, e]

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x -> (z, log|det dz/dx|)``, shapes ``(N, 2)`` and ``(N,)``."""
        z, log_det = x, torch.zeros(len(x), device=x.device)
        for i in reversed(range(len(self.nets))):
            keep, other = (0, 1) if i % 2 == 0 else (1, 0)
            a, b = z[:, keep : keep + 1], z[:, other : other + 1]
            s, t = self._st(i, a)
            b = (b - t) * torch.exp(-s)
            z = torch.cat([a, b] if keep == 0 else [b, a], 1)
            log_det = log_det - s.squeeze(1)
        return z, log_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` exact log densities in nats (change of variables)."""
        z, log_det = self.inverse(_check_points(x))
        return (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1) + log_det

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats per point."""
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 2)``: push ``z ~ N(0, I)`` forward through the couplings."""
        dev = next(self.parameters()).device
        x = torch.randn(n, 2, generator=generator).to(dev)
        for i in range(len(self.nets)):
            keep, other = (0, 1) if i % 2 == 0 else (1, 0)
            a, b = x[:, keep : keep + 1], x[:, other : other + 1]
            s, t = self._st(i, a)
            x = torch.cat(
                [a, b * s.exp() + t] if keep == 0 else [b * s.exp() + t, a], 1
            )
        return x


# ---------------------------------------------------------------------------
# Training


class _RandomBatches:
    """``steps`` mini-batches drawn with replacement from ``x``."""

    def __init__(
        self, x: torch.Tensor, batch_size: int, steps: int, gen: torch.Generator
    ):
        self.x, self.batch_size, self.steps, self.gen = x, batch_size, steps, gen

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        for _ in range(self.steps):
            yield self.x[
                torch.randint(len(self.x), (self.batch_size,), generator=self.gen)
            ]


def train_toy(
    model: nn.Module,
    x: torch.Tensor,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Train one of the neural toy models on points ``x: (N, 2)`` with Adam.

    Likelihood models, the VAE and the diffusion model minimise ``model.loss``
    through :func:`aigc_utils.training.fit` (cosine-annealed learning rate); the
    GAN alternates :func:`aigc_utils.gans.gan_train_step` updates (Adam with
    ``betas = (0.5, 0.999)``) and records the discriminator's loss.

    Returns:
        the :class:`~aigc_utils.training.History` (losses and seconds).

    Raises:
        ValueError: bad points or ``steps``/``batch_size`` below 1.
    """
    x = _check_points(x)
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    batches = _RandomBatches(x, batch_size, steps, gen)
    if isinstance(model, ToyGAN):
        return _train_gan(model, batches, lr, gen)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    return fit(model, batches, opt, scheduler=sched, log_every=100, progress=progress)


def _train_gan(
    gan: ToyGAN, batches: _RandomBatches, lr: float, gen: torch.Generator
) -> History:
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    history, start, window = History(), time.perf_counter(), []
    for step, real in enumerate(batches, 1):
        z = torch.randn(len(real), gan.config.latent_dim, generator=gen)
        window.append(
            gan_train_step(gan.generator, gan.discriminator, opt_g, opt_d, real, z)
        )
        if step % 100 == 0 or step == batches.steps:
            history.steps.append(step)
            history.losses.append(sum(w["loss_d"] for w in window) / len(window))
            window = []
    history.seconds = time.perf_counter() - start
    history.epochs = 1
    return history
