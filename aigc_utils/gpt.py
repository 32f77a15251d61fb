"""A tiny GPT (Radford et al. 2018, 2019), every piece visible, plus sampling rules.

The model of the text chapter (``notebooks/06_text/tiny_gpt.ipynb``)::

    cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    model = GPT(cfg)
    logits, loss = model(x, y)                  # x, y: (B, T) int64
    text_ids = model.generate(prompt, 200, temperature=0.8, top_k=20)

It is built on the attention of the mathematics chapter
(:mod:`aigc_utils.attention`): token and learned position embeddings, ``n_layer``
pre-norm blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))``, a final layer norm and
an output layer that shares its weights with the token embedding (weight tying,
Press & Wolf 2017). ``generate`` can reuse the keys and values of earlier
positions (a **key/value cache**); it gives the same tokens as recomputing every
position. The sampling rules (temperature, top-k, nucleus) live here too, so the
LSTM of :mod:`aigc_utils.text` samples with exactly the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc_utils.attention import AttentionConfig, MultiHeadSelfAttention, merge_heads

__all__ = [
    "GPT",
    "GPTConfig",
    "KVCache",
    "check_ids",
    "filter_logits",
    "sample_next",
    "with_loss",
]


# ---------------------------------------------------------------------------
# sampling rules


def filter_logits(
    logits: Tensor, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """Set the logits of tokens outside the top-k / nucleus to ``-inf``.

    Args:
        logits: ``(B, V)`` next-token logits.
        top_k: keep the ``top_k`` most likely tokens (ties at the boundary kept).
        top_p: keep the smallest set of most likely tokens whose probability
            reaches ``top_p`` (nucleus sampling, Holtzman et al. 2020); the most
            likely token is always kept.

    Raises:
        ValueError: ``top_k`` not a positive int or ``top_p`` outside (0, 1].
    """
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        k = min(top_k, logits.shape[-1])
        kth = logits.topk(k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
        drop_sorted = before >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row from ``softmax(logits / temperature)``.

    ``temperature=0`` means greedy decoding (the arg-max). Returns ``(B, 1)`` int64.

    Raises:
        ValueError: a negative temperature, or bad ``top_k``/``top_p``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(dim=-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(
            probs.device
        )
    return torch.multinomial(probs, 1, generator=generator)


def describe(x: object) -> str:
    """``"torch.int64 of shape (2, 3)"`` for a tensor, else the type's name: the
    "got ..." part of an error message."""
    if isinstance(x, Tensor):
        return f"{x.dtype} of shape {tuple(x.shape)}"
    return type(x).__name__


def check_ids(idx: object, vocab_size: int, name: str = "idx") -> Tensor:
    """Raise ``ValueError`` unless ``idx`` is a non-empty ``(B, T)`` int64 tensor of
    ids in ``0..vocab_size-1``; return it."""
    if not isinstance(idx, Tensor) or idx.dtype != torch.long or idx.dim() != 2:
        raise ValueError(
            f"{name} must be a (B, T) int64 tensor of token ids, got {describe(idx)}"
        )
    if idx.numel() == 0:
        raise ValueError(f"{name} is empty: give at least one token per row")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} has ids in [{lo}, {hi}], outside 0..{vocab_size - 1}")
    return idx


def with_loss(
    logits: Tensor, idx: Tensor, targets: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """``(logits, mean cross-entropy of targets in nats)``, or ``(logits, None)``
    without targets: what every language model's ``forward`` returns.

    Raises:
        ValueError: ``targets`` is not a tensor of the shape of ``idx``.
    """
    if targets is None:
        return logits, None
    if not isinstance(targets, Tensor) or targets.shape != idx.shape:
        got = tuple(targets.shape) if isinstance(targets, Tensor) else targets
        raise ValueError(
            f"targets must have the shape of idx {tuple(idx.shape)}, got {got}"
        )
    return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


# ---------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class GPTConfig:
    """A GPT's sizes: vocabulary, context length (``block_size``), depth, heads,
    width, dropout. ``causal=False`` lets every position see the whole window
    (a BERT-style encoder for the masked objective; it cannot ``generate``).

    Raises:
        ValueError: non-positive sizes, ``n_embd`` not divisible by ``n_head``,
            or dropout outside [0, 1).
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    causal: bool = True

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        for name in sizes:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.causal, bool):
            raise ValueError(f"causal must be True or False, got {self.causal!r}")


class KVCache:
    """The keys and values each layer has computed so far, ``(B, H, T, d_head)``."""

    def __init__(self, n_layer: int) -> None:
        self.layers: list[tuple[Tensor, Tensor] | None] = [None] * n_layer

    def __len__(self) -> int:
        """How many positions are cached."""
        first = self.layers[0]
        return 0 if first is None else first[0].shape[2]


