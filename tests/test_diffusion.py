"""Tests for aigc_utils.diffusion and aigc_utils.unet: closed forms, samplers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aigc_utils.diffusion import (
    EMA,
    Diffusion,
    MLPDenoiser,
    MLPDenoiserConfig,
    NoiseSchedule,
    timestep_embedding,
)
from aigc_utils.unet import UNet, UNetConfig


class ConstantEps(nn.Module):
    """Predicts a fixed noise (or ``eps_fn(x, t)``) whatever the label."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x, t, y=None):  # noqa: ANN001, ANN201
        return torch.zeros_like(x) + self.value


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_is_a_valid_noise_schedule(kind: str) -> None:
    s = NoiseSchedule(1000, kind)
    assert s.betas.shape == (1000,) and s.betas.dtype == torch.float64
    assert (s.betas > 0).all() and (s.betas < 1).all()
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - s.betas, 0))
    assert (s.alphas_cumprod.diff() < 0).all()
    assert s.alphas_cumprod[-1] < 1e-4 and s.alphas_cumprod[0] > 0.99
    assert kind in repr(s)


def test_linear_schedule_matches_ho_et_al() -> None:
    s = NoiseSchedule(1000, "linear")
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)


def test_cosine_schedule_closed_form() -> None:
    s, T, off = NoiseSchedule(1000, "cosine"), 1000, 0.008
    f = lambda t: math.cos((t / T + off) / (1 + off) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):  # index t is abar(t + 1)
        assert s.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)


def test_add_noise_has_the_closed_form_marginal() -> None:
    s = NoiseSchedule(100, "linear", beta_end=0.05)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -2.0]).expand(200_000, 2)
    t = 40
    xt = s.add_noise(x0, torch.randn(x0.shape, generator=g), t)
    abar = s.alphas_cumprod[t].item()
    assert xt.mean(0) == pytest.approx((math.sqrt(abar) * x0[0]).tolist(), abs=0.01)
    assert xt.var(0) == pytest.approx([1 - abar] * 2, abs=0.01)
    assert s.q_sample == s.add_noise


def test_step_by_step_chain_matches_closed_form() -> None:
    s = NoiseSchedule(50, "cosine")
    g = torch.Generator().manual_seed(1)
    x = torch.full((100_000, 1), 2.0, dtype=torch.float64)
    for t in range(30):
        b = s.betas[t]
        x = (1 - b).sqrt() * x + b.sqrt() * torch.randn(x.shape, generator=g).double()
    abar = s.alphas_cumprod[29].item()
    assert x.mean().item() == pytest.approx(2 * math.sqrt(abar), abs=0.01)
    assert x.var().item() == pytest.approx(1 - abar, abs=0.01)


def test_exact_noise_recovers_x0() -> None:
    s = NoiseSchedule(1000, "cosine")
    x0 = torch.randn(8, 1, 28, 28, dtype=torch.float64)
    eps = torch.randn(8, 1, 28, 28, dtype=torch.float64)
    t = torch.tensor([0, 1, 10, 100, 500, 900, 990, 999])
    xt = s.add_noise(x0, eps, t)
    assert torch.allclose(s.predict_x0(xt, eps, t), x0, atol=1e-6)


def test_step_eta1_is_ddpm_posterior() -> None:
    """DDIM's step with eta = 1 and prev = t - 1 has DDPM's posterior mean and
    variance beta_tilde (Song et al. 2021; Ho et al. 2020, eq. 7)."""
    s = NoiseSchedule(1000, "linear")
    g = torch.Generator().manual_seed(2)
    xt, eps = (
        torch.randn(4, 3, generator=g).double(),
        torch.randn(4, 3, generator=g).double(),
    )
    for t in (1, 10, 500, 999):
        ab, ab_prev, beta = s.alphas_cumprod[t], s.alphas_cumprod[t - 1], s.betas[t]
        x0 = (xt - (1 - ab).sqrt() * eps) / ab.sqrt()
        mean = (
            ab_prev.sqrt() * beta / (1 - ab) * x0
            + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * xt
        )
        var = (1 - ab_prev) / (1 - ab) * beta
        got = s.step(eps, t, xt, eta=1.0, generator=torch.Generator().manual_seed(3))
        z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(3)).double()
        assert torch.allclose(got, mean + var.sqrt() * z, atol=1e-10)


def test_step_eta1_variance_empirically() -> None:
    s = NoiseSchedule(100, "cosine")
    xt, eps = torch.zeros(50_000, 1), torch.zeros(50_000, 1)
    out = s.step(eps, 60, xt, eta=1.0, generator=torch.Generator().manual_seed(0))
    ab, ab_prev = s.alphas_cumprod[60], s.alphas_cumprod[59]
    beta_tilde = ((1 - ab_prev) / (1 - ab) * s.betas[60]).item()
    assert out.var().item() == pytest.approx(beta_tilde, rel=0.03)


