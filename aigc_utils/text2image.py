"""Text to image on MNIST: captions computed from pixels, and a small latent
diffusion model (Rombach et al. 2022) that reads them.

Captions. :func:`attributes` measures two properties of each digit with plain
code: stroke **thickness** (``2 * ink / perimeter``, the width of a bar of ink;
the perimeter is the image's total variation, so blur barely moves it) and
**slant** (the shear ``-mu11 / mu02`` of the image moments; positive when the
top leans right). :class:`Terciles` cuts each attribute into terciles *per
digit* on the training set, and :func:`caption` writes the outer terciles as
words: ``"a thick seven, slanted right"``; the middle tercile gets no word.
:func:`tokenize` maps captions to ids in the small vocabulary :data:`VOCAB`.

Model. The three parts of latent diffusion, each small: an autoencoder from
``(1, 28, 28)`` images to a ``(4, 7, 7)`` latent (:class:`LatentAutoencoder`), a
two-layer Transformer text encoder (:class:`TextEncoder`) and a U-Net denoiser
(:class:`TextUNet`) that reads the encoded caption through cross-attention
(:class:`CrossAttention`). :class:`TextDiffusion` is the course's
:class:`~aigc_utils.diffusion.Diffusion` with captions for labels: words are
dropped at random in training, and the empty caption is the null condition of
classifier-free guidance (Ho and Salimans 2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import (
    AttentionConfig,
    MultiHeadSelfAttention,
    merge_heads,
    scaled_dot_product_attention,
    sinusoidal_positions,
    split_heads,
)
from .diffusion import Diffusion, NoiseSchedule, timestep_embedding
from .unet import ResBlock, output_head

__all__ = [
    "HELD_OUT",
    "VOCAB",
    "AELoss",
    "CrossAttention",
    "LatentAutoencoder",
    "LatentAutoencoderConfig",
    "Terciles",
    "TextDiffusion",
    "TextEncoder",
    "TextEncoderConfig",
    "TextUNet",
    "TextUNetConfig",
    "attribute_accuracy",
    "attributes",
    "caption",
    "caption_tokens",
    "decode_tokens",
    "held_out",
    "null_tokens",
    "tokenize",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four",
               "five", "six", "seven", "eight", "nine")  # fmt: skip
VOCAB = ("<pad>", "<s>", "a", "thin", "thick", *DIGIT_WORDS, "slanted", "left", "right")
PAD, START = 0, 1
MAX_TOKENS = 6  # <s> a thick seven slanted right
_ID = {w: i for i, w in enumerate(VOCAB)}
#: Combinations removed from training: (digit, attribute, tercile).
HELD_OUT = ((4, "thickness", 0), (7, "slant", 0))  # thin fours, sevens slanted left


# ---------------------------------------------------------------------------
# Attributes and captions


def _check_images(images: object) -> Tensor:
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor (B, 1, 28, 28)")
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must be (B, 1, 28, 28), got {tuple(images.shape)}")
    if len(images) and (images.min() < 0 or images.max() > 1):
        raise ValueError("images must be in [0, 1]")
    return images


def attributes(images: Tensor) -> dict[str, Tensor]:
    """Thickness and slant of each digit, computed from its pixels.

    ``thickness = 2 * ink / perimeter`` with ``ink = sum(x)`` and the perimeter
    the isotropic total variation ``sum |grad x|``: a bar of width ``w`` and
    length ``L`` has ``ink = w L`` and perimeter about ``2 (w + L)``, hence
    thickness about ``w`` for long bars. ``slant = -mu11 / mu02``, the shear
    ``dx/dy`` of the ink's best-fitting line (image ``y`` points down, so the
    sign is flipped: positive means the top leans right).

    Args:
        images: ``(B, 1, 28, 28)`` in [0, 1], ink bright.

    Returns:
        ``{"thickness": (B,), "slant": (B,)}``, float32.

    Raises:
        TypeError: not a floating-point tensor.
        ValueError: wrong shape, values outside [0, 1], or a blank image.
    """
    x = _check_images(images)[:, 0].double()
    ink = x.sum((1, 2))
    if len(x) and ink.min() <= 0:
        raise ValueError("a blank image has no thickness or slant")
    p = F.pad(x, (1, 1, 1, 1))  # so that ink at the border has an edge
    dx = p[:, :-1, 1:] - p[:, :-1, :-1]
    dy = p[:, 1:, :-1] - p[:, :-1, :-1]
    perimeter = (dx.pow(2) + dy.pow(2)).sqrt().sum((1, 2))
    rows = torch.arange(28, dtype=x.dtype)[None, :, None]
    cols = torch.arange(28, dtype=x.dtype)[None, None, :]
    ybar = (x * rows).sum((1, 2)) / ink
    xbar = (x * cols).sum((1, 2)) / ink
    dyc, dxc = rows - ybar[:, None, None], cols - xbar[:, None, None]
    mu11 = (x * dxc * dyc).sum((1, 2))
    mu02 = (x * dyc.pow(2)).sum((1, 2)).clamp(min=1e-9)
    return {"thickness": (2 * ink / perimeter).float(), "slant": (-mu11 / mu02).float()}


def _check_digits(digits: Tensor, n: int) -> Tensor:
    if not isinstance(digits, Tensor) or digits.dtype.is_floating_point:
        raise TypeError("digits must be an integer tensor (N,)")
    if digits.shape != (n,):
        raise ValueError(f"digits must have shape ({n},), got {tuple(digits.shape)}")
    if n and (digits.min() < 0 or digits.max() > 9):
        raise ValueError("digits must be in 0..9")
    return digits.long()


@dataclass(frozen=True)
class Terciles:
    """Per-digit tercile thresholds of each attribute: ``{name: (10, 2)}``,
    the 1/3 and 2/3 quantiles of that digit's training images."""

    thresholds: dict[str, Tensor]

    @classmethod
    def fit(cls, images: Tensor, digits: Tensor) -> Terciles:
        """Thresholds from training ``images (N, 1, 28, 28)`` and ``digits (N,)``.

        Raises:
            ValueError: fewer than 3 images of some digit (and as
                :func:`attributes`).
        """
        digits = _check_digits(digits, len(images))
        counts = torch.bincount(digits, minlength=10)
        if counts.min() < 3:
            raise ValueError(
                f"need >= 3 images of each digit, got counts {counts.tolist()}"
            )
        q = torch.tensor([1 / 3, 2 / 3])
        out = {}
        for name, v in attributes(images).items():
            out[name] = torch.stack(
                [torch.quantile(v[digits == d], q) for d in range(10)]
            )
        return cls(out)

    def levels(self, images: Tensor, digits: Tensor) -> dict[str, Tensor]:
        """Tercile of each image within its digit: ``{name: (N,)}`` in
        {0, 1, 2} (0: thin / slanted left, 2: thick / slanted right)."""
        digits = _check_digits(digits, len(images))
        out = {}
        for name, v in attributes(images).items():
            lo, hi = self.thresholds[name][digits].unbind(1)
            out[name] = (v > lo).long() + (v > hi).long()
        return out


