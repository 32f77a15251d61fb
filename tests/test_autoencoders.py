"""Autoencoders and VAEs: shapes, closed forms, bounds, overfitting, errors."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_utils.autoencoders import (
    VAE,
    AEConfig,
    AELoss,
    ConvVAE,
    ConvVAEConfig,
    MLPAutoencoder,
    VAEConfig,
    VAELoss,
    corrupt,
)
from aigc_utils.divergences import gaussian_kl

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int = 16, seed: int = 0, binary: bool = False) -> torch.Tensor:
    """``(n, 1, 28, 28)`` in [0, 1]: smooth random blobs (or binary ones)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, 7, 7, generator=g)
    x = torch.nn.functional.interpolate(low, size=28, mode="bilinear")
    return (x > 0.6).float() if binary else x


# ---------------------------------------------------------------------------
# autoencoder


def test_autoencoder_shapes_and_range() -> None:
    torch.manual_seed(0)
    model = MLPAutoencoder(AEConfig(hidden=(64,), latent_dim=8))
    x = images(5)
    assert model.encode(x).shape == (5, 8)
    assert model.reconstruct(x).shape == (5, 1, 28, 28)
    flat = model(x.flatten(1))
    assert flat.shape == (5, 784)
    assert 0 <= flat.min() and flat.max() <= 1
    loss = model.loss((x, torch.zeros(5, dtype=torch.long)))
    assert isinstance(loss, AELoss) and loss.total.dim() == 0
    assert torch.equal(loss.total, loss.recon)


def test_autoencoder_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = MLPAutoencoder(AEConfig(hidden=(128,), latent_dim=16))
    x = images(32)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    mse0 = (model(x) - x).pow(2).mean().item()
    for _ in range(150):
        loss = model.loss(x).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    mse = (model(x) - x).pow(2).mean().item()
    assert mse < mse0 / 20


def test_denoising_loss_uses_corrupted_inputs() -> None:
    torch.manual_seed(0)
    model = MLPAutoencoder(AEConfig(hidden=(32,), latent_dim=4))
    x = images(4)
    noisy = corrupt(x, noise_std=0.5, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(model.loss(x).total, model.loss(x, inputs=noisy).total)
    with pytest.raises(ValueError, match="do not match"):
        model.loss(x, inputs=noisy[:2])


def test_corrupt_noise_and_mask() -> None:
    x = torch.ones(3, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    masked = corrupt(x, mask_size=10, generator=g)
    assert masked.shape == x.shape
    assert (masked == 0).flatten(1).sum(1).tolist() == [100, 100, 100]
    noisy = corrupt(x.flatten(1) * 0.5, noise_std=0.3, generator=g)
    assert noisy.shape == (3, 784) and 0 <= noisy.min() and noisy.max() <= 1
    assert (noisy - 0.5).std() > 0.2
    assert torch.equal(corrupt(x), x)
    for bad in ({"noise_std": -1.0}, {"mask_size": 29}):
        with pytest.raises(ValueError, match="noise_std"):
            corrupt(x, **bad)


# ---------------------------------------------------------------------------
# VAE


def small_vae(**kw: int | float) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(hidden_dim=64, latent_dim=4, **kw))  # type: ignore[arg-type]


def test_vae_shapes() -> None:
    model = small_vae()
    x = images(6)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4)
    logits, _, _ = model(x.flatten(1))
    assert logits.shape == (6, 784)
    assert model.elbo(x).shape == (6,)
    assert model.reconstruct(x).shape == (6, 1, 28, 28)
    samples = model.sample(7, temperature=0.5)
    assert samples.shape == (7, 1, 28, 28)
    assert 0 <= samples.min() and samples.max() <= 1
    loss = model.loss(x)
    assert isinstance(loss, VAELoss)
    assert loss.total.item() == pytest.approx(-model.elbo(x).mean().item(), rel=0.2)


def test_vae_kl_term_is_the_closed_form() -> None:
    model = small_vae(beta=0.5)
    x = images(8)
    mu, logvar = model.encode(x)
    expected = gaussian_kl(mu, logvar).mean()
    torch.manual_seed(1)
    loss = model.loss(x)
    assert loss.kl.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.total.item() == pytest.approx(
        loss.recon.item() + 0.5 * loss.kl.item(), rel=1e-6
    )


def test_vae_recon_term_is_summed_bce() -> None:
    model = small_vae()
    x = images(4)
    torch.manual_seed(2)
    logits, mu, logvar = model(x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x.flatten(1), reduction="sum"
    )
    torch.manual_seed(2)
    assert model.loss(x).recon.item() == pytest.approx(bce.item() / 4, rel=1e-5)