def test_ddim_eta0_is_deterministic_and_final_step_returns_x0() -> None:
    s = NoiseSchedule(100, "cosine")
    xt, eps = torch.randn(3, 2), torch.randn(3, 2)
    a = s.step(eps, 50, xt, prev_t=20, eta=0.0)
    b = s.step(eps, 50, xt, prev_t=20, eta=0.0)
    assert torch.equal(a, b)
    x0 = s.step(eps, 50, xt, prev_t=-1, eta=0.0)
    assert torch.allclose(x0, s.predict_x0(xt, eps, 50))
    clipped = s.step(eps * 50, 50, xt, prev_t=-1, clip=1.0)
    assert clipped.abs().max() <= 1.0 + 1e-6


def test_timesteps() -> None:
    s = NoiseSchedule(1000)
    assert s.timesteps() == list(range(999, -1, -1))
    ts = s.timesteps(20)
    assert len(ts) == 20 and ts[0] == 999 and ts[-1] == 0
    assert all(a > b for a, b in zip(ts, ts[1:]))
    with pytest.raises(ValueError, match="num_steps"):
        s.timesteps(0)
    with pytest.raises(ValueError, match="num_steps"):
        s.timesteps(1001)


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="num_timesteps"):
        NoiseSchedule(0)
    with pytest.raises(ValueError, match="kind"):
        NoiseSchedule(10, "sigmoid")
    with pytest.raises(ValueError, match="beta_start"):
        NoiseSchedule(10, "linear", beta_start=0.5, beta_end=0.1)
    s = NoiseSchedule(10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"in \[0, 9\]"):
        s.add_noise(x, x, 10)
    with pytest.raises(ValueError, match=r"in \[0, 9\]"):
        s.add_noise(x, x, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="integers"):
        s.add_noise(x, x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        s.add_noise(x, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="must match"):
        s.add_noise(x, torch.zeros(2, 4), 1)
    with pytest.raises(ValueError, match="prev_t"):
        s.step(x, 5, x, prev_t=5)
    with pytest.raises(ValueError, match="prev_t"):
        s.step(x, 10, x)
    with pytest.raises(ValueError, match="eta"):
        s.step(x, 5, x, eta=-1.0)


def test_timestep_embedding() -> None:
    e = timestep_embedding(torch.tensor([0, 5, 999]), 16)
    assert e.shape == (3, 16)
    assert torch.allclose(e[0, :8], torch.zeros(8)) and torch.allclose(
        e[0, 8:], torch.ones(8)
    )


def test_unet_shapes_and_errors() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=8, emb_dim=16))
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    assert net(x, t, torch.tensor([0, 9, 10])).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="labels"):
        net(x, t, None)
    with pytest.raises(ValueError, match="labels"):
        net(x, t, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="28, 28"):
        net(torch.randn(3, 1, 32, 32), t, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="t must be"):
        net(x, t[:2], torch.tensor([0, 1, 2]))
    unconditional = UNet(UNetConfig(channels=8, emb_dim=16, num_classes=0))
    assert unconditional(x, t).shape == x.shape


def test_unet_output_starts_at_zero_and_trains() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=8, emb_dim=16))
    x, t, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 7]), torch.tensor([1, 2])
    assert net(x, t, y).abs().max() == 0  # zero-initialised last layer
    model = Diffusion(net, NoiseSchedule(100), num_classes=10)
    model.loss((x, y)).backward()
    assert net.out[-1].weight.grad.abs().sum() > 0


def test_diffusion_overfits_one_batch() -> None:
    torch.manual_seed(0)
    x0 = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(64, 1)
    model = Diffusion(MLPDenoiser(MLPDenoiserConfig(hidden=64)), NoiseSchedule(50))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(x0).item()
    for _ in range(400):
        loss = model.loss(x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.5
    with torch.no_grad():
        final = sum(model.loss(x0).item() for _ in range(20)) / 20
    assert final < 0.35
    samples = model.sample(400, (2,), steps=50, eta=1.0,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    near = torch.cdist(samples, x0[:2]).min(1).values
    assert (near < 0.3).double().mean() > 0.8


def test_sample_shape_range_and_determinism() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=8, emb_dim=16))
    model = Diffusion(net, NoiseSchedule(100), num_classes=10)
    labels = torch.tensor([0, 1, 2, 3, 4])
    kw = dict(labels=labels, guidance=2.0, steps=4, clip=1.0, batch_size=2)
    a = model.sample(5, (1, 28, 28), generator=torch.Generator().manual_seed(1), **kw)
    b = model.sample(5, (1, 28, 28), generator=torch.Generator().manual_seed(1), **kw)
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b)
    assert a.abs().max() <= 1.0 + 1e-6
    seen = []
    model.sample(2, (1, 28, 28), labels=labels[:2], steps=3,
                 callback=lambda t, x: seen.append((t, x.shape)))  # fmt: skip
    assert [t for t, _ in seen] == [50, 0, -1]