def caption(digit: int, thickness: int = 1, slant: int = 1) -> str:
    """The caption of a digit with thickness and slant terciles in {0, 1, 2};
    the middle tercile (1) gets no word: ``caption(7, 2, 2)`` is
    ``"a thick seven, slanted right"``, ``caption(4)`` is ``"a four"``.

    Raises:
        ValueError: a digit outside 0..9 or a tercile outside {0, 1, 2}.
    """
    if digit not in range(10) or thickness not in (0, 1, 2) or slant not in (0, 1, 2):
        raise ValueError(
            "need digit in 0..9 and terciles in 0, 1, 2, got "
            f"{digit}, {thickness}, {slant}"
        )
    text = " ".join(["a", *(("thin",), (), ("thick",))[thickness], DIGIT_WORDS[digit]])
    return text + (", slanted left", "", ", slanted right")[slant]


def tokenize(texts: str | Sequence[str], length: int = MAX_TOKENS) -> Tensor:
    """Token ids ``(B, length)``: ``<s>``, the caption's words, then ``<pad>``.

    Lower-cases and ignores commas; ``""`` is the empty (null) caption.

    Raises:
        ValueError: a word outside :data:`VOCAB`, or more than ``length - 1`` words.
    """
    if isinstance(texts, str):
        texts = [texts]
    out = torch.full((len(texts), length), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        words = text.lower().replace(",", " ").split()
        unknown = [w for w in words if w not in _ID or _ID[w] <= START]
        if unknown:
            raise ValueError(
                f"words not in the vocabulary: {unknown}; known: {VOCAB[2:]}"
            )
        if len(words) > length - 1:
            raise ValueError(f"{text!r} has {len(words)} words; at most {length - 1}")
        out[i, : len(words) + 1] = torch.tensor([START] + [_ID[w] for w in words])
    return out


def decode_tokens(tokens: Tensor) -> list[str]:
    """The words of each row of ``tokens (B, L)``, without ``<s>`` and padding."""
    _check_tokens(tokens)
    return [" ".join(VOCAB[i] for i in row if i > START) for row in tokens.tolist()]


def null_tokens(n: int, length: int = MAX_TOKENS) -> Tensor:
    """``n`` empty captions ``(n, length)``: the null condition of guidance."""
    return tokenize([""] * n, length)


def _compact(tokens: Tensor) -> Tensor:
    """Move padding to the end of each row, keeping the words' order."""
    order = (tokens == PAD).long().argsort(dim=1, stable=True)
    return tokens.gather(1, order)


def caption_tokens(digits: Tensor, thickness: Tensor, slant: Tensor) -> Tensor:
    """:func:`tokenize` of :func:`caption` for whole batches, without strings.

    Args:
        digits, thickness, slant: ``(B,)`` integers (terciles in {0, 1, 2}).

    Returns:
        ``(B, MAX_TOKENS)`` ids.
    """
    digits = _check_digits(digits, len(digits))
    if thickness.shape != digits.shape or slant.shape != digits.shape:
        raise ValueError("digits, thickness and slant must have the same shape (B,)")
    if len(digits) and not (thickness.min() >= 0 and thickness.max() <= 2 and
                            slant.min() >= 0 and slant.max() <= 2):  # fmt: skip
        raise ValueError("terciles must be in 0, 1, 2")
    pad = torch.full_like(digits, PAD)
    thick_word = torch.tensor([_ID["thin"], PAD, _ID["thick"]])[thickness]
    slant_word = torch.tensor([_ID["left"], PAD, _ID["right"]])[slant]
    slanted = torch.where(slant == 1, pad, torch.full_like(digits, _ID["slanted"]))
    slots = [torch.full_like(digits, START), torch.full_like(digits, _ID["a"]),
             thick_word, digits + _ID["zero"], slanted, slant_word]  # fmt: skip
    return _compact(torch.stack(slots, 1))


def held_out(digits: Tensor, levels: dict[str, Tensor]) -> Tensor:
    """``(N,)`` bool: images of a :data:`HELD_OUT` combination (a thin four, a
    seven slanted left), removed from the training set."""
    out = torch.zeros_like(digits, dtype=torch.bool)
    for digit, name, level in HELD_OUT:
        out |= (digits == digit) & (levels[name] == level)
    return out


@torch.no_grad()
def attribute_accuracy(
    images: Tensor,
    digits: Tensor,
    thickness: Tensor,
    slant: Tensor,
    terciles: Terciles,
    evaluator: nn.Module | None = None,
) -> dict[str, float]:
    """Score samples against the captions that asked for them, with the same
    code that wrote the captions.

    A sample asked to be "thin" must land in its digit's bottom tercile of the
    training set, "thick" in the top one (likewise left and right slant); a
    middle tercile (1) asks nothing and is not scored. The digit is the one
    the evaluator reads (the requested digit is used to pick the terciles).

    Args:
        images: samples ``(N, 1, 28, 28)`` in [0, 1].
        digits, thickness, slant: the requests ``(N,)``.
        evaluator: the course's MNIST classifier, for the digit accuracy.

    Returns:
        ``{"digit", "thickness", "slant", "all"}`` (shares in [0, 1]); ``all``
        means digit and every requested attribute right. Keys without any
        request (or ``digit`` without an evaluator) are left out.
    """
    digits = _check_digits(digits, len(images))
    got = terciles.levels(images, digits)
    ok = torch.ones(len(images), dtype=torch.bool)
    out: dict[str, float] = {}
    if evaluator is not None:
        device = next(evaluator.parameters()).device
        pred = torch.cat(
            [evaluator(x.to(device)).argmax(1).cpu() for x in images.split(1000)]
        )
        right = pred == digits
        out["digit"], ok = right.double().mean().item(), ok & right
    for name, want in (("thickness", thickness), ("slant", slant)):
        asked = want != 1
        right = got[name] == want
        if asked.any():
            out[name] = right[asked].double().mean().item()
        ok &= right | ~asked
    out["all"] = ok.double().mean().item()
    return out


# ---------------------------------------------------------------------------
# The autoencoder


@dataclass(frozen=True)
class LatentAutoencoderConfig:
    """Sizes of :class:`LatentAutoencoder`: 28 -> 14 -> 7 pixels with
    ``channels``, then ``latent_channels`` maps of 7x7. ``noise`` is the
    standard deviation of the Gaussian added to the latent in training and
    ``kl_weight`` the weight of ``mean(z^2) / 2``: together a VAE with a fixed
    posterior variance, so the decoder tolerates small errors in the latent."""

    channels: tuple[int, int] = (32, 64)
    latent_channels: int = 4
    noise: float = 0.1
    kl_weight: float = 1e-3


class AELoss(NamedTuple):
    total: Tensor
    recon: Tensor
    kl: Tensor


class LatentAutoencoder(nn.Module):
    """Images ``(B, 1, 28, 28)`` in [0, 1] <-> latents ``(B, C, 7, 7)``.

    ``encode`` / ``decode`` are the raw maps; ``to_latent`` / ``from_latent``
    include the scale factor (set by :meth:`fit_scale`) that gives the
    diffusion model latents of unit variance, as Stable Diffusion does.
    """

    def __init__(
        self, config: LatentAutoencoderConfig = LatentAutoencoderConfig()
    ) -> None:
        super().__init__()
        self.config = c = config
        c1, c2 = c.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.SiLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(c2, c.latent_channels, 3, padding=1),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Conv2d(c.latent_channels, c2, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(c1, 1, 4, 2, 1),
        )  # fmt: skip
        self.register_buffer("scale", torch.ones(()))

    def encode(self, x: Tensor) -> Tensor:
        """``(B, 1, 28, 28)`` in [0, 1] -> ``(B, C, 7, 7)``."""
        return self.encoder(_check_images(x))

    def decode(self, z: Tensor) -> Tensor:
        """``(B, C, 7, 7)`` -> Bernoulli logits ``(B, 1, 28, 28)``."""
        if z.dim() != 4 or z.shape[1:] != (self.config.latent_channels, 7, 7):
            raise ValueError(
                f"z must be (B, {self.config.latent_channels}, 7, 7), "
                f"got {tuple(z.shape)}"
            )
        return self.decoder(z)

    def loss(self, batch: Tensor | tuple[Tensor, ...]) -> AELoss:
        """Bernoulli reconstruction (mean over pixels) plus the latent penalty."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        z = self.encode(x)
        logits = self.decode(z + self.config.noise * torch.randn_like(z))
        recon = F.binary_cross_entropy_with_logits(logits, x)
        kl = 0.5 * z.pow(2).mean()
        return AELoss(recon + self.config.kl_weight * kl, recon, kl)

    @torch.no_grad()
    def fit_scale(self, x: Tensor) -> float:
        """Set ``scale = 1 / std(encode(x))`` and return it."""
        z = torch.cat([self.encode(b) for b in x.split(1000)])
        self.scale.fill_(1 / z.std().item())
        return self.scale.item()

    @torch.no_grad()
    def to_latent(self, x: Tensor) -> Tensor:
        """Scaled latents ``(B, C, 7, 7)`` of images in [0, 1]."""
        return torch.cat([self.encode(b) for b in x.split(1000)]) * self.scale

    @torch.no_grad()
    def from_latent(self, z: Tensor) -> Tensor:
        """Images ``(B, 1, 28, 28)`` in [0, 1] from scaled latents."""
        return torch.sigmoid(self.decode(z / self.scale))


# ---------------------------------------------------------------------------
# Text encoder, cross-attention and the U-Net


def _check_tokens(tokens: object, length: int | None = None) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long:
        raise TypeError("tokens must be a LongTensor (B, L)")
    if tokens.dim() != 2 or (length is not None and tokens.shape[1] != length):
        raise ValueError(
            f"tokens must be (B, {length or 'L'}), got {tuple(tokens.shape)}"
        )
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= len(VOCAB)):
        raise ValueError(f"token ids must be in 0..{len(VOCAB) - 1}")
    if len(tokens) and not bool((tokens[:, 0] == START).all()):
        raise ValueError("every caption must start with <s> (use tokenize)")
    return tokens


@dataclass(frozen=True)
class TextEncoderConfig:
    """A small Transformer encoder over caption tokens."""

    vocab_size: int = len(VOCAB)
    max_len: int = MAX_TOKENS
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2


class MaskedSelfAttention(MultiHeadSelfAttention):
    """The course's multi-head self-attention with a key-padding mask."""

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:  # type: ignore[override]
        """``x (B, T, d)``, ``keep (B, T)`` True for real tokens -> ``(B, T, d)``."""
        q, k, v = self._heads(x)
        out, _ = scaled_dot_product_attention(q, k, v, keep[:, None, None, :])
        return self.proj(merge_heads(out))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, c: TextEncoderConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn = MaskedSelfAttention(AttentionConfig(c.d_model, c.n_heads))
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, 4 * c.d_model),
            nn.GELU(),
            nn.Linear(4 * c.d_model, c.d_model),
        )

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x), keep)
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    """Caption tokens ``(B, L)`` -> token vectors ``(B, L, d_model)`` and the
    mask ``keep (B, L)`` (True for real tokens), trained with the denoiser."""

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.register_buffer("pos", sinusoidal_positions(c.max_len, c.d_model))
        self.blocks = nn.ModuleList(EncoderBlock(c) for _ in range(c.n_layers))
        self.ln = nn.LayerNorm(c.d_model)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        tokens = _check_tokens(tokens, self.config.max_len)
        keep = tokens != PAD
        h = self.embed(tokens) + self.pos
        for block in self.blocks:
            h = block(h, keep)
        return self.ln(h), keep