def test_iwae_bound_above_elbo_and_increasing_in_k() -> None:
    model = small_vae()
    x = images(8, binary=True)
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo(x) for _ in range(200)]).mean(0)
    bounds = {k: model.iwae_bound(x, k, chunk=32) for k in (1, 10, 100)}
    assert (bounds[100] >= elbo).all()
    assert bounds[1].mean() == pytest.approx(elbo.mean().item(), rel=0.05)
    assert bounds[1].mean() < bounds[10].mean() < bounds[100].mean()
    # chunking does not change the estimate's distribution: compare seeded runs
    torch.manual_seed(3)
    a = model.iwae_bound(x, 7, chunk=7)
    torch.manual_seed(3)
    b = model.iwae_bound(x, 7, chunk=100)
    assert torch.allclose(a, b, atol=1e-4)


def test_vae_overfits_one_batch() -> None:
    model = small_vae()
    x = images(32, binary=True)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = model.loss(x).total.item()
    for _ in range(150):
        loss = model.loss(x).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 3


def test_conditional_vae() -> None:
    model = small_vae(num_classes=10)
    x, y = images(5), torch.tensor([0, 3, 9, 3, 1])
    assert model.loss((x, y)).total.dim() == 0
    assert model.iwae_bound(x, 3, labels=y).shape == (5,)
    assert model.reconstruct(x, y).shape == x.shape
    assert model.sample(5, labels=y).shape == (5, 1, 28, 28)
    # the label changes the decoder's output
    z = torch.zeros(2, 4)
    out = model.decode(z, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (None, "needs labels"),
        (torch.tensor([0, 10]), r"in 0\.\.9"),
        (torch.tensor([-1, 0]), r"in 0\.\.9"),
        (torch.tensor([0, 1, 2]), "must be"),
        (torch.tensor([0.0, 1.0]), "integers"),
    ],
)
def test_conditional_vae_label_errors(labels: torch.Tensor | None, match: str) -> None:
    model = small_vae(num_classes=10)
    with pytest.raises(ValueError, match=match):
        model.loss((images(2), labels))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(2, 28, 28), "shape"),
        (torch.rand(2, 3, 28, 28), "shape"),
        (torch.rand(2, 100), "shape"),
        (torch.rand(2, 784) * 2 - 1, r"\[0, 1\]"),
        (torch.ones(2, 784, dtype=torch.long), "floating-point"),
        ([[0.0] * 784], "floating-point"),
    ],
)
def test_bad_images(x: torch.Tensor, match: str) -> None:
    for model in (small_vae(), MLPAutoencoder(AEConfig(hidden=(8,), latent_dim=2))):
        with pytest.raises(ValueError, match=match):
            model.loss(x)


def test_bad_arguments() -> None:
    model = small_vae()
    x = images(2)
    for bad in ({"k": 0}, {"k": 5, "chunk": 0}):
        with pytest.raises(ValueError, match="k and chunk"):
            model.iwae_bound(x, **bad)  # type: ignore[arg-type]
    for n, t in ((0, 1.0), (3, -1.0)):
        with pytest.raises(ValueError, match="temperature"):
            model.sample(n, temperature=t)
    with pytest.raises(ValueError, match="positive"):
        MLPAutoencoder(AEConfig(latent_dim=0))
    with pytest.raises(ValueError, match="num_classes"):
        VAE(VAEConfig(num_classes=-1))


def test_reparameterize_statistics() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(9.0))
    z = VAE.reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(2.0, abs=0.1)
    assert z.std().item() == pytest.approx(3.0, rel=0.05)
    z0 = VAE.reparameterize(mu, logvar, temperature=0.0)
    assert torch.equal(z0, mu)


# ------------------------------------------------------------ convolutional VAE


def small_conv_vae(num_classes: int = 0) -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(
        ConvVAEConfig(channels=(4, 8), latent_dim=3, num_classes=num_classes)
    )


def test_conv_vae_shapes_and_shared_machinery() -> None:
    model = small_conv_vae()
    x = images(5)
    mu, logvar = model.encode(x.flatten(1))
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, 784)
    assert model.reconstruct(x).shape == (5, 1, 28, 28)
    assert model.sample(6).shape == (6, 1, 28, 28)
    loss = model.loss(x)
    torch.testing.assert_close(loss.kl, gaussian_kl(mu, logvar).mean())
    xb = images(4, binary=True)
    assert model.iwae_bound(xb, 3).shape == (4,)


def test_conv_vae_overfits_one_batch() -> None:
    model = small_conv_vae()
    x = images(8, binary=True)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = model.loss(x).total.item()
    for _ in range(200):
        loss = model.loss(x).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2


def test_conditional_conv_vae_and_errors() -> None:
    model = small_conv_vae(num_classes=10)
    labels = torch.arange(4)
    assert model.sample(4, labels=labels).shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        model.loss(images(4))
    with pytest.raises(ValueError, match="shape"):
        model.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="channels"):
        ConvVAE(ConvVAEConfig(channels=(0, 8)))
