"""Tests for aigc_utils.flow: exact velocity fields, samplers, guidance, training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from aigc_utils.diffusion import MLPDenoiser, MLPDenoiserConfig
from aigc_utils.flow import (
    TIME_SCALE,
    flow_matching_loss,
    reflow_pairs,
    sample_euler,
    sample_heun,
    straightness,
    velocity,
)
from aigc_utils.unet import UNet, UNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _col(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Network time ``(B,)`` back to ``t in [0, 1]``, shaped to broadcast on ``x``."""
    return (t / TIME_SCALE).view(-1, *[1] * (x.dim() - 1))


def point_mass_field(x1: torch.Tensor) -> Callable[..., torch.Tensor]:
    """The exact velocity for data all at ``x1``: ``(x1 - x) / (1 - t)``."""
    return lambda x, t, y=None: (x1 - x) / (1 - _col(t, x))


def gaussian_field(m: float, s: float) -> Callable[..., torch.Tensor]:
    """``E[x1 - x0 | x_t]`` for ``x0 ~ N(0, I)`` and ``x1 ~ N(m, s^2 I)``
    independent. ``x_t ~ N(t m, sigma_t^2 I)``, ``sigma_t^2 = (1-t)^2 + t^2 s^2``,
    and the ODE's flow is ``x_t = t m + sigma_t x0``: it ends at ``m + s x0``."""

    def v(x: torch.Tensor, t: torch.Tensor, y: object = None) -> torch.Tensor:
        t = _col(t, x)
        var = (1 - t) ** 2 + t**2 * s**2
        return m + (t * s**2 - (1 - t)) / var * (x - t * m)

    return v


class Counter:
    """Wraps a velocity field and records the batch size of each call."""

    def __init__(self, field: Callable[..., torch.Tensor]) -> None:
        self.field, self.rows = field, []

    def __call__(self, x, t, y=None):  # noqa: ANN001, ANN204
        self.rows.append(len(x))
        return self.field(x, t, y)


@dataclass(frozen=True)
class TinyConfig:
    num_classes: int = 3


class TinyConditional(nn.Module):
    """A conditional MLP called like DDPM's networks; label 3 is the null label."""

    def __init__(self) -> None:
        super().__init__()
        self.config = TinyConfig()
        self.emb = nn.Embedding(self.config.num_classes + 1, 8)
        self.net = nn.Sequential(nn.Linear(11, 32), nn.SiLU(), nn.Linear(32, 2))

    def forward(self, x, t, y):  # noqa: ANN001, ANN201
        return self.net(torch.cat([x, self.emb(y), t[:, None] / TIME_SCALE], 1))


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).double()


# The loss -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 3), (16, 2, 4, 4)])
def test_loss_is_zero_for_the_true_velocity_of_a_point_mass(shape) -> None:  # noqa: ANN001
    x1 = noise(*shape[1:], seed=1).expand(shape)
    g = torch.Generator().manual_seed(0)
    exact = flow_matching_loss(point_mass_field(x1), x1, generator=g)
    assert exact.dim() == 0 and exact.item() < 1e-20
    # a model that predicts zero pays E||x1 - x0||^2 per element: mean(x1^2) + 1
    zero = flow_matching_loss(lambda x, t, y: torch.zeros_like(x), x1, generator=g)
    assert zero.item() == pytest.approx(x1.pow(2).mean().item() + 1, rel=0.3)


def test_loss_with_a_given_pair_and_times_the_network_sees() -> None:
    x0, x1 = noise(8, 2, seed=2), noise(8, 2, seed=3)
    seen = []

    def pair_velocity(x, t, y):  # noqa: ANN001, ANN202
        seen.append(t)
        return x1 - x0

    assert flow_matching_loss(pair_velocity, x1, x0=x0).item() == 0.0
    assert seen[0].shape == (8,) and 0 <= seen[0].min() and seen[0].max() <= 999
    assert seen[0].max() > 100  # t * 999, not t in [0, 1]


def test_loss_is_seeded_by_its_generator() -> None:
    model, x1 = TinyConditional(), torch.randn(32, 2)
    y = torch.randint(0, 3, (32,))

    def loss(seed: int) -> float:
        g = torch.Generator().manual_seed(seed)
        return flow_matching_loss(model, x1, y, generator=g, label_drop=0.3).item()

    assert loss(0) == loss(0) != loss(1)


def test_label_dropout_uses_ddpms_null_label() -> None:
    seen = []

    def record(x, t, y):  # noqa: ANN001, ANN202
        seen.append(y)
        return torch.zeros_like(x)

    y = torch.full((4000,), 2)
    g = torch.Generator().manual_seed(0)
    flow_matching_loss(
        record, torch.zeros(4000, 2), y, generator=g, label_drop=0.25, null_label=10
    )
    dropped = (seen[0] == 10).float().mean().item()
    assert dropped == pytest.approx(0.25, abs=0.03)
    assert set(seen[0].tolist()) == {2, 10} and (y == 2).all()  # input untouched
    flow_matching_loss(record, torch.zeros(4000, 2), y)  # no dropout by default
    assert (seen[1] == 2).all()


