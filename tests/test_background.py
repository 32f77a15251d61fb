"""Tests of the background chapters' code: the toy models and the timeline tables."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from aigc_utils import timeline
from aigc_utils.toy_models import (
    GaussianMixture,
    GridAR,
    ToyConfig,
    ToyDiffusion,
    ToyFlow,
    ToyGAN,
    ToyVAE,
    mlp,
    train_toy,
)

matplotlib.use("Agg")

SMALL = ToyConfig(hidden=16, layers=2)


def blobs(n: int = 512, seed: int = 0) -> torch.Tensor:
    """Two well-separated Gaussian blobs at (-2, 0) and (2, 0), std 0.1."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    return centers[torch.randint(2, (n,), generator=g)] + 0.1 * torch.randn(
        n, 2, generator=g
    )


# --- Gaussian mixture ------------------------------------------------------


def test_gmm_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    gm = GaussianMixture(3)
    gm.weights = torch.tensor([0.2, 0.3, 0.5])
    gm.means = torch.randn(3, 2)
    a = torch.randn(3, 2, 2)
    gm.covs = a @ a.transpose(1, 2) + 0.1 * torch.eye(2)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(gm.weights),
        torch.distributions.MultivariateNormal(gm.means, gm.covs),
    )
    x = torch.randn(50, 2)
    torch.testing.assert_close(gm.log_prob(x), ref.log_prob(x), atol=1e-4, rtol=1e-4)


def test_gmm_em_is_monotone_and_finds_the_blobs():
    x = blobs()
    gm = GaussianMixture(2)
    trace = gm.fit(x, iters=30, generator=torch.Generator().manual_seed(0))
    assert all(b >= a - 1e-4 for a, b in zip(trace, trace[1:]))
    means = gm.means[gm.means[:, 0].argsort()]
    torch.testing.assert_close(
        means, torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), atol=0.05, rtol=0
    )
    # the true density's mean log-likelihood: log(1/2) + log N(.; 0, 0.01 I)
    truth = math.log(0.5) - math.log(2 * math.pi * 0.01) - 1.0
    assert abs(trace[-1] - truth) < 0.1
    s = gm.sample(1000, generator=torch.Generator().manual_seed(1))
    assert s.shape == (1000, 2) and abs(s[:, 0].abs().mean() - 2.0) < 0.05


def test_gmm_errors():
    with pytest.raises(ValueError, match="k must be"):
        GaussianMixture(0)
    with pytest.raises(ValueError, match="at least k points"):
        GaussianMixture(5).fit(torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        GaussianMixture(1).log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match="floating-point"):
        GaussianMixture(1).log_prob(torch.zeros(4, 2, dtype=torch.long))


# --- neural models ----------------------------------------------------------


def test_mlp_shapes():
    net = mlp([2, 8, 8, 3])
    assert net(torch.randn(5, 2)).shape == (5, 3)
    assert isinstance(net[-1], torch.nn.Linear)


def test_grid_ar_is_a_normalised_density():
    torch.manual_seed(0)
    ar = GridAR(bins=8, extent=2.0, hidden=16)
    # integrate the density over a fine grid of cell centres: it must be 1
    ticks = (torch.arange(64) + 0.5) / 64 * 4.0 - 2.0
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    total = ar.log_prob(pts).exp().sum() * (4.0 / 64) ** 2
    assert abs(total.item() - 1.0) < 1e-4
    assert ar.to_bins(torch.tensor([[-9.0, 9.0]])).tolist() == [[0, 7]]
    with pytest.raises(ValueError, match="bins must be"):
        GridAR(bins=1)


def test_flow_inverse_and_density():
    torch.manual_seed(0)
    flow = ToyFlow(couplings=3, hidden=8)
    for p in flow.parameters():  # non-trivial couplings
        torch.nn.init.normal_(p, std=0.5)
    x = flow.sample(20, generator=torch.Generator().manual_seed(0))
    z, log_det = flow.inverse(x)
    # log det by autograd of the inverse map, point by point
    jac = torch.stack(
        [
            torch.autograd.functional.jacobian(
                lambda v: flow.inverse(v[None])[0][0], xi
            )
            for xi in x
        ]
    )
    torch.testing.assert_close(
        log_det, torch.linalg.slogdet(jac).logabsdet, atol=1e-4, rtol=1e-4
    )
    assert z.shape == (20, 2)
    with pytest.raises(ValueError, match="couplings"):
        ToyFlow(couplings=0)


