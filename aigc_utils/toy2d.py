"""Two-dimensional toy data and the two numbers that judge a model of it.

Every family in the course is first shown on points in the plane, where a reader
can see the whole distribution at once. The datasets here are the usual ones of
the GAN literature: a ring and a grid of Gaussians (Metz et al. 2017; Srivastava
et al. 2017) and two moons.

Two measurements:

* :func:`mode_coverage`, the mode-collapse test of Srivastava et al. (2017): a
  sample is *high quality* when it lies within ``n_std`` standard deviations of
  its nearest mode, and a mode is *covered* when at least ``min_share`` of the
  high-quality samples fall on it.
* :func:`mmd_rbf`, the unbiased squared maximum mean discrepancy of Gretton et
  al. (2012) with a sum of Gaussian kernels: near 0 when two samples come from
  the same distribution, whatever its shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

__all__ = [
    "ModeCoverage",
    "grid",
    "grid_centers",
    "mmd_rbf",
    "mode_coverage",
    "ring",
    "ring_centers",
    "two_moons",
]


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")


def _check_points(x: torch.Tensor, name: str, min_rows: int = 1) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (n, d)")
    if x.dim() != 2 or x.shape[0] < min_rows:
        raise ValueError(
            f"{name} must have shape (n, d) with n >= {min_rows}, got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``modes`` centres equally spaced on a circle: shape ``(modes, 2)``."""
    _check_n(modes)
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float32) / modes
    return radius * torch.stack([angle.cos(), angle.sin()], dim=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """The ``side * side`` centres of a square grid around 0: ``(side**2, 2)``."""
    _check_n(side)
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def _mixture(
    n: int, centers: torch.Tensor, std: float, generator: torch.Generator | None
) -> torch.Tensor:
    _check_n(n)
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    idx = torch.randint(len(centers), (n,), generator=generator)
    return centers[idx] + std * torch.randn(n, 2, generator=generator)


def ring(
    n: int,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points from an equal mixture of Gaussians on a ring: ``(n, 2)``."""
    return _mixture(n, ring_centers(modes, radius), std, generator)


def grid(
    n: int,
    side: int = 5,
    spacing: float = 2.0,
    std: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points from an equal mixture of Gaussians on a grid: ``(n, 2)``."""
    return _mixture(n, grid_centers(side, spacing), std, generator)


def two_moons(
    n: int, noise: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` points on two interleaved half circles plus Gaussian noise: ``(n, 2)``.

    The upper moon is centred at (0, 0), the lower one at (1, 0.5), both of
    radius 1, as in scikit-learn's ``make_moons``.
    """
    _check_n(n)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    t = math.pi * torch.rand(n, generator=generator)
    lower = torch.rand(n, generator=generator) < 0.5
    x = torch.where(lower, 1 - t.cos(), t.cos())
    y = torch.where(lower, 0.5 - t.sin(), t.sin())
    return torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)


class ModeCoverage(NamedTuple):
    """How a sample covers the modes of a mixture.

    modes_covered: modes that received at least ``min_share`` of the
        high-quality samples.
    high_quality: share of all samples within ``n_std`` stds of a mode.
    counts: ``(modes,)`` high-quality samples per mode.
    """

    modes_covered: int
    high_quality: float
    counts: torch.Tensor


def mode_coverage(
    samples: torch.Tensor,
    centers: torch.Tensor,
    std: float,
    n_std: float = 3.0,
    min_share: float = 0.01,
) -> ModeCoverage:
    """Count the modes a model covers and the share of its good samples.

    Args:
        samples: ``(n, 2)`` generated points.
        centers: ``(modes, 2)`` the mixture's centres, e.g. :func:`ring_centers`.
        std: the mixture components' standard deviation.
        n_std: a sample is high quality within ``n_std * std`` of its nearest mode.
        min_share: a mode is covered when it holds at least this share of the
            high-quality samples.

    Raises:
        ValueError: on wrong shapes, non-finite samples or a non-positive std.
    """
    _check_points(samples, "samples")
    _check_points(centers, "centers")
    if samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples have {samples.shape[1]} coordinates, centers {centers.shape[1]}"
        )
    if std <= 0 or n_std <= 0:
        raise ValueError("std and n_std must be positive")
    dist = torch.cdist(samples.float(), centers.float().to(samples.device))
    nearest, which = dist.min(dim=1)
    good = nearest <= n_std * std
    counts = torch.bincount(which[good].cpu(), minlength=len(centers))
    n_good = int(good.sum())
    covered = int((counts >= min_share * n_good).sum()) if n_good else 0
    return ModeCoverage(covered, n_good / len(samples), counts)


def mmd_rbf(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidths: Sequence[float] = (0.1, 0.3, 1.0, 3.0),
) -> float:
    """Unbiased squared MMD between samples ``x: (n, d)`` and ``y: (m, d)``.

    The kernel is a sum of Gaussians ``exp(-|a-b|^2 / (2 h^2))`` over the
    bandwidths ``h``, so both fine and coarse differences count. The unbiased
    estimate can be slightly negative when the two samples match.

    Raises:
        ValueError: on fewer than 2 rows, mismatched widths or a bandwidth <= 0.
    """
    _check_points(x, "x", min_rows=2)
    _check_points(y, "y", min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} columns, y has {y.shape[1]}")
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError("bandwidths must be a non-empty sequence of positive numbers")
    x, y = x.double(), y.double().to(x.device)

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    n, m = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())