def test_loss_and_samplers_drive_the_course_unet() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=8, mults=(1, 1, 2), emb_dim=16, num_classes=10))
    x1, y = torch.rand(3, 1, 28, 28) * 2 - 1, torch.tensor([0, 5, 9])
    loss = flow_matching_loss(net, x1, y, label_drop=0.5)  # null label 10 from config
    loss.backward()  # the zero-initialised head: only it gets a gradient at first
    assert loss.item() > 0 and net.out[-1].weight.grad.abs().sum() > 0
    x = sample_heun(net, (3, 1, 28, 28), 2, labels=y, guidance=2.0)
    assert x.shape == (3, 1, 28, 28) and not x.requires_grad


# The samplers ---------------------------------------------------------------------


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
@pytest.mark.parametrize("steps", [1, 5])
def test_samplers_carry_noise_exactly_to_a_point_mass(sampler, steps) -> None:  # noqa: ANN001
    x1 = torch.tensor([3.0, -1.0], dtype=torch.float64)
    x = sampler(point_mass_field(x1), (100, 2), steps, x0=noise(100, 2))
    assert torch.allclose(x, x1.expand(100, 2), atol=1e-12)


def test_euler_maps_a_standard_normal_to_the_target_gaussian() -> None:
    m, s, x0 = 2.0, 0.5, noise(20_000, 2)
    x = sample_euler(gaussian_field(m, s), x0.shape, 200, x0=x0)
    assert (x - (m + s * x0)).abs().max() < 0.03  # the exact flow's endpoint
    assert x.mean(0).tolist() == pytest.approx([m, m], abs=0.02)
    assert x.std(0).tolist() == pytest.approx([s, s], abs=0.02)


def test_heun_beats_euler_on_a_curved_field_and_has_second_order() -> None:
    m, s, x0 = 1.0, 1.0, noise(50, 2)
    field, exact = gaussian_field(m, s), m + s * x0

    def err(sampler, steps: int) -> float:  # noqa: ANN001
        return (sampler(field, x0.shape, steps, x0=x0) - exact).abs().max().item()

    for steps in (4, 10):
        assert err(sample_heun, steps) < err(sample_euler, steps) / 5
    assert err(sample_euler, 40) / err(sample_euler, 80) == pytest.approx(2, rel=0.15)
    assert err(sample_heun, 40) / err(sample_heun, 80) == pytest.approx(4, rel=0.15)


@pytest.mark.parametrize("guidance", [0.0, 1.5])
@pytest.mark.parametrize("steps", [1, 4])
def test_network_evaluations_per_sampler(steps: int, guidance: float) -> None:
    labels = torch.tensor([0, 1, 2, 1, 0])
    for sampler, nfe in ((sample_euler, steps), (sample_heun, 2 * steps - 1)):
        model = Counter(lambda x, t, y: torch.ones_like(x))
        sampler(model, (5, 2), steps, labels, guidance, null_label=3)
        assert len(model.rows) == nfe
        assert set(model.rows) == {10 if guidance else 5}  # cond + uncond batched


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
def test_trajectory_starts_at_the_noise_and_ends_at_the_samples(sampler) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    x, path = sampler(gaussian_field(1.0, 0.5), (7, 2), 6, generator=g, trajectory=True)
    assert path.shape == (7, 7, 2)
    assert torch.equal(path[0], torch.randn(7, 2, generator=g.manual_seed(0)))
    assert torch.equal(path[-1], x)


# Guidance -------------------------------------------------------------------------


def test_guidance_zero_is_the_conditional_velocity_and_w_follows_ddpm() -> None:
    torch.manual_seed(0)
    model, x, y = TinyConditional(), torch.randn(6, 2), torch.tensor([0, 1, 2] * 2)
    tt = torch.full((6,), 0.3 * TIME_SCALE)
    v_cond, v_uncond = model(x, tt, y), model(x, tt, torch.full_like(y, 3))
    assert torch.allclose(velocity(model, x, 0.3, y, 0.0), v_cond)
    w = 2.0
    expected = v_uncond + (1 + w) * (v_cond - v_uncond)
    assert torch.allclose(velocity(model, x, 0.3, y, w), expected, atol=1e-6)
    assert torch.allclose(
        velocity(model, x, torch.full((6,), 0.3), y, w), expected, atol=1e-6
    )


# Straightness and reflow ------------------------------------------------------------


