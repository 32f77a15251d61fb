"""Scaled dot-product attention, masks, positions and multi-head self-attention.

The pieces of a Transformer block that the attention chapter builds by hand
(``notebooks/02_math/attention.ipynb``) and the GPT chapter reuses:

    out, weights = scaled_dot_product_attention(q, k, v, mask=causal_mask(T))
    x = x + sinusoidal_positions(T, d_model)
    mhsa = MultiHeadSelfAttention(AttentionConfig(d_model=64, n_heads=4, causal=True))

Masks follow one convention everywhere: a boolean tensor where ``True`` means
"this query may attend to this key" (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AttentionConfig",
    "MultiHeadSelfAttention",
    "causal_mask",
    "merge_heads",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
    "split_heads",
]


def _check_floating(name: str, x: object, min_dim: int) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions, got shape "
            f"{tuple(x.shape)}"
        )


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``softmax(q k^T / sqrt(d_k)) v``, written out so the weights can be seen.

    Args:
        q: queries ``(..., T_q, d_k)``.
        k: keys ``(..., T_k, d_k)``.
        v: values ``(..., T_k, d_v)``. The leading ``...`` dimensions of q, k
            and v must broadcast against each other; all three share one dtype.
        mask: optional boolean tensor broadcastable to ``(..., T_q, T_k)``;
            ``True`` where a query may attend to a key. Every query must be
            allowed at least one key.

    Returns:
        ``(out, weights)``: ``out`` is ``(..., T_q, d_v)``; ``weights`` is
        ``(..., T_q, T_k)``, each row a probability distribution over the keys.

    Raises:
        ValueError: a non-tensor or non-floating input, mismatched dtypes or
            feature sizes, batch dimensions that do not broadcast, a mask that is
            not boolean or not broadcastable, or a query with no key to attend to.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        _check_floating(name, x, 2)
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(
            f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same feature size d_k, got q {tuple(q.shape)} "
            f"and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions T_k, got k "
            f"{tuple(k.shape)} and v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError as err:
        raise ValueError(
            f"the batch dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
            f"v {tuple(v.shape)} do not broadcast"
        ) from err
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a boolean tensor, got {got}")
        target = (*batch, q.shape[-2], k.shape[-2])
        try:
            torch.broadcast_shapes(mask.shape, target)
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the "
                f"attention scores {target}"
            ) from err
        if not bool(mask.any(dim=-1).all()):
            raise ValueError(
                "every query must be allowed to attend to at least one key; "
                "the mask has a row that is all False"
            )
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def causal_mask(t: int, device: torch.device | str | None = None) -> Tensor:
    """The ``(t, t)`` boolean mask of a left-to-right model.

    Entry ``[i, j]`` is ``True`` when position ``i`` may attend to position ``j``,
    that is when ``j <= i`` (lower triangle, diagonal included).

    Raises:
        ValueError: ``t`` is not a positive integer.
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a positive int, got {t!r}")
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def sinusoidal_positions(t: int, d: int, base: float = 10000.0) -> Tensor:
    """The sinusoidal position encodings of Vaswani et al. (2017), ``(t, d)``.

    ``P[pos, 2i] = sin(pos / base^(2i/d))`` and
    ``P[pos, 2i+1] = cos(pos / base^(2i/d))``, float32, values in [-1, 1].

    Raises:
        ValueError: ``t`` or ``d`` is not a positive integer, ``d`` is odd, or
            ``base <= 1``.
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be a positive int, got {t!r}")
    if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2:
        raise ValueError(f"d must be a positive even int, got {d!r}")
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base!r}")
    pos = torch.arange(t, dtype=torch.float64)[:, None]
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = pos * freq  # (t, d/2)
    out = torch.empty(t, d, dtype=torch.float64)
    out[:, 0::2] = torch.sin(angles)
    out[:, 1::2] = torch.cos(angles)
    return out.float()


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(B, T, H * d_head) -> (B, H, T, d_head)``.

    Raises:
        ValueError: ``x`` is not 3-D or its last size is not divisible by
            ``n_heads``.
    """
    if x.dim() != 3 or n_heads < 1 or x.shape[-1] % n_heads:
        raise ValueError(
            f"x must be (B, T, C) with C divisible by n_heads={n_heads}, "
            f"got shape {tuple(x.shape)}"
        )
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, T, d_head) -> (B, T, H * d_head)``, the inverse of ``split_heads``.

    Raises:
        ValueError: ``x`` is not 4-D.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, H, T, d_head), got shape {tuple(x.shape)}")
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


@dataclass(frozen=True)
class AttentionConfig:
    """Multi-head self-attention: model width, number of heads, causal or not.

    Raises:
        ValueError: non-positive sizes, or ``d_model`` not divisible by
            ``n_heads``.
    """

    d_model: int
    n_heads: int
    causal: bool = False

    def __post_init__(self) -> None:
        if self.d_model < 1 or self.n_heads < 1:
            raise ValueError(
                f"d_model and n_heads must be positive, got {self.d_model} and "
                f"{self.n_heads}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}"
            )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al., 2017, section 3.2.2).

    One linear map produces queries, keys and values for all heads at once;
    each head attends in its own ``d_head = d_model / n_heads`` subspace; the
    heads are concatenated and mixed by an output projection.

    ``forward`` uses PyTorch's fused kernel (fast); ``attend`` runs the written-out
    :func:`scaled_dot_product_attention` and also returns the weights, for
    plotting. Both give the same output.
    """

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.config = config
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if not isinstance(x, Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, T, d_model), got {shape}")
        if x.shape[-1] != self.config.d_model:
            raise ValueError(
                f"x must have d_model={self.config.d_model} features, got shape "
                f"{tuple(x.shape)}"
            )
        if x.dtype != self.qkv.weight.dtype:
            raise ValueError(
                f"x has dtype {x.dtype} but the module's weights are "
                f"{self.qkv.weight.dtype}; convert one of them"
            )
        q, k, v = self.qkv(x).split(self.config.d_model, dim=-1)
        h = self.config.n_heads
        return split_heads(q, h), split_heads(k, h), split_heads(v, h)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, T, d_model) -> (B, T, d_model)``.

        Raises:
            ValueError: ``x`` is not 3-D, has the wrong width or dtype.
        """
        q, k, v = self._heads(x)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.config.causal)
        return self.proj(merge_heads(out))

    def attend(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Like ``forward`` but written out; returns ``(out, weights)``.

        ``out`` is ``(B, T, d_model)``, ``weights`` is ``(B, H, T, T)``.

        Raises:
            ValueError: as for ``forward``.
        """
        q, k, v = self._heads(x)
        mask = causal_mask(x.shape[1], x.device) if self.config.causal else None
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.proj(merge_heads(out)), weights