class CausalSelfAttention(MultiHeadSelfAttention):
    """The mathematics chapter's multi-head attention with a causal mask, dropout
    and an optional key/value cache."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(
            AttentionConfig(config.n_embd, config.n_head, causal=config.causal)
        )
        self.dropout = config.dropout

    def forward(  # type: ignore[override]
        self, x: Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> Tensor:
        """``x: (B, T, C) -> (B, T, C)``; with a cache, ``x`` holds the new positions
        only and attends to the cached ones too."""
        q, k, v = self._heads(x)
        past = cache.layers[layer] if cache is not None else None
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        if cache is not None:
            cache.layers[layer] = (k, v)
        t_new, t_all = q.shape[2], k.shape[2]
        drop = self.dropout if self.training else 0.0
        if t_new == t_all:  # no past: the usual causal mask (or none)
            out = F.scaled_dot_product_attention(
                q, k, v, dropout_p=drop, is_causal=self.config.causal
            )
        else:  # new query i sits at position t_all - t_new + i
            mask = torch.ones(t_new, t_all, dtype=torch.bool, device=x.device)
            mask = mask.tril(diagonal=t_all - t_new)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=drop
            )
        return self.proj(merge_heads(out))


class Block(nn.Module):
    """One pre-norm Transformer block: ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self, x: Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, layer))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """A decoder-only Transformer language model.

    ``forward(idx, targets)`` returns ``(logits, loss)``: logits ``(B, T, V)`` for
    the token after each position, and the mean cross-entropy in nats per token
    when ``targets`` ``(B, T)`` are given (else ``None``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying
        self.apply(self._init_weights)
        # GPT-2's scaled init: each residual branch adds a little, n_layer of them
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Number of trainable parameters (the tied embedding counted once)."""
        return sum(p.numel() for p in self.parameters())

    def embed(self, idx: Tensor, start: int = 0) -> Tensor:
        """Token plus position embeddings, ``(B, T) -> (B, T, C)``; positions
        ``start .. start+T-1``.

        Raises:
            ValueError: bad ids, or positions beyond ``block_size``.
        """
        check_ids(idx, self.config.vocab_size)
        t = idx.shape[1]
        if start + t > self.config.block_size:
            raise ValueError(
                f"positions {start}..{start + t - 1} exceed the context of "
                f"block_size={self.config.block_size}; crop idx to its last "
                f"{self.config.block_size} tokens"
            )
        pos = torch.arange(start, start + t, device=idx.device)
        return self.drop(self.tok_emb(idx) + self.pos_emb(pos))

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``idx: (B, T)`` int64 -> ``(logits (B, T, V), loss or None)``.

        With a ``cache``, ``idx`` holds only the new positions; the cache is
        extended in place.

        Raises:
            ValueError: bad ids, too long a sequence, or targets of another shape.
        """
        x = self.embed(idx, start=len(cache) if cache is not None else 0)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        return with_loss(self.head(self.ln_f(x)), idx, targets)

    def loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        """Mean next-token cross-entropy (nats) of a batch ``(x, y)``."""
        return self(*batch)[1]  # type: ignore[return-value]

    @torch.no_grad()
    def attention_maps(self, idx: Tensor) -> list[Tensor]:
        """Every layer's attention weights, a list of ``(B, H, T, T)`` tensors,
        computed with the written-out attention of the mathematics chapter."""
        x, maps = self.embed(idx), []
        for block in self.blocks:
            out, weights = block.attn.attend(block.ln1(x))
            maps.append(weights)
            x = x + out
            x = x + block.mlp(block.ln2(x))
        return maps

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend ``idx`` ``(B, T)`` by ``max_new_tokens`` sampled tokens.

        The model sees the last ``block_size`` tokens. With ``use_cache`` it feeds
        only the newest token and reuses cached keys and values while the whole
        sequence fits in the context; past that, learned absolute positions shift
        at every step, so it recomputes the window (exactly what no cache does).

        Returns:
            ``(B, T + max_new_tokens)`` int64.

        Raises:
            ValueError: bad ids, negative ``max_new_tokens``, bad sampling options,
                or a non-causal model.
        """
        if not self.config.causal:
            raise ValueError(
                "a non-causal (masked) model cannot generate left to right"
            )
        check_ids(idx, self.config.vocab_size)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise ValueError(f"max_new_tokens must be an int, got {max_new_tokens!r}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        was_training = self.training
        self.eval()
        bs, cache = self.config.block_size, None
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and idx.shape[1] <= bs:
                logits, _ = self(idx[:, -1:], cache=cache)
            else:
                cache = KVCache(self.config.n_layer) if use_cache else None
                logits, _ = self(idx[:, -bs:], cache=cache)
            nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, nxt], dim=1)
        self.train(was_training)
        return idx

    def sample(
        self,
        n: int,
        max_new_tokens: int,
        start: int = 0,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n`` sequences grown from the token id ``start``:
        ``(n, 1 + max_new_tokens)`` int64 (see ``generate``)."""
        device = self.tok_emb.weight.device
        idx = torch.full((n, 1), start, dtype=torch.long, device=device)
        return self.generate(
            idx, max_new_tokens, temperature, top_k, top_p, generator=generator
        )