def test_straightness_of_hand_made_and_exact_paths() -> None:
    corner = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])[:, None]  # (3, 1, 2)
    # chord (1, 1), slopes 2 * (1, 0) and 2 * (0, 1): each off by a length^2 of 2
    assert straightness(corner).item() == pytest.approx(2.0)
    assert straightness(torch.stack([torch.zeros(4, 2), torch.ones(4, 2)])) == 0
    _, path = sample_euler(
        point_mass_field(torch.ones(2, dtype=torch.float64)),
        (50, 2),
        10,
        x0=noise(50, 2),
        trajectory=True,
    )
    assert straightness(path).item() < 1e-20
    # the Gaussian flow x_t = t m + sigma_t x0: S = D int_0^1 (s - 1 - sigma_t')^2 dt
    m, s, d = 1.0, 0.5, 2
    _, path = sample_euler(
        gaussian_field(m, s), (4000, d), 400, x0=noise(4000, d), trajectory=True
    )
    t = (torch.arange(100_000, dtype=torch.float64) + 0.5) / 100_000
    sigma_dot = (t * s**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * s**2).sqrt()
    expected = d * (s - 1 - sigma_dot).pow(2).mean().item()
    assert straightness(path).item() == pytest.approx(expected, rel=0.05)


def test_reflow_pairs_are_the_odes_own_coupling() -> None:
    field, labels = gaussian_field(1.0, 0.5), torch.arange(23) % 3
    g = torch.Generator().manual_seed(4)
    x0, x1 = reflow_pairs(
        field, 23, (2,), 8, labels, sampler=sample_heun, generator=g, batch_size=5
    )
    assert x0.shape == x1.shape == (23, 2)
    assert torch.equal(x0, torch.randn(23, 2, generator=g.manual_seed(4)))
    assert torch.allclose(x1, sample_heun(field, (23, 2), 8, x0=x0), atol=1e-6)


def test_training_a_tiny_mlp_on_two_gaussians_lowers_the_loss_and_finds_the_modes():
    torch.manual_seed(0)
    modes = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])

    def data(n: int, g: torch.Generator | None = None) -> torch.Tensor:
        pick = torch.randint(0, 2, (n,), generator=g)
        return modes[pick] + 0.2 * torch.randn(n, 2, generator=g)

    net = MLPDenoiser(MLPDenoiserConfig(dim=2, hidden=64, layers=3))
    test_x1 = data(2000, torch.Generator().manual_seed(1))

    def test_loss() -> float:
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():
            return flow_matching_loss(net, test_x1, generator=g).item()

    before = test_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        opt.zero_grad()
        flow_matching_loss(net, data(256)).backward()
        opt.step()
    after = test_loss()
    assert after < 0.6 * before
    x = sample_euler(net, (1000, 2), 20, generator=torch.Generator().manual_seed(3))
    nearest = torch.cdist(x, modes).min(1)
    assert (nearest.values < 0.75).float().mean() > 0.8
    share = nearest.indices.float().mean().item()
    assert 0.3 < share < 0.7  # both modes, not one


# Errors ---------------------------------------------------------------------------

MODEL = TinyConditional()
X, Y = torch.zeros(4, 2), torch.tensor([0, 1, 2, 0])
PLAIN = MLPDenoiser()  # no labels, no null label


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: flow_matching_loss(MODEL, torch.zeros(4), Y), "a batch"),
        (lambda: flow_matching_loss(MODEL, X, Y[:3]), r"labels must be \(4,\)"),
        (lambda: flow_matching_loss(MODEL, X, Y.float()), "integers"),
        (lambda: flow_matching_loss(MODEL, X, Y + 2), r"0\.\.3"),
        (lambda: flow_matching_loss(MODEL, X, Y, label_drop=1.0), "label_drop must"),
        (lambda: flow_matching_loss(PLAIN, X, label_drop=0.1), "needs labels"),
        (lambda: flow_matching_loss(PLAIN, X, Y, label_drop=0.1), "null label"),
        (lambda: flow_matching_loss(MODEL, X, Y, x0=X[:2]), "x0 must have"),
        (lambda: velocity(MODEL, X, 1.5, Y), r"t must be in \[0, 1\]"),
        (lambda: velocity(MODEL, X, torch.tensor([-0.1] * 4), Y), r"in \[0, 1\]"),
        (lambda: velocity(MODEL, X, torch.zeros(3), Y), "scalar or"),
        (lambda: velocity(PLAIN, X, 0.5, guidance=1.0), "guidance needs labels"),
        (lambda: velocity(PLAIN, X, 0.5, Y, guidance=1.0), "null label"),
        (lambda: sample_euler(PLAIN, (4, 2), 3, guidance=1.0), "guidance needs"),
        (lambda: sample_euler(PLAIN, (4, 2), 0), "steps must be"),
        (lambda: sample_heun(PLAIN, (4, 2), 2.5), "steps must be"),
        (lambda: sample_heun(PLAIN, (4,), 2), "a batch"),
        (lambda: sample_heun(PLAIN, (4, 2), 2, x0=torch.zeros(4, 3)), "x0 must"),
        (lambda: straightness(torch.zeros(5, 2)), "trajectory must"),
        (lambda: straightness(torch.zeros(1, 4, 2)), "trajectory must"),
        (lambda: reflow_pairs(PLAIN, 0, (2,), 3), "n and batch_size"),
        (lambda: reflow_pairs(MODEL, 5, (2,), 3, Y), r"labels must be \(5,\)"),
    ],
)
def test_errors_name_the_problem(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
