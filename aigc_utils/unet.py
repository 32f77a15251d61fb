"""A small class-conditional U-Net for 28×28 images: the noise predictor of DDPM.

The shape of Ho et al. (2020)'s network (Ronneberger et al. 2015's U-Net with
residual blocks and a timestep embedding), shrunk to run on a laptop CPU: two
downsamplings (28 → 14 → 7), one residual block per resolution on each side,
skip connections by concatenation, no attention. The label embedding is added
to the time embedding; label ``num_classes`` is the null label of
classifier-free guidance (Ho and Salimans 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .diffusion import timestep_embedding

__all__ = ["UNet", "UNetConfig"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`UNet`.

    Attributes:
        channels: base width; the three resolutions have ``channels * mults``.
        mults: width multipliers at 28, 14 and 7 pixels.
        num_classes: real labels (0 for an unconditional network).
        groups: GroupNorm groups.
    """

    in_channels: int = 1
    channels: int = 16
    mults: tuple[int, int, int] = (1, 2, 4)
    emb_dim: int = 64
    num_classes: int = 10
    groups: int = 8


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the embedding, GroupNorm-SiLU-conv, plus a skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


def output_head(channels: int, out_channels: int, groups: int) -> nn.Sequential:
    """GroupNorm, SiLU and a 3x3 convolution to ``out_channels``: the last layer
    of a noise-predicting U-Net. Its weights start at zero, so the untrained
    network predicts zero noise."""
    head = nn.Sequential(
        nn.GroupNorm(min(groups, channels), channels),
        nn.SiLU(),
        nn.Conv2d(channels, out_channels, 3, padding=1),
    )
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head


class UNet(nn.Module):
    """``eps_theta(x_t, t, y)``: images ``(B, C, 28, 28)``, timesteps ``(B,)``,
    labels ``(B,)`` in ``0..num_classes`` or ``None`` → noise ``(B, C, 28, 28)``."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = c = config
        c1, c2, c3 = (c.channels * m for m in c.mults)
        e, g = c.emb_dim, c.groups
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.label_emb = nn.Embedding(c.num_classes + 1, e) if c.num_classes else None
        self.conv_in = nn.Conv2d(c.in_channels, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, e, g)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)  # 28 -> 14
        self.down2 = ResBlock(c1, c2, e, g)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)  # 14 -> 7
        self.mid = ResBlock(c2, c3, e, g)
        self.up2 = ResBlock(c3 + c2, c2, e, g)
        self.up1 = ResBlock(c2 + c1, c1, e, g)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = output_head(c1, c.in_channels, g)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(f"x must be (B, C, 28, 28), got {tuple(x.shape)}")
        if t.shape != x.shape[:1]:
            raise ValueError(f"t must be ({len(x)},), got {tuple(t.shape)}")
        emb = self.time_mlp(timestep_embedding(t, self.config.emb_dim))
        if self.label_emb is not None:
            if y is None or y.shape != t.shape:
                raise ValueError(f"this UNet needs {len(x)} labels (B,), got {y!r:.40}")
            emb = emb + self.label_emb(y)
        h0 = self.conv_in(x)
        h1 = self.down1(h0, emb)  # 28
        h2 = self.down2(self.pool1(h1), emb)  # 14
        h = self.mid(self.pool2(h2), emb)  # 7
        h = self.up2(torch.cat([self.upsample(h), h2], 1), emb)  # 14
        h = self.up1(torch.cat([self.upsample(h), h1], 1), emb)  # 28
        return self.out(h)