def test_diffusion_q_sample_and_errors():
    d = ToyDiffusion(SMALL, steps=10)
    x0, noise = torch.ones(4, 2), torch.zeros(4, 2)
    t = torch.full((4,), 9)
    torch.testing.assert_close(d.q_sample(x0, t, noise), d.alpha_bar[9].sqrt() * x0)
    assert d.predict_noise(x0, t).shape == (4, 2)
    assert 0 < d.alpha_bar[-1] < d.alpha_bar[0] < 1
    with pytest.raises(ValueError, match="steps"):
        ToyDiffusion(SMALL, steps=1)


def test_vae_iwae_bound_is_at_least_the_elbo_on_average():
    torch.manual_seed(0)
    vae = ToyVAE(SMALL)
    x = blobs(256)
    elbo = -vae.loss(x).item()
    bound = vae.log_prob(x, k=256).mean().item()
    assert bound >= elbo - 0.05


@pytest.mark.parametrize(
    "make",
    [
        lambda: GridAR(bins=16, extent=3.0, hidden=32),
        lambda: ToyVAE(SMALL),
        lambda: ToyDiffusion(ToyConfig(hidden=32, layers=2), steps=20),
        lambda: ToyFlow(couplings=4, hidden=16),
    ],
    ids=["ar", "vae", "diffusion", "flow"],
)
def test_training_lowers_the_loss(make):
    torch.manual_seed(0)
    model, x = make(), blobs()
    before = model.loss(x).item()
    hist = train_toy(model, x, steps=200, batch_size=128, lr=3e-3)
    assert hist.losses[-1] < before - 0.1
    assert model.sample(7, generator=torch.Generator().manual_seed(0)).shape == (7, 2)


def test_gan_training_moves_samples_towards_the_data():
    torch.manual_seed(0)
    gan, x = ToyGAN(ToyConfig(hidden=32, layers=2, latent_dim=4)), blobs()
    before = (gan.sample(500).abs()[:, 0] - 2.0).abs().mean().item()
    hist = train_toy(gan, x, steps=300, batch_size=128, lr=2e-3)
    after = (gan.sample(500).abs()[:, 0] - 2.0).abs().mean().item()
    assert after < 0.5 * before and hist.steps[-1] == 300 and hist.seconds > 0


def test_train_toy_errors():
    with pytest.raises(ValueError, match="steps and batch_size"):
        train_toy(GridAR(), blobs(), steps=0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        train_toy(GridAR(), torch.randn(10))


# --- timeline tables ---------------------------------------------------------


def test_tables_are_sorted_cited_and_in_a_bib_file():
    from pathlib import Path

    bib = "".join(p.read_text() for p in Path("book").glob("*.bib"))
    for rows in (timeline.MILESTONES, timeline.MODEL_SIZES):
        years = [r.year for r in rows]
        assert years == sorted(years)
        for r in rows:
            assert "{" + r.key + "," in bib, f"{r.key} is not in book/*.bib"
    for m in timeline.MODEL_SIZES:
        assert m.params > 0 and (m.tokens is None or m.tokens > 0)


def test_table_checks_and_plots():
    with pytest.raises(ValueError, match="params"):
        timeline.ModelSize("x", 2020, -1.0, None, "text", "k")
    with pytest.raises(ValueError, match="year"):
        timeline.Milestone(1800, "x", "k", "text")
    fig = timeline.plot_timeline()
    assert len(fig.axes) == 1
    fig = timeline.plot_model_sizes()
    assert fig.axes[0].get_yscale() == "log"


def test_power_law_fit_recovers_exponent():
    n = torch.tensor([1e3, 1e4, 1e5, 1e6])
    a, alpha = timeline.fit_power_law(n, 5.0 * n ** (-0.3))
    assert abs(alpha - 0.3) < 1e-5 and abs(a - 5.0) < 1e-3
    with pytest.raises(ValueError, match="positive"):
        timeline.fit_power_law(torch.tensor([1.0, -2.0]), torch.tensor([1.0, 1.0]))
