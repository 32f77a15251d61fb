"""Figures the chapters share: image grids and training curves.

Functions return the matplotlib ``Figure`` so a notebook can show, tweak or save it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .training import History


def image_grid(
    images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile images into one picture.

    Args:
        images: ``(B, H, W)``, ``(B, 1, H, W)`` or ``(B, 3, H, W)``, float.
        nrow: images per row.

    Returns:
        ``(H', W')`` for grey images or ``(H', W', 3)`` for colour, on the CPU.

    Raises:
        ValueError: wrong number of dimensions or channels, empty batch.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError("images must be a floating-point tensor")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            f"images must be (B, H, W) or (B, C, H, W) with C in (1, 3) and B > 0, "
            f"got shape {tuple(images.shape)}"
        )
    if nrow < 1:
        raise ValueError("nrow must be >= 1")
    b, c, h, w = images.shape
    ncol = min(nrow, b)
    nrows = math.ceil(b / ncol)
    grid = torch.full(
        (c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
        float(pad_value),
    )
    for i, img in enumerate(images.detach().float().cpu()):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = img
    return grid[0] if c == 1 else grid.permute(1, 2, 0)


def show_images(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    labels: Sequence[object] | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    scale: float = 1.0,
) -> Figure:
    """Show a batch of images as a grid, optionally with a label over each one.

    Args:
        images: as for :func:`image_grid`; values in ``value_range``
            (use ``(-1, 1)`` for tanh outputs).
        labels: one caption per image (then each image gets its own axes).
        scale: size multiplier of the figure.
    """
    lo, hi = value_range
    images = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if labels is None:
        grid = image_grid(images, nrow=nrow)
        fig, ax = plt.subplots(
            figsize=(scale * grid.shape[1] / 28 * 0.6, scale * grid.shape[0] / 28 * 0.6)
        )
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    else:
        if len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        ncol = min(nrow, len(images))
        nrows = math.ceil(len(images) / ncol)
        fig, axes = plt.subplots(
            nrows,
            ncol,
            figsize=(scale * 1.1 * ncol, scale * 1.3 * nrows),
            squeeze=False,
        )
        for ax in axes.flat:
            ax.axis("off")
        for ax, img, label in zip(axes.flat, images, labels):
            img = img if img.dim() == 2 else img.permute(1, 2, 0).squeeze(-1)
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(str(label), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(
    history: History,
    metrics: Sequence[str] = (),
    title: str | None = None,
    ylabel: str = "training loss",
) -> Figure:
    """Training loss against step, plus one panel per evaluation metric."""
    if not history.losses:
        raise ValueError("the history has no logged losses: nothing to plot")
    fig, axes = plt.subplots(
        1, 1 + len(metrics), figsize=(4.5 * (1 + len(metrics)), 3.2), squeeze=False
    )
    ax = axes[0, 0]
    ax.plot(history.steps, history.losses)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    for ax, name in zip(axes[0, 1:], metrics):
        steps, values = history.metric(name)
        ax.plot(steps, values, marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
