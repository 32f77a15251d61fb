"""Milestones of generative AI and published model sizes, as small cited tables.

Every row carries the BibTeX key (in ``book/*.bib``) of the paper or official
report that states it. :data:`MODEL_SIZES` holds only numbers those sources
state; where a source does not state the number of training tokens or the
training compute, the field is ``None`` rather than an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

__all__ = [
    "KINDS",
    "MILESTONES",
    "MODEL_SIZES",
    "Milestone",
    "ModelSize",
    "fit_power_law",
    "plot_model_sizes",
    "plot_timeline",
]

#: Lanes of the timeline, bottom to top.
KINDS = (
    "autoencoder / VAE",
    "GAN",
    "flow / diffusion",
    "sequence / Transformer",
    "language model",
    "multimodal",
)


@dataclass(frozen=True)
class Milestone:
    """One step in the history: ``year`` of the first public version (often an
    arXiv preprint), a short ``name``, the BibTeX ``key`` and its lane ``kind``."""

    year: int
    name: str
    key: str
    kind: str

    def __post_init__(self) -> None:
        if not 1980 <= self.year <= 2100:
            raise ValueError(f"year must be between 1980 and 2100, got {self.year}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


MILESTONES: tuple[Milestone, ...] = (
    Milestone(2006, "deep autoencoders", "hinton2006reducing", "autoencoder / VAE"),
    Milestone(2013, "VAE", "kingma2014auto", "autoencoder / VAE"),
    Milestone(2014, "GAN", "goodfellow2014generative", "GAN"),
    Milestone(2014, "seq2seq", "sutskever2014sequence", "sequence / Transformer"),
    Milestone(2014, "attention", "bahdanau2015neural", "sequence / Transformer"),
    Milestone(2015, "diffusion models", "sohldickstein2015deep", "flow / diffusion"),
    Milestone(2015, "DCGAN", "radford2016unsupervised", "GAN"),
    Milestone(2016, "RealNVP flow", "dinh2017density", "flow / diffusion"),
    Milestone(2017, "Transformer", "vaswani2017attention", "sequence / Transformer"),
    Milestone(2018, "GPT", "radford2018improving", "language model"),
    Milestone(2018, "BERT", "devlin2019bert", "sequence / Transformer"),
    Milestone(2018, "StyleGAN", "karras2019style", "GAN"),
    Milestone(2019, "GPT-2", "radford2019language", "language model"),
    Milestone(2020, "scaling laws", "kaplan2020scaling", "language model"),
    Milestone(2020, "GPT-3", "brown2020language", "language model"),
    Milestone(2020, "DDPM", "ho2020denoising", "flow / diffusion"),
    Milestone(2021, "CLIP", "radford2021learning", "multimodal"),
    Milestone(2021, "DALL·E", "ramesh2021zero", "multimodal"),
    Milestone(2021, "latent diffusion", "rombach2022high", "flow / diffusion"),
    Milestone(2022, "Chinchilla", "hoffmann2022training", "language model"),
    Milestone(2022, "DALL·E 2", "ramesh2022hierarchical", "multimodal"),
    Milestone(2022, "InstructGPT", "ouyang2022training", "language model"),
    Milestone(2022, "ChatGPT", "openai2022chatgpt", "language model"),
    Milestone(2023, "LLaMA", "touvron2023llama", "language model"),
    Milestone(2023, "GPT-4", "openai2023gpt4", "multimodal"),
    Milestone(2024, "Llama 3", "dubey2024llama", "language model"),
    Milestone(2024, "DeepSeek-V3", "deepseekai2024deepseekv3", "language model"),
)


@dataclass(frozen=True)
class ModelSize:
    """A published model: ``params`` (total parameters), ``tokens`` (training
    tokens) and ``flops`` (training compute) as its source states them, else None."""

    name: str
    year: int
    params: float
    tokens: float | None
    modality: str
    key: str
    flops: float | None = None

    def __post_init__(self) -> None:
        for field in ("params", "tokens", "flops"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                raise ValueError(f"{self.name}: {field} must be positive, got {value}")


MODEL_SIZES: tuple[ModelSize, ...] = (
    ModelSize(
        "Transformer (big)", 2017, 213e6, None, "text", "vaswani2017attention", 2.3e19
    ),  # its Table 2: GPU time x sustained throughput, not 6ND
    ModelSize("BERT-Large", 2018, 340e6, None, "text", "devlin2019bert"),
    ModelSize("GPT-2", 2019, 1.542e9, None, "text", "radford2019language"),
    ModelSize("GPT-3", 2020, 175e9, 300e9, "text", "brown2020language", 3.14e23),
    ModelSize("DALL·E", 2021, 12e9, None, "image", "ramesh2021zero"),
    ModelSize("Gopher", 2021, 280e9, 300e9, "text", "rae2021scaling"),
    ModelSize("Chinchilla", 2022, 70e9, 1.4e12, "text", "hoffmann2022training"),
    ModelSize("PaLM", 2022, 540e9, 780e9, "text", "chowdhery2022palm"),
    ModelSize("LLaMA-65B", 2023, 65.2e9, 1.4e12, "text", "touvron2023llama"),
    ModelSize("Llama 2 70B", 2023, 70e9, 2e12, "text", "touvron2023llama2"),
    ModelSize("Llama 3 405B", 2024, 405e9, 15.6e12, "text", "dubey2024llama", 3.8e25),
    ModelSize(
        "DeepSeek-V3 (MoE)", 2024, 671e9, 14.8e12, "text", "deepseekai2024deepseekv3"
    ),
)


def plot_timeline(milestones: Sequence[Milestone] = MILESTONES) -> Figure:
    """Milestones as labelled points, one horizontal lane per kind of model."""
    fig, ax = plt.subplots(figsize=(11, 4.6))
    colors = plt.get_cmap("tab10")
    seen: dict[tuple[int, str], int] = {}
    for m in milestones:
        lane = KINDS.index(m.kind)
        stack = seen.get((m.year, m.kind), 0)  # several in one year and lane
        seen[(m.year, m.kind)] = stack + 1
        ax.scatter(m.year, lane, color=colors(lane), s=40, zorder=3)
        ax.annotate(
            m.name,
            (m.year, lane),
            xytext=(4, 6 + 11 * stack),
            textcoords="offset points",
            fontsize=8,
            rotation=0,
        )
    years = [m.year for m in milestones]
    ax.set_xlim(min(years) - 1, max(years) + 2.5)
    ax.set_ylim(-0.6, len(KINDS) - 0.1)
    ax.set_yticks(range(len(KINDS)), KINDS)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("year of first public version")
    ax.set_title("Milestones of generative AI")
    fig.tight_layout()
    return fig


def plot_model_sizes(models: Sequence[ModelSize] = MODEL_SIZES) -> Figure:
    """Parameters (and training tokens, where stated) against year, log scale."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for m in models:
        marker = "o" if m.modality == "text" else "s"
        ax.scatter(m.year, m.params, marker=marker, color="C0", zorder=3)
        ax.annotate(
            m.name,
            (m.year, m.params),
            xytext=(5, -3),
            textcoords="offset points",
            fontsize=8,
        )
        if m.tokens is not None:
            ax.scatter(m.year, m.tokens, marker="^", color="C1", zorder=3)
    ax.scatter([], [], marker="o", color="C0", label="parameters (text)")
    ax.scatter([], [], marker="s", color="C0", label="parameters (text-to-image)")
    ax.scatter([], [], marker="^", color="C1", label="training tokens (where stated)")
    ax.set_yscale("log")
    ax.set_xlim(min(m.year for m in models) - 0.5, max(m.year for m in models) + 1.5)
    ax.set_xlabel("year")
    ax.set_ylabel("count (log scale)")
    ax.set_title("Published model sizes and training tokens")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="major")
    fig.tight_layout()
    return fig


def fit_power_law(
    x: Sequence[float] | torch.Tensor, y: Sequence[float] | torch.Tensor
) -> tuple[float, float]:
    """Least-squares fit of ``y = a * x ** (-alpha)`` on log-log axes.

    Args:
        x, y: positive numbers of the same length (at least two).

    Returns:
        ``(a, alpha)``; ``alpha > 0`` means ``y`` falls as ``x`` grows.

    Raises:
        ValueError: fewer than two points, different lengths or non-positive values.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if x.shape != y.shape or x.dim() != 1 or len(x) < 2:
        raise ValueError("x and y must be 1-D of the same length, at least two points")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law needs positive x and y")
    lx, ly = x.log(), y.log()
    slope = ((lx - lx.mean()) * (ly - ly.mean())).sum() / (lx - lx.mean()).pow(2).sum()
    intercept = ly.mean() - slope * lx.mean()
    return math.exp(intercept.item()), -slope.item()
