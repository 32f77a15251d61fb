"""2-D toy data and its two judges: shapes, closed-form geometry, and the
metrics' behaviour on samples whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_utils import toy2d


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ring_centers_lie_on_the_circle_equally_spaced() -> None:
    c = toy2d.ring_centers(8, radius=2.0)
    assert c.shape == (8, 2)
    torch.testing.assert_close(c.norm(dim=1), torch.full((8,), 2.0))
    gaps = (c - c.roll(1, dims=0)).norm(dim=1)
    torch.testing.assert_close(gaps, torch.full((8,), 4 * math.sin(math.pi / 8)))


def test_grid_centers_are_symmetric_and_spaced() -> None:
    c = toy2d.grid_centers(5, spacing=2.0)
    assert c.shape == (25, 2)
    torch.testing.assert_close(c.mean(0), torch.zeros(2))
    assert set(c[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


@pytest.mark.parametrize("make", [toy2d.ring, toy2d.grid, toy2d.two_moons])
def test_datasets_have_shape_and_are_seeded(make) -> None:
    a, b = make(500, generator=gen(1)), make(500, generator=gen(1))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, make(500, generator=gen(2)))


def test_ring_samples_stay_near_their_modes() -> None:
    x = toy2d.ring(4000, std=0.05, generator=gen())
    torch.testing.assert_close(
        x.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01, rtol=0
    )
    cov = toy2d.mode_coverage(x, toy2d.ring_centers(), std=0.05)
    assert cov.modes_covered == 8
    assert cov.high_quality > 0.98  # 3-sigma disc in 2-D holds 1 - e^{-4.5}
    assert int(cov.counts.sum()) == round(cov.high_quality * 4000)


def test_two_moons_without_noise_lie_on_unit_half_circles() -> None:
    x = toy2d.two_moons(1000, noise=0.0, generator=gen())
    off_upper = (x.norm(dim=1) - 1).abs()
    off_lower = ((x - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs()
    assert torch.minimum(off_upper, off_lower).max() < 1e-5
    assert (off_upper < 1e-5).float().mean() == pytest.approx(0.5, abs=0.05)


def test_mode_coverage_sees_a_collapsed_model() -> None:
    centers = toy2d.ring_centers()
    collapsed = centers[:1] + 0.05 * torch.randn(1000, 2, generator=gen())
    cov = toy2d.mode_coverage(collapsed, centers, std=0.05)
    assert cov.modes_covered == 1 and cov.counts[0] == cov.counts.sum()
    far = toy2d.mode_coverage(torch.full((100, 2), 10.0), centers, std=0.05)
    assert far.modes_covered == 0 and far.high_quality == 0.0
    assert int(far.counts.sum()) == 0


def test_mmd_is_near_zero_for_one_distribution_and_large_for_two() -> None:
    a = toy2d.ring(600, generator=gen(1))
    b = toy2d.ring(600, generator=gen(2))
    c = toy2d.grid(600, generator=gen(3))
    same, diff = toy2d.mmd_rbf(a, b), toy2d.mmd_rbf(a, c)
    assert abs(same) < 0.01 and diff > 0.1


def test_mmd_closed_form_for_single_points() -> None:
    # n = m = 2 identical pairs: the within-terms are k(0)=1 per bandwidth
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected = 2 - 2 * math.exp(-1 / 2)
    assert toy2d.mmd_rbf(x, y, bandwidths=[1.0]) == pytest.approx(expected)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: toy2d.ring(0), "positive integer"),
        (lambda: toy2d.ring(10, std=0.0), "std must be positive"),
        (lambda: toy2d.two_moons(10, noise=-1.0), "noise"),
        (
            lambda: toy2d.mode_coverage(torch.zeros(3), toy2d.ring_centers(), 0.1),
            "shape",
        ),
        (
            lambda: toy2d.mode_coverage(torch.zeros(3, 3), toy2d.ring_centers(), 0.1),
            "coordinates",
        ),
        (
            lambda: toy2d.mode_coverage(torch.zeros(3, 2), toy2d.ring_centers(), 0.0),
            "positive",
        ),
        (
            lambda: toy2d.mode_coverage(
                torch.tensor([[float("nan"), 0.0]]), toy2d.ring_centers(), 0.1
            ),
            "NaN",
        ),
        (
            lambda: toy2d.mode_coverage(
                torch.zeros(3, 2, dtype=torch.long), toy2d.ring_centers(), 0.1
            ),
            "floating",
        ),
        (lambda: toy2d.mmd_rbf(torch.zeros(1, 2), torch.zeros(3, 2)), "n >= 2"),
        (lambda: toy2d.mmd_rbf(torch.zeros(3, 2), torch.zeros(3, 3)), "columns"),
        (
            lambda: toy2d.mmd_rbf(torch.zeros(3, 2), torch.zeros(3, 2), [0.0]),
            "bandwidths",
        ),
    ],
)
def test_bad_input_is_rejected_clearly(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
