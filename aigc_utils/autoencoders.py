"""Autoencoders and variational autoencoders for 28x28 images such as MNIST.

- :class:`MLPAutoencoder`: a deterministic encoder and decoder trained to
  reconstruct their input (Hinton & Salakhutdinov 2006); with corrupted inputs
  (:func:`corrupt`) it is a denoising autoencoder (Vincent et al. 2008).
- :class:`VAE`: the variational autoencoder of Kingma & Welling (2014) with a
  Bernoulli decoder, optionally conditioned on a class label (a conditional
  VAE), with the importance-weighted bound of Burda et al. (2016).
- :class:`ConvVAE`: the same model with a convolutional encoder and a
  transposed-convolutional decoder.

Images enter as ``(B, 1, 28, 28)`` or ``(B, 784)`` floats in [0, 1] and come back
in the shape they came in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AEConfig",
    "AELoss",
    "ConvVAE",
    "ConvVAEConfig",
    "MLPAutoencoder",
    "VAE",
    "VAEConfig",
    "VAELoss",
    "corrupt",
]

PIXELS = 784


def _flatten(x: Any) -> torch.Tensor:
    """``(B, 1, 28, 28)`` or ``(B, 784)`` floats in [0, 1] -> ``(B, 784)``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("images must be a floating-point torch.Tensor")
    if not (x.dim() == 2 and x.shape[1] == PIXELS) and x.shape[1:] != (1, 28, 28):
        raise ValueError(
            f"images must have shape (B, 1, 28, 28) or (B, 784), got "
            f"{tuple(x.shape)}; flatten or reshape them first"
        )
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"pixel values must lie in [0, 1] for a Bernoulli/sigmoid decoder, got "
            f"[{x.min().item():.3g}, {x.max().item():.3g}]; rescale (x + 1) / 2?"
        )
    return x.reshape(len(x), PIXELS)


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch ``x`` or ``(x, y, ...)`` -> ``(x, y or None)``."""
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1] if len(batch) > 1 else None
    return batch, None


def corrupt(
    x: torch.Tensor,
    noise_std: float = 0.0,
    mask_size: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Corrupt images for a denoising autoencoder.

    Adds Gaussian noise of standard deviation ``noise_std`` (then clamps to
    [0, 1]) and sets one random ``mask_size`` x ``mask_size`` square per image
    to 0.

    Args:
        x: ``(B, 1, 28, 28)`` or ``(B, 784)`` in [0, 1].

    Returns:
        a new tensor of the same shape, in [0, 1].

    Raises:
        ValueError: bad images, a negative ``noise_std`` or a ``mask_size``
            outside 0..28.
    """
    flat = _flatten(x)
    if noise_std < 0 or not 0 <= mask_size <= 28:
        raise ValueError("noise_std must be >= 0 and mask_size in 0..28")
    out = flat.reshape(-1, 28, 28).clone()
    if noise_std > 0:
        noise = torch.randn(out.shape, generator=generator).to(out.device)
        out = (out + noise_std * noise).clamp_(0, 1)
    if mask_size > 0:
        top, left = torch.randint(0, 29 - mask_size, (2, len(out)), generator=generator)
        rows = torch.arange(28)
        r = (rows >= top[:, None]) & (rows < top[:, None] + mask_size)
        c = (rows >= left[:, None]) & (rows < left[:, None] + mask_size)
        out[(r[:, :, None] & c[:, None, :]).to(out.device)] = 0.0
    return out.reshape(x.shape)


# ---------------------------------------------------------------------------
# Autoencoder


@dataclass(frozen=True)
class AEConfig:
    """Sizes of :class:`MLPAutoencoder`: 784 -> hidden... -> latent -> ... -> 784."""

    hidden: tuple[int, ...] = (512, 256)
    latent_dim: int = 32


