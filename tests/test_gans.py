"""Closed forms of the GAN losses and the correctness of one training step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc_utils.checkpoints import load_checkpoint, save_checkpoint
from aigc_utils.gan_models import (
    DCDiscriminator,
    DCGANConfig,
    DCGenerator,
    GANHistory,
    MLPDiscriminator,
    MLPGANConfig,
    MLPGenerator,
    train_gan,
)
from aigc_utils.gans import (
    adversarial_step,
    discriminator_loss,
    gan_train_step,
    generator_loss,
    optimal_discriminator,
)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# ---------------------------------------------------------------------------
# losses


def test_discriminator_loss_closed_form() -> None:
    real = torch.tensor([logit(0.8)])
    fake = torch.tensor([logit(0.2)])
    expected = -(math.log(0.8) + math.log(1 - 0.2))
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    # D = 1/2 everywhere: log 4
    zeros = torch.zeros(5, 1)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(4.0))


def test_discriminator_loss_equals_bce_with_labels() -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, 1, generator=g), torch.randn(24, 1, generator=g)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    torch.testing.assert_close(discriminator_loss(real, fake), expected)


def test_perfect_discriminator_has_zero_loss_not_minus_infinity() -> None:
    loss = discriminator_loss(torch.tensor([40.0]), torch.tensor([-40.0]))
    assert 0.0 <= loss.item() < 1e-15
    # the non-saturating generator loss is then large, the saturating one ~0
    assert generator_loss(torch.tensor([-40.0])).item() == pytest.approx(40.0)
    assert generator_loss(torch.tensor([-40.0]), saturating=True).item() == (
        pytest.approx(0.0, abs=1e-15)
    )


def test_generator_loss_closed_forms() -> None:
    fake = torch.tensor([logit(0.95)], dtype=torch.float64)
    ns = generator_loss(fake).item()
    assert ns == pytest.approx(-math.log(0.95), rel=1e-12)
    assert ns == pytest.approx(0.0513, abs=5e-5)  # not 0.255
    sat = generator_loss(fake, saturating=True).item()
    assert sat == pytest.approx(math.log(1 - 0.95), rel=1e-12)


@pytest.mark.parametrize("d_fake", [1e-6, 0.01, 0.5, 0.99])
def test_generator_gradients_wrt_logit(d_fake: float) -> None:
    a = torch.tensor([logit(d_fake)], dtype=torch.float64, requires_grad=True)
    (grad_ns,) = torch.autograd.grad(generator_loss(a), a)
    (grad_sat,) = torch.autograd.grad(generator_loss(a, saturating=True), a)
    assert grad_ns.item() == pytest.approx(-(1 - d_fake), rel=1e-9)
    assert grad_sat.item() == pytest.approx(-d_fake, rel=1e-9)


def test_loss_errors() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        discriminator_loss(torch.tensor([1]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="empty"):
        discriminator_loss(torch.tensor([1.0]), torch.zeros(0))
    with pytest.raises(ValueError, match="torch.Tensor"):
        generator_loss([0.0])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# optimal discriminator


def test_optimal_discriminator_closed_form() -> None:
    p_data = torch.tensor([1.0, 0.0, 3.0, 0.0, 2.0])
    p_g = torch.tensor([1.0, 2.0, 1.0, 0.0, 0.0])
    expected = torch.tensor([0.5, 0.0, 0.75, 0.5, 1.0])
    torch.testing.assert_close(optimal_discriminator(p_data, p_g), expected)


def test_optimal_discriminator_maximises_the_pointwise_value() -> None:
    # a log y + b log(1 - y) is largest at y = a / (a + b)
    a, b = torch.tensor(0.3), torch.tensor(0.7)
    y = torch.linspace(0.001, 0.999, 9999)
    best = y[(a * y.log() + b * (1 - y).log()).argmax()]
    assert best.item() == pytest.approx(optimal_discriminator(a, b).item(), abs=2e-4)


def test_optimal_discriminator_errors() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        optimal_discriminator(torch.tensor([-1.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="floating-point"):
        optimal_discriminator(torch.tensor([1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="do not broadcast"):
        optimal_discriminator(torch.ones(2), torch.ones(3))


# ---------------------------------------------------------------------------
# the training step


def make_pair(seed: int = 0):
    torch.manual_seed(seed)
    generator = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    discriminator = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
    opt_g = torch.optim.SGD(generator.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    real = torch.randn(32, 1) + 2.0
    z = torch.randn(32, 2)
    return generator, discriminator, opt_g, opt_d, real, z


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_gan_train_step_updates_both_players() -> None:
    generator, discriminator, opt_g, opt_d, real, z = make_pair()
    g0, d0 = snapshot(generator), snapshot(discriminator)
    stats = gan_train_step(generator, discriminator, opt_g, opt_d, real, z)
    assert set(stats) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    assert 0 < stats["d_real"] < 1 and 0 < stats["d_fake"] < 1
    changed_g = [not torch.equal(a, b) for a, b in zip(g0, generator.parameters())]
    changed_d = [not torch.equal(a, b) for a, b in zip(d0, discriminator.parameters())]
    assert all(changed_g), "every generator parameter must receive a gradient"
    assert all(changed_d)
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters()
    )
    # D's parameters stay trainable after the step
    assert all(p.requires_grad for p in discriminator.parameters())


def test_generator_step_does_not_touch_the_discriminator() -> None:
    generator, discriminator, opt_g, opt_d, real, z = make_pair(seed=1)
    after_d_step: dict[str, list[torch.Tensor]] = {}
    d_step = opt_d.step

    def recording_d_step(*args, **kwargs):
        out = d_step(*args, **kwargs)
        after_d_step["params"] = snapshot(discriminator)
        after_d_step["grads"] = [p.grad.clone() for p in discriminator.parameters()]
        return out

    opt_d.step = recording_d_step  # type: ignore[method-assign]
    gan_train_step(generator, discriminator, opt_g, opt_d, real, z)
    # the G step changed neither D's weights nor its accumulated gradients
    for before, p in zip(after_d_step["params"], discriminator.parameters()):
        assert torch.equal(before, p.detach())
    for before, p in zip(after_d_step["grads"], discriminator.parameters()):
        assert torch.equal(before, p.grad)


def test_discriminator_step_does_not_reach_the_generator() -> None:
    generator, discriminator, opt_g, opt_d, real, z = make_pair(seed=2)
    grads_at_d_step: list[torch.Tensor | None] = []
    d_step = opt_d.step

    def recording_d_step(*args, **kwargs):
        # the D loss must be computed on detached fakes: no gradient reaches G
        grads_at_d_step.extend(
            None if p.grad is None else p.grad.clone() for p in generator.parameters()
        )
        return d_step(*args, **kwargs)

    opt_d.step = recording_d_step  # type: ignore[method-assign]
    gan_train_step(generator, discriminator, opt_g, opt_d, real, z)
    assert grads_at_d_step, "the discriminator step never ran"
    assert all(g is None or not g.any() for g in grads_at_d_step)


@pytest.mark.usefixtures("one_thread")
def test_train_step_learns_a_shift() -> None:
    torch.manual_seed(0)
    generator = nn.Linear(1, 1)
    discriminator = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-2, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-2, betas=(0.5, 0.999))
    for _ in range(400):
        real = torch.randn(128, 1) * 0.5 + 3.0
        gan_train_step(
            generator, discriminator, opt_g, opt_d, real, torch.randn(128, 1)
        )
    with torch.no_grad():
        samples = generator(torch.randn(4096, 1))
    assert samples.mean().item() == pytest.approx(3.0, abs=0.3)


# ---------------------------------------------------------------------------
# adversarial_step options, the players and the training loop


def test_discriminator_only_step_leaves_the_generator_alone() -> None:
    generator, discriminator, opt_g, opt_d, real, z = make_pair(seed=3)
    g0, d0 = snapshot(generator), snapshot(discriminator)
    stats = adversarial_step(
        generator, discriminator, opt_g, opt_d, real, z, train_generator=False
    )
    assert math.isnan(stats.loss_g.item())
    assert all(torch.equal(a, b) for a, b in zip(g0, generator.parameters()))
    assert all(p.grad is None for p in generator.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(d0, discriminator.parameters()))


def test_saturating_step_uses_the_minimax_loss() -> None:
    generator, discriminator, opt_g, opt_d, real, z = make_pair(seed=4)
    stats = adversarial_step(
        generator, discriminator, opt_g, opt_d, real, z, saturating=True
    )
    assert stats.loss_g.item() <= 0  # E[log(1 - D)] is never positive
    assert stats.loss_g.dim() == 0 and not stats.loss_g.requires_grad


def test_conditional_step_passes_labels_to_both_players() -> None:
    torch.manual_seed(0)
    cfg = DCGANConfig(latent_dim=4, channels=2, num_classes=3)
    g, d = DCGenerator(cfg), DCDiscriminator(cfg)
    opt_g = torch.optim.SGD(g.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(d.parameters(), lr=0.1)
    real, labels = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    g0 = snapshot(g)
    adversarial_step(g, d, opt_g, opt_d, real, torch.randn(6, 4), labels)
    assert all(p.grad is not None for p in g.parameters())
    assert not torch.equal(g0[0], g.project[0].weight)


def test_mlp_players_shapes_and_ranges() -> None:
    torch.manual_seed(0)
    cfg = MLPGANConfig(latent_dim=8, hidden=16)
    g, d = MLPGenerator(cfg), MLPDiscriminator(cfg)
    x = g(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert d(x).shape == (5,)
    images = g.sample(3)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() <= images.max() <= 1
    points = MLPGenerator(MLPGANConfig(data_shape=(2,), latent_dim=4)).sample(7)
    assert points.shape == (7, 2)
    assert cfg.is_image and not MLPGANConfig(data_shape=(2,)).is_image


def test_dcgan_shapes_ranges_and_parameter_count() -> None:
    torch.manual_seed(0)
    cfg = DCGANConfig()
    g, d = DCGenerator(cfg), DCDiscriminator(cfg)
    x = g(torch.randn(4, cfg.latent_dim))
    assert x.shape == (4, 1, 28, 28) and x.abs().max() <= 1
    assert d(x).shape == (4,)
    # 64 -> 64*49 projection, BN, 64->32 and 32->1 transposed 4x4 convolutions
    n_g = 64 * 3136 + 2 * 64 + 64 * 32 * 16 + 2 * 32 + 32 * 16 + 1
    assert sum(p.numel() for p in g.parameters()) == n_g
    samples = g.eval().sample(5)
    assert samples.shape == (5, 1, 28, 28) and samples.min() >= 0


def test_conditional_dcgan_labels() -> None:
    torch.manual_seed(0)
    cfg = DCGANConfig(latent_dim=4, channels=2, num_classes=10)
    g, d = DCGenerator(cfg).eval(), DCDiscriminator(cfg)
    assert g.sample(12).shape == (12, 1, 28, 28)  # cycles through the classes
    x = g.sample(3, labels=torch.tensor([7, 7, 7])) * 2 - 1
    assert d(x, torch.tensor([7, 7, 7])).shape == (3,)
    # the label changes the image: same z, different digit requested
    z = torch.randn(1, 4)
    assert not torch.equal(g(z, torch.tensor([1])), g(z, torch.tensor([2])))


def test_player_errors() -> None:
    uncond, cond = DCGANConfig(channels=2), DCGANConfig(channels=2, num_classes=10)
    with pytest.raises(ValueError, match="unconditional"):
        DCGenerator(uncond)(torch.randn(2, 64), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer labels of shape"):
        DCGenerator(cond)(torch.randn(2, 64))
    with pytest.raises(ValueError, match="lie in"):
        DCDiscriminator(cond)(torch.zeros(1, 1, 28, 28), torch.tensor([10]))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        DCDiscriminator(uncond)(torch.zeros(1, 784))
    with pytest.raises(ValueError, match="positive integer"):
        DCGenerator(uncond).sample(0)
    with pytest.raises(ValueError, match="sizes must be"):
        DCGANConfig(channels=0)
    with pytest.raises(ValueError, match="every size"):
        MLPGANConfig(hidden=0)


def test_checkpoint_round_trip_with_weights_only(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = DCGANConfig(latent_dim=8, channels=4, num_classes=10)
    g = DCGenerator(cfg).eval()
    path = save_checkpoint(tmp_path / "g.pt", g, cfg, extra={"step": 3})
    fresh = DCGenerator(cfg).eval()
    assert load_checkpoint(path, fresh, cfg) == {"step": 3}
    z, y = torch.randn(2, 8), torch.tensor([3, 4])
    torch.testing.assert_close(fresh(z, y), g(z, y))
    assert isinstance(torch.load(path, weights_only=True), dict)


class Shifted:
    """Batches of N(3, 0.5^2) in 1-D, a fresh draw each time (finite per pass)."""

    def __init__(self, n: int = 4) -> None:
        self.n = n

    def __iter__(self):
        for _ in range(self.n):
            yield torch.randn(128, 1) * 0.5 + 3.0


@pytest.mark.usefixtures("one_thread")
def test_train_gan_learns_a_gaussian_mean_with_history_and_ema() -> None:
    torch.manual_seed(0)
    cfg = MLPGANConfig(data_shape=(1,), latent_dim=1, hidden=16, depth=1)
    g, d = MLPGenerator(cfg), MLPDiscriminator(cfg)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-2, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-2, betas=(0.5, 0.999))
    history, ema = train_gan(
        g, d, Shifted(), opt_g, opt_d, steps=400, ema_decay=0.9, log_every=100,
        evaluate=lambda m: {"mean": m.sample(4096).mean()}, eval_every=200,
        progress=False,
    )  # fmt: skip
    assert isinstance(history, GANHistory) and ema is not g
    assert history.steps == [100, 200, 300, 400]
    assert [int(s) for s in history.metric("mean")[0]] == [200, 400]
    assert history.metric("mean")[1][-1] == pytest.approx(3.0, abs=0.3)
    assert all(0 < v < 1 for v in history.d_real + history.d_fake)
    assert history.seconds > 0 and not ema.training
    with pytest.raises(KeyError, match="no evaluation"):
        history.metric("fid")


@pytest.mark.usefixtures("one_thread")
def test_train_gan_discriminator_steps_consume_batches() -> None:
    torch.manual_seed(0)
    cfg = MLPGANConfig(data_shape=(1,), latent_dim=1, hidden=4, depth=1)
    g, d = MLPGenerator(cfg), MLPDiscriminator(cfg)
    seen = []

    class Counting(Shifted):
        def __iter__(self):
            for batch in super().__iter__():
                seen.append(1)
                yield batch

    opt_g = torch.optim.SGD(g.parameters(), lr=0.01)
    opt_d = torch.optim.SGD(d.parameters(), lr=0.01)
    history, out = train_gan(
        g, d, Counting(n=2), opt_g, opt_d, steps=5, d_steps=3, saturating=True,
        log_every=2, progress=False,
    )  # fmt: skip
    assert len(seen) == 15 and out is g and history.steps == [2, 4, 5]
    assert all(v <= 0 for v in history.loss_g)  # the saturating loss


def test_train_gan_steps_each_scheduler_once_per_generator_update() -> None:
    torch.manual_seed(0)
    cfg = MLPGANConfig(data_shape=(1,), latent_dim=1, hidden=4, depth=1)
    g, d = MLPGenerator(cfg), MLPDiscriminator(cfg)
    opt_g = torch.optim.SGD(g.parameters(), lr=1.0)
    opt_d = torch.optim.SGD(d.parameters(), lr=1.0)
    halve = [torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5)
             for o in (opt_g, opt_d)]  # fmt: skip
    train_gan(g, d, Shifted(), opt_g, opt_d, steps=3, d_steps=2, log_every=1,
              progress=False, schedulers=halve)  # fmt: skip
    assert [o.param_groups[0]["lr"] for o in (opt_g, opt_d)] == [0.125, 0.125]


def test_train_gan_errors() -> None:
    cfg = MLPGANConfig(data_shape=(1,), latent_dim=1, hidden=4, depth=1)
    g, d = MLPGenerator(cfg), MLPDiscriminator(cfg)
    opt_g = torch.optim.SGD(g.parameters(), lr=0.01)
    opt_d = torch.optim.SGD(d.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="must be >= 1"):
        train_gan(g, d, Shifted(), opt_g, opt_d, steps=0)
    with pytest.raises(ValueError, match="ema_decay"):
        train_gan(g, d, Shifted(), opt_g, opt_d, steps=1, ema_decay=1.0)
    with pytest.raises(ValueError, match="no batches"):
        train_gan(g, d, [], opt_g, opt_d, steps=1, progress=False)
    bad = [torch.full((8, 1), float("nan"))]
    with pytest.raises(ValueError, match="became"):
        train_gan(g, d, bad, opt_g, opt_d, steps=1, progress=False)


def test_plot_gan_history() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from aigc_utils.gan_models import plot_gan_history

    with pytest.raises(ValueError, match="nothing to plot"):
        plot_gan_history(GANHistory())
    h = GANHistory(steps=[1, 2], loss_d=[1.0, 1.2], loss_g=[0.7, 0.8],
                   d_real=[0.6, 0.5], d_fake=[0.4, 0.5])  # fmt: skip
    fig = plot_gan_history(h, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["losses", "discriminator"]
