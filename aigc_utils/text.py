"""Character-level language models of the text part: batching, n-grams, an LSTM.

Every model here predicts the next character of Tiny Shakespeare
(:func:`aigc_utils.data.shakespeare_splits`, the same 90/10 split everywhere) and
reports its loss in nats per character::

    train, val, vocab = shakespeare_splits()
    x, y = get_batch(train, block_size=64, batch_size=12, generator=g)
    ngram = NGramLM(4, len(vocab)).fit(train);  ngram.nll(val)
    lstm = CharLSTM(LSTMConfig(len(vocab), hidden_size=384));  lm_loss(lstm, val, 100)

The tiny GPT lives in :mod:`aigc_utils.gpt` and is re-exported here, so
``from aigc_utils.text import GPT, GPTConfig, get_batch`` works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aigc_utils.gpt import (
    GPT,
    GPTConfig,
    KVCache,
    check_ids,
    describe,
    filter_logits,
    sample_next,
    with_loss,
)
from aigc_utils.training import (
    cosine_lr,  # re-exported: the text chapters import it here
)

__all__ = [
    "GPT",
    "CharLSTM",
    "GPTConfig",
    "KVCache",
    "LSTMConfig",
    "NGramLM",
    "RandomWindows",
    "cosine_lr",
    "filter_logits",
    "get_batch",
    "lm_loss",
    "sample_next",
]


def _check_data(data: object, min_len: int) -> Tensor:
    if not isinstance(data, Tensor) or data.dtype != torch.long or data.dim() != 1:
        raise ValueError(
            f"data must be a 1-D int64 tensor of ids, got {describe(data)}"
        )
    if len(data) < min_len:
        raise ValueError(f"data has {len(data)} tokens; need at least {min_len}")
    return data


def get_batch(
    data: Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of ``data`` and the same windows shifted by one.

    Args:
        data: ``(N,)`` int64 token ids.
        block_size: window length ``T``.
        batch_size: number of windows ``B``.
        generator: a CPU generator, so batches are reproducible.

    Returns:
        ``(x, y)``, both ``(B, T)`` int64 on ``data``'s device; ``y[:, t]`` is the
        token after ``x[:, t]``.

    Raises:
        ValueError: non-positive sizes, or ``data`` shorter than ``block_size + 1``.
    """
    for name, v in (("block_size", block_size), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    _check_data(data, block_size + 1)
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(block_size + 1)
    windows = data[offsets.to(data.device)]
    return windows[:, :-1], windows[:, 1:]


class RandomWindows:
    """``steps`` batches from :func:`get_batch`, an iterable for
    :func:`aigc_utils.training.fit` (``len`` is ``steps``; reproducible from ``seed``).
    """

    def __init__(
        self, data: Tensor, block_size: int, batch_size: int, steps: int, seed: int = 0
    ) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        get_batch(data, block_size, 1, torch.Generator())  # validate early
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.steps, self.generator = steps, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for _ in range(self.steps):
            yield get_batch(self.data, self.block_size, self.batch_size, self.generator)


@torch.no_grad()
def lm_loss(
    model: nn.Module,
    data: Tensor,
    block_size: int,
    batch_size: int = 128,
    max_windows: int | None = None,
) -> float:
    """Mean next-token cross-entropy (nats per token) of ``model`` on ``data``.

    ``data`` is cut into consecutive non-overlapping windows of ``block_size + 1``
    tokens (the last partial one dropped; ``max_windows`` keeps the first ones),
    and every window is scored from an empty context, the way the model trains.
    ``model(x, y)`` must return ``(logits, loss)``. The model is put in eval mode
    and restored.

    Raises:
        ValueError: bad data or sizes.
    """
    _check_data(data, block_size + 1)
    n = (len(data) - 1) // block_size
    if max_windows is not None:
        n = min(n, max_windows)
    starts = torch.arange(n) * block_size
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    for i in range(0, n, batch_size):
        offsets = starts[i : i + batch_size, None] + torch.arange(block_size + 1)
        w = data[offsets].to(device)
        total += model(w[:, :-1], w[:, 1:])[1] * len(w)
    model.train(was_training)
    return float(total) / n


# ---------------------------------------------------------------------------
# n-gram models


class NGramLM:
    """A character n-gram model with interpolated absolute discounting.

    ``P(c | h)`` for a history ``h`` of ``n - 1`` characters mixes the counts of
    ``(h, c)`` with the estimate of the next-shorter history ``h'``:

    ``P(c|h) = (max(N(h,c) - d, 0) + d * N1+(h) * P(c|h')) / N(h)``,

    where ``N(h)`` counts ``h`` and ``N1+(h)`` counts the distinct characters that
    followed it; a history never seen uses ``P(c|h')``; the empty history mixes
    with the uniform distribution. Counts are stored sparsely (sorted integer
    codes), so memory grows with the number of distinct n-grams, not ``V**n``.
    """

    def __init__(self, n: int, vocab_size: int, discount: float = 0.75) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10:
            raise ValueError(f"n must be an int in 1..10, got {n!r}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ValueError(f"vocab_size must be an int, got {vocab_size!r}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount!r}")
        self.n, self.vocab_size, self.discount = n, vocab_size, discount
        # per order k = 1..n: sorted codes of (history, next) and their counts;
        # sorted history codes, their counts and distinct continuations
        self.tables: list[dict[str, Tensor]] = []

    def _codes(self, data: Tensor, k: int) -> Tensor:
        """Code of the ``k - 1`` characters before each position ``k-1..N-1``."""
        code = torch.zeros(len(data) - k + 1, dtype=torch.long)
        for j in range(k - 1):
            code = code * self.vocab_size + data[j : len(data) - k + 1 + j]
        return code

    def fit(self, data: Tensor) -> NGramLM:
        """Count every 1- to n-gram of ``data`` ``(N,)`` int64; returns ``self``.

        Raises:
            ValueError: bad data or ids outside the vocabulary.
        """
        data = _check_data(data, self.n).cpu()
        check_ids(data[None], self.vocab_size, "data")
        self.tables = []
        for k in range(1, self.n + 1):
            hist = self._codes(data, k)
            pairs, counts = torch.unique(
                hist * self.vocab_size + data[k - 1 :], return_counts=True
            )
            h, n1 = torch.unique_consecutive(
                pairs // self.vocab_size, return_counts=True
            )
            totals = torch.zeros(len(h), dtype=torch.long)
            totals.index_add_(0, torch.repeat_interleave(n1), counts)
            self.tables.append(
                {
                    "pairs": pairs,
                    "counts": counts,
                    "hist": h,
                    "n1": n1,
                    "totals": totals,
                }
            )
        return self

    @property
    def num_entries(self) -> list[int]:
        """How many distinct k-grams were seen, for k = 1..n (the model's size)."""
        return [len(t["pairs"]) for t in self.tables]

    @staticmethod
    def _lookup(keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return torch.where(keys[pos] == query, values[pos], 0)

    def next_probs(self, context: Tensor) -> Tensor:
        """``P(next | last n-1 tokens of each row)``: ``(M, L) -> (M, V)`` float64.

        Rows shorter than ``n - 1`` use the orders they have.

        Raises:
            ValueError: the model is not fitted, or bad ids.
        """
        if not self.tables:
            raise ValueError("the model is not fitted: call fit(train_ids) first")
        if context.dim() == 2 and context.shape[1] == 0:
            context = context.new_zeros(len(context), 0)
        elif context.dim() != 2 or context.dtype != torch.long:
            raise ValueError(f"context must be (M, L) int64, got {context.shape}")
        else:
            check_ids(context, self.vocab_size, "context")
        context = context.cpu()
        v, d = self.vocab_size, self.discount
        cand = torch.arange(v)
        p = torch.full((len(context), v), 1.0 / v, dtype=torch.float64)
        for k, t in enumerate(self.tables, start=1):
            if k - 1 > context.shape[1]:
                break
            h = torch.zeros(len(context), dtype=torch.long)
            for j in range(k - 1):
                h = h * v + context[:, context.shape[1] - k + 1 + j]
            n_h = self._lookup(t["hist"], t["totals"], h).double()[:, None]
            n1 = self._lookup(t["hist"], t["n1"], h).double()[:, None]
            c = self._lookup(t["pairs"], t["counts"], h[:, None] * v + cand).double()
            mixed = ((c - d).clamp(min=0) + d * n1 * p) / n_h.clamp(min=1)
            p = torch.where(n_h > 0, mixed, p)
        return p

    def nll(self, data: Tensor, chunk: int = 8192) -> float:
        """Mean negative log-likelihood (nats per token) of ``data[n-1:]`` given
        the ``n - 1`` tokens before each.

        Raises:
            ValueError: not fitted, bad data.
        """
        data = _check_data(data, self.n).cpu()
        ctx = data.unfold(0, self.n, 1)  # (N - n + 1, n): history then target
        total = 0.0
        for i in range(0, len(ctx), chunk):
            rows = ctx[i : i + chunk]
            p = self.next_probs(rows[:, :-1]).gather(1, rows[:, -1:])
            total += float(-p.log().sum())
        return total / len(ctx)

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend ``idx`` ``(B, T)`` by ``max_new_tokens`` sampled tokens (same
        sampling rules as the GPT). Returns ``(B, T + max_new_tokens)`` int64."""
        check_ids(idx, self.vocab_size)
        idx = idx.cpu()
        for _ in range(max_new_tokens):
            logits = self.next_probs(idx[:, idx.shape[1] - self.n + 1 :]).log()
            nxt = sample_next(logits.float(), temperature, top_k, top_p, generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


# ---------------------------------------------------------------------------
# a character LSTM


@dataclass(frozen=True)
class LSTMConfig:
    """A character LSTM: vocabulary, embedding width, hidden size, layers, dropout.

    Raises:
        ValueError: non-positive sizes or dropout outside [0, 1).
    """

    vocab_size: int
    hidden_size: int
    n_embd: int = 64
    n_layer: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "n_embd", "n_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class CharLSTM(nn.Module):
    """Embedding -> LSTM (Hochreiter & Schmidhuber 1997) -> linear head.

    ``forward(idx, targets=None, state=None)`` returns ``(logits, loss)`` like the
    GPT; ``step`` also returns the new state, for generation and for carrying the
    state across windows (truncated backpropagation through time).
    """

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            config.n_embd,
            config.hidden_size,
            config.n_layer,
            batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def step(
        self, idx: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``idx: (B, T)`` -> ``(logits (B, T, V), (h, c))``, each state
        ``(n_layer, B, hidden_size)``.

        Raises:
            ValueError: bad ids.
        """
        check_ids(idx, self.config.vocab_size)
        out, state = self.lstm(self.emb(idx), state)
        return self.head(out), state

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``(logits (B, T, V), mean cross-entropy in nats or None)``.

        Raises:
            ValueError: bad ids, or targets of another shape than ``idx``.
        """
        return with_loss(self.step(idx, state)[0], idx, targets)

    def loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        """Mean next-token cross-entropy (nats) of a batch ``(x, y)``."""
        return self(*batch)[1]  # type: ignore[return-value]

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend ``idx`` ``(B, T)`` by ``max_new_tokens`` sampled tokens, carrying
        the state (no context limit). Returns ``(B, T + max_new_tokens)`` int64."""
        was_training = self.training
        self.eval()
        logits, state = self.step(idx)
        out = [idx]
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
            out.append(nxt)
            logits, state = self.step(nxt, state)
        self.train(was_training)
        return torch.cat(out, dim=1)
