"""Closed forms and edge cases of aigc_utils.divergences."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_utils.divergences import (
    cross_entropy,
    entropy,
    gaussian_kl,
    js_divergence,
    kl_divergence,
)

LOG2 = math.log(2.0)


def random_dists(n: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n, k, generator=g, dtype=torch.float64), -1)


# ---------------------------------------------------------------------------
# entropy, cross-entropy, KL, JSD: closed forms


def test_entropy_closed_forms() -> None:
    assert entropy(torch.full((8,), 1 / 8)).item() == pytest.approx(math.log(8))
    assert entropy(torch.tensor([0.0, 1.0, 0.0])).item() == 0.0
    p = torch.tensor([0.25, 0.75], dtype=torch.float64)
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert entropy(p).item() == pytest.approx(expected, rel=1e-12)


def test_entropy_is_between_zero_and_log_k() -> None:
    h = entropy(random_dists(200, 5))
    assert h.shape == (200,)
    assert (h >= 0).all() and (h <= math.log(5) + 1e-12).all()


def test_kl_closed_form_and_asymmetry() -> None:
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    q = torch.tensor([0.9, 0.1], dtype=torch.float64)
    pq = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    qp = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert kl_divergence(p, q).item() == pytest.approx(pq, rel=1e-12)
    assert kl_divergence(q, p).item() == pytest.approx(qp, rel=1e-12)
    assert abs(pq - qp) > 0.1


def test_kl_nonnegative_and_zero_on_equal() -> None:
    p, q = random_dists(500, 6, seed=1), random_dists(500, 6, seed=2)
    assert (kl_divergence(p, q) >= 0).all()
    assert (kl_divergence(p, p) == 0).all()


def test_cross_entropy_is_entropy_plus_kl() -> None:
    p, q = random_dists(100, 7, seed=3), random_dists(100, 7, seed=4)
    torch.testing.assert_close(cross_entropy(p, q), entropy(p) + kl_divergence(p, q))
    torch.testing.assert_close(cross_entropy(p, p), entropy(p))


def test_cross_entropy_of_one_hot_is_negative_log_likelihood() -> None:
    q = random_dists(10, 4, seed=5)
    labels = torch.arange(10) % 4
    one_hot = torch.nn.functional.one_hot(labels, 4).double()
    nll = -q.log().gather(1, labels[:, None]).squeeze(1)
    torch.testing.assert_close(cross_entropy(one_hot, q), nll)


def test_zero_probabilities() -> None:
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.5, 0.0, 0.5])
    assert kl_divergence(p, q).item() == math.inf
    assert cross_entropy(p, q).item() == math.inf
    # 0 * log(0 / q) = 0: q may be zero where p is zero
    r = torch.tensor([0.25, 0.75, 0.0])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, r).item() == pytest.approx(expected, rel=1e-6)
    assert math.isfinite(js_divergence(p, q).item())


def test_gradients_finite_at_zero_entries() -> None:
    p = torch.tensor([0.5, 0.5, 0.0], requires_grad=True)
    q = torch.tensor([0.25, 0.25, 0.5], requires_grad=True)
    (entropy(p) + kl_divergence(p, q) + cross_entropy(p, q)).backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_js_properties() -> None:
    p, q = random_dists(300, 5, seed=6), random_dists(300, 5, seed=7)
    js = js_divergence(p, q)
    torch.testing.assert_close(js, js_divergence(q, p))
    assert (js >= 0).all() and (js <= LOG2).all()
    disjoint = js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert disjoint.item() == pytest.approx(LOG2, rel=1e-6)
    assert js_divergence(p, p).abs().max().item() == 0.0


def test_batch_broadcasting() -> None:
    p = random_dists(3, 4)
    q = random_dists(1, 4, seed=9)[0]
    assert kl_divergence(p, q).shape == (3,)
    torch.testing.assert_close(kl_divergence(p, q), kl_divergence(p, q.expand(3, 4)))
    assert js_divergence(q, p).shape == (3,)
    assert cross_entropy(q, p).shape == (3,)


# ---------------------------------------------------------------------------
# input validation


@pytest.mark.parametrize("fn", [kl_divergence, cross_entropy, js_divergence])
def test_pair_errors(fn) -> None:
    p = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="same number of outcomes"):
        fn(p, torch.tensor([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="do not broadcast"):
        fn(random_dists(2, 3), random_dists(4, 3))
    with pytest.raises(ValueError, match="negative"):
        fn(p, torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match="does not sum to 1"):
        fn(torch.tensor([0.5, 0.6]), p)
    with pytest.raises(ValueError, match="floating-point"):
        fn(torch.tensor([0, 1]), p)


def test_single_distribution_errors() -> None:
    with pytest.raises(ValueError, match="torch.Tensor"):
        entropy([0.5, 0.5])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(\.\.\., K\)"):
        entropy(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., K\)"):
        entropy(torch.zeros(3, 0))
    with pytest.raises(ValueError, match="NaN"):
        entropy(torch.tensor([math.nan, 1.0]))
    with pytest.raises(ValueError, match="logits"):
        entropy(torch.tensor([2.0, -1.0]))


def test_softmax_outputs_pass_in_float32() -> None:
    logits = torch.randn(64, 1000, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits, -1)
    assert torch.isfinite(entropy(p)).all()


# ---------------------------------------------------------------------------
# Gaussian KL


def test_gaussian_kl_standard_normal_prior() -> None:
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).tolist() == [0.0, 0.0]
    mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    expected = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)


def test_gaussian_kl_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    lv_q, lv_p = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    D = torch.distributions
    q = D.Independent(D.Normal(mu_q, (0.5 * lv_q).exp()), 1)
    p = D.Independent(D.Normal(mu_p, (0.5 * lv_p).exp()), 1)
    torch.testing.assert_close(
        gaussian_kl(mu_q, lv_q, mu_p, lv_p), D.kl_divergence(q, p)
    )
    # the general path with p = N(0, I) agrees with the closed form
    torch.testing.assert_close(
        gaussian_kl(mu_q, lv_q, torch.zeros(4), torch.zeros(4)),
        gaussian_kl(mu_q, lv_q),
    )


def test_gaussian_kl_one_prior_argument_and_broadcast() -> None:
    mu, lv = torch.randn(3, 2), torch.randn(3, 2)
    shifted = torch.tensor([1.0, -1.0])
    kl = gaussian_kl(mu, lv, mu_p=shifted)
    assert kl.shape == (3,)
    torch.testing.assert_close(kl, gaussian_kl(mu - shifted, lv))
    wide = torch.full((2,), math.log(4.0))
    torch.testing.assert_close(
        gaussian_kl(mu, lv, logvar_p=wide),
        gaussian_kl(mu, lv, torch.zeros(3, 2), wide.expand(3, 2)),
    )


def test_gaussian_kl_logvar_extremes() -> None:
    # a very narrow q: KL = (-logvar - 1) / 2 + tiny
    kl = gaussian_kl(torch.zeros(1, 1), torch.full((1, 1), -80.0))
    assert kl.item() == pytest.approx(39.5, rel=1e-6)
    # a very wide q: finite while exp(logvar) fits float32
    kl = gaussian_kl(torch.zeros(1, 1), torch.full((1, 1), 80.0))
    assert kl.item() == pytest.approx(0.5 * (math.exp(80.0) - 81.0), rel=1e-5)
    # equal huge variances cancel instead of overflowing
    big = torch.full((1, 3), 200.0)
    assert gaussian_kl(torch.zeros(1, 3), big, torch.zeros(3), big).item() == 0.0
    # beyond float32's range the KL is honestly infinite, never NaN
    assert gaussian_kl(torch.zeros(1, 1), torch.full((1, 1), 200.0)).item() == (
        math.inf
    )


def test_gaussian_kl_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="floating-point"):
        gaussian_kl(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scalar"):
        gaussian_kl(torch.tensor(0.0), torch.tensor(0.0))
    with pytest.raises(ValueError, match="torch.Tensor"):
        gaussian_kl(torch.zeros(2), [0.0, 0.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must broadcast"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="must broadcast"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), None, torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match="logvar_p"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), None, torch.zeros(3).int())


def test_gaussian_kl_gradient_is_the_textbook_one() -> None:
    mu = torch.tensor([[0.3, -1.2]], requires_grad=True)
    logvar = torch.tensor([[0.4, -0.7]], requires_grad=True)
    gaussian_kl(mu, logvar).sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * (logvar.detach().exp() - 1))