def test_guidance_combines_conditional_and_unconditional() -> None:
    class Stub(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x, t, y):  # noqa: ANN001, ANN202
            return torch.where(y[:, None] == 10, 0.5, 0.2).expand_as(x) + self.p

    model = Diffusion(Stub(), NoiseSchedule(10), num_classes=10)
    x, y = torch.zeros(2, 3), torch.tensor([1, 4])
    assert torch.allclose(model.predict_eps(x, 5, y, 3.0), torch.full((2, 3), -0.7))
    assert torch.allclose(model.predict_eps(x, 5, y, 0.0), torch.full((2, 3), 0.2))


def test_inpainting_keeps_known_pixels() -> None:
    torch.manual_seed(0)
    model = Diffusion(ConstantEps(0.1), NoiseSchedule(100))
    known = torch.rand(3, 1, 4, 4) * 2 - 1
    mask = torch.zeros(3, 1, 4, 4)
    mask[..., :2, :] = 1
    out = model.sample(3, (1, 4, 4), steps=10, eta=1.0, clip=1.0, known=known,
                       mask=mask, resample=2)  # fmt: skip
    assert torch.allclose(out * mask, known * mask)
    with pytest.raises(ValueError, match="both known and mask"):
        model.sample(3, (1, 4, 4), known=known)
    with pytest.raises(ValueError, match="known must have shape"):
        model.sample(2, (1, 4, 4), known=known, mask=mask)


def test_label_errors() -> None:
    cond = Diffusion(ConstantEps(), NoiseSchedule(10), num_classes=10)
    uncond = Diffusion(ConstantEps(), NoiseSchedule(10))
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="needs 4 labels"):
        cond.loss(x)
    with pytest.raises(ValueError, match="expected 4 labels"):
        cond.loss((x, torch.tensor([1, 2])))
    with pytest.raises(ValueError, match=r"0\.\.10"):
        cond.loss((x, torch.tensor([1, 2, 3, 11])))
    with pytest.raises(ValueError, match="unconditional"):
        uncond.loss((x, torch.tensor([1, 2, 3, 4])))
    with pytest.raises(ValueError, match="expected 3 labels"):
        cond.sample(3, (2,), labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="label_dropout"):
        Diffusion(ConstantEps(), NoiseSchedule(10), label_dropout=1.0)
    with pytest.raises(ValueError, match=">= 1"):
        uncond.sample(0, (2,))


def test_label_dropout_uses_the_null_label() -> None:
    seen = []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x, t, y):  # noqa: ANN001, ANN202
            seen.append(y)
            return x * self.p

    torch.manual_seed(0)
    model = Diffusion(Spy(), NoiseSchedule(10), num_classes=10, label_dropout=0.5)
    model.loss((torch.zeros(2000, 2), torch.zeros(2000, dtype=torch.long)))
    share = (seen[0] == 10).double().mean().item()
    assert share == pytest.approx(0.5, abs=0.05)
    assert set(seen[0].tolist()) == {0, 10}


def test_ema() -> None:
    net = nn.Linear(2, 1)
    ema = EMA(net, decay=0.5)
    with torch.no_grad():
        net.weight.add_(2.0)
    before = ema.model.weight.clone()
    ema.step()
    assert torch.allclose(ema.model.weight, before + 1.0)
    assert not ema.model.weight.requires_grad
    with pytest.raises(ValueError, match="decay"):
        EMA(net, decay=1.0)


def test_min_snr_weighting() -> None:
    schedule = NoiseSchedule(50, "cosine")
    x0 = torch.randn(64, 3)
    plain = Diffusion(ConstantEps(), schedule)
    huge = Diffusion(ConstantEps(), schedule, min_snr_gamma=1e12)  # weight 1 everywhere
    torch.manual_seed(1)
    expected_plain = plain.loss(x0)
    torch.manual_seed(1)
    assert huge.loss(x0).item() == pytest.approx(expected_plain.item(), rel=1e-5)

    # by hand: the network predicts 0, so example i's error is mean(noise_i^2)
    torch.manual_seed(1)
    got = Diffusion(ConstantEps(), schedule, min_snr_gamma=2.0).loss(x0)
    torch.manual_seed(1)
    t = torch.randint(0, 50, (64,))
    noise = torch.randn_like(x0)
    snr = schedule.alphas_cumprod[t] / (1 - schedule.alphas_cumprod[t])
    weight = torch.minimum(snr, torch.tensor(2.0)) / snr
    assert got.item() == pytest.approx(
        (noise.pow(2).mean(1) * weight).mean().item(), rel=1e-5
    )
    assert weight.min() < 1  # the check above really reweights some examples

    with pytest.raises(ValueError, match="min_snr_gamma"):
        Diffusion(ConstantEps(), schedule, min_snr_gamma=0.0)


def test_guidance_on_an_unconditional_model_is_an_error() -> None:
    net = MLPDenoiser(MLPDenoiserConfig(hidden=8))
    model = Diffusion(net, NoiseSchedule(20))
    with pytest.raises(ValueError, match="guidance needs labels"):
        model.sample(2, (2,), guidance=1.0, steps=2)
    with pytest.raises(ValueError, match="unconditional: pass no labels"):
        model.sample(2, (2,), labels=torch.tensor([0, 1]), steps=2)