class CrossAttention(nn.Module):
    """Image features read the caption: queries from each position of
    ``x (B, C, H, W)``, keys and values from the text ``(B, T, D)``; padded
    tokens are masked out; the result is added to ``x`` (a residual)."""

    def __init__(
        self, channels: int, text_dim: int, n_heads: int = 4, groups: int = 8
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(
                f"channels={channels} must be divisible by n_heads={n_heads}"
            )
        self.n_heads = n_heads
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(text_dim, channels)
        self.to_v = nn.Linear(text_dim, channels)
        self.proj = nn.Linear(channels, channels)

    def attend(self, x: Tensor, text: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        """``(out (B, C, H, W), weights (B, heads, H*W, T))``.

        Raises:
            ValueError: mismatched batch sizes or widths, a mask of the wrong
                shape, or a caption with every token masked.
        """
        b, c, hgt, wid = x.shape
        if text.dim() != 3 or text.shape[0] != b or keep.shape != text.shape[:2]:
            raise ValueError(
                f"need text (B, T, D) and keep (B, T) with B={b}, got "
                f"{tuple(text.shape)} and {tuple(keep.shape)}"
            )
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q = split_heads(self.to_q(h), self.n_heads)
        k = split_heads(self.to_k(text), self.n_heads)
        v = split_heads(self.to_v(text), self.n_heads)
        out, weights = scaled_dot_product_attention(q, k, v, keep[:, None, None, :])
        out = self.proj(merge_heads(out)).transpose(1, 2).reshape(b, c, hgt, wid)
        return x + out, weights

    def forward(self, x: Tensor, text: Tensor, keep: Tensor) -> Tensor:
        return self.attend(x, text, keep)[0]


@dataclass(frozen=True)
class TextUNetConfig:
    """A U-Net with one downsampling (7 -> 4 for latents, 28 -> 14 for pixels),
    a residual block and a cross-attention layer at each stage."""

    in_channels: int = 4
    channels: int = 64
    mults: tuple[int, int] = (1, 2)
    emb_dim: int = 64
    groups: int = 8
    n_heads: int = 4
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)


class TextUNet(nn.Module):
    """``eps_theta(z_t, t, caption)``: ``x (B, C, H, W)``, ``t (B,)``, tokens
    ``(B, L)`` -> noise ``(B, C, H, W)``.

    The caption enters twice: every stage's cross-attention reads the token
    vectors, and their masked mean is added to the time embedding.
    """

    def __init__(self, config: TextUNetConfig = TextUNetConfig()) -> None:
        super().__init__()
        self.config = c = config
        c1, c2 = (c.channels * m for m in c.mults)
        e, g, d = c.emb_dim, c.groups, c.text.d_model
        self.text = TextEncoder(c.text)
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.text_pool = nn.Linear(d, e)
        self.conv_in = nn.Conv2d(c.in_channels, c1, 3, padding=1)
        self.down, self.attn_down = (
            ResBlock(c1, c1, e, g),
            CrossAttention(c1, d, c.n_heads, g),
        )
        self.pool = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.mid, self.attn_mid = (
            ResBlock(c1, c2, e, g),
            CrossAttention(c2, d, c.n_heads, g),
        )
        self.up, self.attn_up = (
            ResBlock(c2 + c1, c1, e, g),
            CrossAttention(c1, d, c.n_heads, g),
        )
        self.out = output_head(c1, c.in_channels, g)

    def forward(self, x: Tensor, t: Tensor, tokens: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x must be (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if t.shape != x.shape[:1] or len(tokens) != len(x):
            raise ValueError(f"need t ({len(x)},) and tokens ({len(x)}, L)")
        text, keep = self.text(tokens)
        pooled = (text * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        emb = self.time_mlp(
            timestep_embedding(t, self.config.emb_dim)
        ) + self.text_pool(pooled)
        h1 = self.attn_down(self.down(self.conv_in(x), emb), text, keep)
        h = self.attn_mid(self.mid(self.pool(h1), emb), text, keep)
        h = F.interpolate(h, size=h1.shape[-2:], mode="nearest")
        h = self.attn_up(self.up(torch.cat([h, h1], 1), emb), text, keep)
        return self.out(h)


# ---------------------------------------------------------------------------
# Diffusion with captions


class TextDiffusion(Diffusion):
    """:class:`~aigc_utils.diffusion.Diffusion` whose labels are captions
    ``(B, L)`` of token ids; ``sample(n, shape, labels=tokens, guidance=w)``
    works unchanged, with the empty caption as the null condition.

    Args:
        word_dropout: share of words (not ``<s>``) dropped from each training
            caption, so the model learns what any subset of words means.
        caption_dropout: share of training captions replaced by the empty one.
    """

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        *,
        word_dropout: float = 0.3,
        caption_dropout: float = 0.1,
        min_snr_gamma: float | None = None,
    ) -> None:
        super().__init__(net, schedule, num_classes=len(VOCAB), label_dropout=0.0,
                         min_snr_gamma=min_snr_gamma)  # fmt: skip
        if not (0 <= word_dropout < 1 and 0 <= caption_dropout < 1):
            raise ValueError("word_dropout and caption_dropout must be in [0, 1)")
        self.word_dropout, self.caption_dropout = word_dropout, caption_dropout

    def _labels(self, y: Tensor | None, n: int) -> Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError(
                f"pass {n} captions as tokens (n, L); null_tokens(n) is empty"
            )
        if len(y) != n:
            raise ValueError(f"expected {n} captions, got {len(y)}")
        return _check_tokens(y)

    def drop_words(self, tokens: Tensor) -> Tensor:
        """Replace each word by padding with probability ``word_dropout`` and
        whole captions with probability ``caption_dropout``; compact."""
        tokens = _check_tokens(tokens)
        drop = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout
        drop |= (torch.rand(len(tokens), device=tokens.device) < self.caption_dropout)[
            :, None
        ]
        drop[:, 0] = False  # keep <s>
        return _compact(tokens.masked_fill(drop, PAD))

    def loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:  # type: ignore[override]
        """:meth:`Diffusion.loss` on ``(z0, tokens)`` after :meth:`drop_words`."""
        z0, tokens = batch
        return super().loss((z0, self.drop_words(tokens)))

    def predict_eps(
        self, x: Tensor, t: int, y: Tensor | None, guidance: float
    ) -> Tensor:
        """``eps(x, c) + w (eps(x, c) - eps(x, null))``, both passes in one batch."""
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        if y is None or guidance == 0:
            return self.net(x, tt, y)
        null = null_tokens(len(y), y.shape[1]).to(y.device)
        both = self.net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return cond + guidance * (cond - uncond)