class AELoss(NamedTuple):
    """``total`` (what is minimised) and ``recon``: binary cross-entropy per pixel."""

    total: torch.Tensor
    recon: torch.Tensor


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder with ReLU hidden layers and sigmoid output."""

    def __init__(self, config: AEConfig = AEConfig()) -> None:
        super().__init__()
        if config.latent_dim < 1 or any(h < 1 for h in config.hidden):
            raise ValueError("layer sizes must be positive")
        self.config = config
        sizes = [PIXELS, *config.hidden, config.latent_dim]
        self.encoder = _mlp(sizes)
        self.decoder = _mlp(sizes[::-1])  # outputs logits

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 1, 28, 28) or (B, 784)`` in [0, 1] -> code ``(B, latent_dim)``.

        Raises:
            ValueError: wrong shape or values outside [0, 1].
        """
        return self.encoder(_flatten(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Code ``(B, latent_dim)`` -> pixel means ``(B, 784)`` in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` in its shape, in [0, 1]."""
        return self.decode(self.encode(x)).reshape(x.shape)

    reconstruct = forward

    def loss(self, batch: Any, *, inputs: torch.Tensor | None = None) -> AELoss:
        """Mean binary cross-entropy between the clean images and their reconstruction.

        Args:
            batch: images ``x`` or ``(x, labels)``; labels are ignored.
            inputs: what the encoder sees instead of ``x`` (a corrupted copy for
                a denoising autoencoder, same shape as ``x``); default ``x``.

        Raises:
            ValueError: bad shapes or values outside [0, 1].
        """
        x = _flatten(_split(batch)[0])
        source = x if inputs is None else _flatten(inputs)
        if source.shape != x.shape:
            raise ValueError(f"inputs {tuple(source.shape)} do not match {x.shape}")
        recon = F.binary_cross_entropy_with_logits(
            self.decoder(self.encoder(source)), x
        )
        return AELoss(recon, recon)


# ---------------------------------------------------------------------------
# VAE


@dataclass(frozen=True)
class VAEConfig:
    """Sizes of :class:`VAE` (784 -> hidden -> 2 x latent; latent -> hidden -> 784).

    ``num_classes > 0`` makes it conditional: a one-hot label is concatenated
    to the encoder's and the decoder's input. ``beta`` weights the KL term
    (``beta = 1`` is the ELBO).
    """

    hidden_dim: int = 400
    latent_dim: int = 20
    num_classes: int = 0
    beta: float = 1.0


class VAELoss(NamedTuple):
    """Per-image means over the batch, in nats: ``total = recon + beta * kl``."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


class VAE(nn.Module):
    """An MLP VAE with a Gaussian encoder and a Bernoulli decoder (logits)."""

    def __init__(self, config: VAEConfig = VAEConfig()) -> None:
        super().__init__()
        if min(config.hidden_dim, config.latent_dim) < 1 or config.num_classes < 0:
            raise ValueError("hidden_dim, latent_dim must be >= 1, num_classes >= 0")
        self.config = config
        h, d, c = config.hidden_dim, config.latent_dim, config.num_classes
        self.fc1 = nn.Linear(PIXELS + c, h)
        self.fc_mu = nn.Linear(h, d)
        self.fc_logvar = nn.Linear(h, d)
        self.fc3 = nn.Linear(d + c, h)
        self.fc4 = nn.Linear(h, PIXELS)

    def _with_label(self, v: torch.Tensor, labels: Any) -> torch.Tensor:
        """Concatenate one-hot ``labels`` to ``v: (B, F)`` when conditional."""
        c = self.config.num_classes
        if c == 0:
            return v
        if labels is None:
            raise ValueError(f"this conditional VAE needs labels in 0..{c - 1}")
        labels = torch.as_tensor(labels, device=v.device)
        if labels.shape != (len(v),) or labels.is_floating_point():
            raise ValueError(f"labels must be ({len(v)},) integers, got {labels}")
        if len(labels) and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f"labels must lie in 0..{c - 1}")
        return torch.cat([v, F.one_hot(labels.long(), c).to(v.dtype)], 1)

    def encode(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: (B, 1, 28, 28) or (B, 784)`` in [0, 1] -> ``(mu, logvar)``, each
        ``(B, latent_dim)``: the Gaussian ``q(z | x)``.

        Raises:
            ValueError: wrong shape, values outside [0, 1], labels missing or
                out of range for a conditional model.
        """
        x = _flatten(x)
        hidden = F.relu(self.fc1(self._with_label(x, labels)))
        return self.fc_mu(hidden), self.fc_logvar(hidden)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, temperature: float = 1.0
    ) -> torch.Tensor:
        """``z = mu + temperature * exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        return mu + temperature * (0.5 * logvar).exp() * torch.randn_like(mu)

    def decode(
        self, z: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``z: (B, latent_dim)`` -> Bernoulli logits ``(B, 784)``."""
        return self.fc4(F.relu(self.fc3(self._with_label(z, labels))))

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits (B, 784), mu, logvar)`` with one reparameterised ``z``."""
        mu, logvar = self.encode(x, labels)
        return self.decode(self.reparameterize(mu, logvar), labels), mu, logvar

    def _terms(
        self, x: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction ``-log p(x | z)`` and KL, each ``(B,)``."""
        logits, mu, logvar = self(x, labels)
        target = x.reshape(len(x), PIXELS)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return bce.sum(1), kl

    def elbo(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Single-sample ELBO ``E_q[log p(x | z)] - KL(q(z | x) || p(z))``, ``(B,)``
        in nats (a lower bound on ``log p(x)`` when ``x`` is binary).

        Raises:
            ValueError: as for :meth:`encode`.
        """
        recon, kl = self._terms(x, labels)
        return -(recon + kl)

    def loss(self, batch: Any) -> VAELoss:
        """``-ELBO`` (with ``beta``) per image, averaged over the batch.

        Args:
            batch: ``x`` or ``(x, labels)``; labels are needed when conditional.

        Raises:
            ValueError: as for :meth:`encode`.
        """
        x, labels = _split(batch)
        recon, kl = self._terms(x, labels)
        recon, kl = recon.mean(), kl.mean()
        return VAELoss(recon + self.config.beta * kl, recon, kl)

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoder means at ``z = mu(x)``, in the shape of ``x``, in [0, 1]."""
        mu, _ = self.encode(x, labels)
        return torch.sigmoid(self.decode(mu, labels)).reshape(x.shape)

    @torch.no_grad()
    def sample(
        self, n: int, labels: torch.Tensor | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """``n`` images ``(n, 1, 28, 28)``: decoder means in [0, 1] at ``z = tau eps``.

        Raises:
            ValueError: ``n < 1``, ``temperature < 0``, bad ``labels``.
        """
        if n < 1 or temperature < 0:
            raise ValueError("n must be >= 1 and temperature >= 0")
        device = self.fc_mu.weight.device
        z = temperature * torch.randn(n, self.config.latent_dim, device=device)
        return torch.sigmoid(self.decode(z, labels)).reshape(n, 1, 28, 28)

    @torch.no_grad()
    def iwae_bound(
        self, x: torch.Tensor, k: int, labels: Any = None, chunk: int = 100
    ) -> torch.Tensor:
        """Importance-weighted bound ``log (1/k) sum_i p(x, z_i) / q(z_i | x)``.

        With ``z_i ~ q(z | x)``; ``k = 1`` is the ELBO and the bound rises
        towards ``log p(x)`` as ``k`` grows (Burda et al. 2016). The ``k``
        samples are drawn ``chunk`` at a time to bound memory.

        Args:
            x: ``(B, 1, 28, 28)`` or ``(B, 784)`` in [0, 1] (binary for a
                likelihood); ``labels``: ``(B,)`` for a conditional model.

        Returns:
            ``(B,)`` in nats.

        Raises:
            ValueError: ``k < 1`` or ``chunk < 1``; as for :meth:`encode`.
        """
        if k < 1 or chunk < 1:
            raise ValueError("k and chunk must be >= 1")
        mu, logvar = self.encode(x, labels)
        target = x.reshape(len(x), 1, PIXELS)
        rep = None if labels is None else torch.as_tensor(labels, device=mu.device)
        std, total = (0.5 * logvar).exp(), None
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = torch.randn(len(x), m, mu.shape[1], device=mu.device)
            z = mu[:, None] + std[:, None] * eps  # (B, m, D)
            lab = None if rep is None else rep.repeat_interleave(m)
            logits = self.decode(z.reshape(-1, mu.shape[1]), lab).view(len(x), m, -1)
            log_px_z = -F.binary_cross_entropy_with_logits(
                logits, target.expand_as(logits), reduction="none"
            ).sum(2)
            # log p(z) - log q(z | x): the log(2 pi) terms cancel
            log_ratio = -0.5 * (z.pow(2) - eps.pow(2) - logvar[:, None]).sum(2)
            part = (log_px_z + log_ratio).logsumexp(1)
            total = part if total is None else torch.logaddexp(total, part)
        return total - math.log(k)  # type: ignore[operator]


# ---------------------------------------------------------------------------
# Convolutional VAE


@dataclass(frozen=True)
class ConvVAEConfig:
    """Sizes of :class:`ConvVAE`: two 4x4 stride-2 convolutions
    (1 -> channels[0] -> channels[1], 28 -> 14 -> 7 pixels), then linear maps to the
    latent Gaussian; the decoder mirrors it with transposed convolutions.
    ``num_classes`` and ``beta`` mean what they mean in :class:`VAEConfig`.
    """

    channels: tuple[int, int] = (32, 64)
    latent_dim: int = 20
    num_classes: int = 0
    beta: float = 1.0


class ConvVAE(VAE):
    """A VAE whose encoder and decoder are convolutional; everything else (the
    loss, ELBO, IWAE bound, sampling) is :class:`VAE`'s."""

    def __init__(self, config: ConvVAEConfig = ConvVAEConfig()) -> None:
        nn.Module.__init__(self)
        c1, c2 = config.channels
        if min(c1, c2, config.latent_dim) < 1 or config.num_classes < 0:
            raise ValueError("channels, latent_dim must be >= 1, num_classes >= 0")
        self.config = config  # type: ignore[assignment]
        d, c, flat = config.latent_dim, config.num_classes, c2 * 7 * 7
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU()
        )
        self.fc_mu = nn.Linear(flat + c, d)
        self.fc_logvar = nn.Linear(flat + c, d)
        self.fc_dec = nn.Linear(d + c, flat)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, 4, 2, 1),
        )

    def encode(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`VAE.encode`: ``x`` in [0, 1] -> ``(mu, logvar)``."""
        x = _flatten(x).view(-1, 1, 28, 28)
        hidden = self._with_label(self.encoder(x).flatten(1), labels)
        return self.fc_mu(hidden), self.fc_logvar(hidden)

    def decode(
        self, z: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``z: (B, latent_dim)`` -> Bernoulli logits ``(B, 784)``."""
        hidden = self.fc_dec(self._with_label(z.reshape(-1, z.shape[-1]), labels))
        return self.decoder(hidden).flatten(1)
