"""Text models: batching, sampling rules, n-grams, LSTM and GPT (cache, causality,
overfitting one batch, errors)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from aigc_utils.data import CharVocab
from aigc_utils.text import (
    GPT,
    CharLSTM,
    GPTConfig,
    KVCache,
    LSTMConfig,
    NGramLM,
    RandomWindows,
    cosine_lr,
    filter_logits,
    get_batch,
    lm_loss,
    sample_next,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gpt(seed: int = 0, **changes: object) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    return GPT(dataclasses.replace(cfg, **changes)).eval()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------
# tokenizer and batching


def test_char_vocab_round_trip_and_unknown_character() -> None:
    vocab = CharVocab("to be or not to be")
    text = "not to be"
    assert vocab.decode(vocab.encode(text)) == text
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        vocab.encode("zebra")


def test_get_batch_targets_are_inputs_shifted_by_one() -> None:
    data = torch.arange(100)
    x, y = get_batch(data, block_size=7, batch_size=5, generator=gen())
    assert x.shape == y.shape == (5, 7) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # consecutive ids: the next token is id + 1
    x2, _ = get_batch(data, 7, 5, gen())
    assert torch.equal(x, x2)  # same generator seed, same batch


def test_get_batch_reaches_the_last_token() -> None:
    data = torch.arange(10)
    _, y = get_batch(data, block_size=9, batch_size=3, generator=gen())
    assert torch.equal(y, torch.arange(1, 10).expand(3, 9))


def test_random_windows_is_a_reproducible_iterable() -> None:
    data = torch.arange(50)
    a, b = (
        list(RandomWindows(data, 4, 3, steps=5, seed=1)),
        list(RandomWindows(data, 4, 3, steps=5, seed=1)),
    )
    assert len(a) == 5 and all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert len(RandomWindows(data, 4, 3, steps=7)) == 7
    with pytest.raises(ValueError, match="steps must be a positive int"):
        RandomWindows(data, 4, 3, steps=0)
    with pytest.raises(ValueError, match="need at least 61"):
        RandomWindows(data, 60, 3, steps=2)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (torch.arange(10.0), {}, "1-D int64"),
        (torch.arange(10).view(2, 5), {}, "1-D int64"),
        ([1, 2, 3], {}, "got list"),
        (torch.arange(5), {}, "need at least 9"),
        (torch.arange(50), {"block_size": 0}, "block_size must be a positive int"),
        (torch.arange(50), {"batch_size": True}, "batch_size must be a positive int"),
    ],
)
def test_get_batch_errors(data, kwargs, message) -> None:
    args = {"block_size": 8, "batch_size": 2, "generator": gen()} | kwargs
    with pytest.raises(ValueError, match=message):
        get_batch(data, **args)


# ---------------------------------------------------------------------------
# sampling rules


def test_greedy_top_k_and_top_p() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert sample_next(logits, temperature=0).item() == 1
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [[False, True, False, True]]
    probs = logits.softmax(-1)[0]  # 0.032, 0.644, 0.087, 0.237
    nucleus = filter_logits(logits, top_p=0.8).isfinite()[0]
    assert nucleus.tolist() == [False, True, False, True]  # 0.644 < 0.8 <= 0.881
    assert probs[1] < 0.8 < probs[1] + probs[3]
    assert filter_logits(logits, top_p=0.5).isfinite().sum() == 1  # top token kept
    assert filter_logits(logits, top_k=99).isfinite().all()


def test_sampling_frequencies_follow_the_temperature() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(4000, 2)
    draws = sample_next(logits, temperature=1.0, generator=gen())
    assert abs(draws.float().mean().item() - 0.75) < 0.03
    hot = sample_next(logits, temperature=1e6, generator=gen()).float().mean()
    assert abs(hot.item() - 0.5) < 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1.0}, "temperature must be >= 0"),
        ({"top_k": 0}, "top_k must be a positive int"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ],
)
def test_sampling_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        sample_next(torch.zeros(1, 3), **kwargs)


def test_cosine_lr_schedule() -> None:
    assert cosine_lr(0, 100, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(10, 100, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(55, 100, warmup=10) == pytest.approx(0.55)


# ---------------------------------------------------------------------------
# n-gram models


def test_bigram_closed_form() -> None:
    # "abab...": after 'a' always 'b'. Counts: N(a)=2, N(a,b)=2, N1+(a)=1.
    data = torch.tensor([0, 1, 0, 1, 0])
    model = NGramLM(2, vocab_size=3, discount=0.5).fit(data)
    uni = model.next_probs(torch.zeros(1, 0, dtype=torch.long))[0]
    # unigram: counts a=3, b=2, c=0 of 5; two distinct; mixed with uniform 1/3
    expected_uni = torch.tensor([2.5, 1.5, 0.0]) / 5 + 0.5 * 2 / 5 / 3
    torch.testing.assert_close(uni, expected_uni.double())
    p = model.next_probs(torch.tensor([[0]]))[0]
    expected = (torch.tensor([0.0, 1.5, 0.0]) + 0.5 * 1 * expected_uni) / 2
    torch.testing.assert_close(p, expected.double())
    assert model.num_entries == [2, 2]
    # an unseen history ('c') falls back to the unigram estimate
    torch.testing.assert_close(model.next_probs(torch.tensor([[2]]))[0], uni)


def test_ngram_learns_a_deterministic_sequence_and_generates_it() -> None:
    data = torch.arange(7).repeat(50)
    model = NGramLM(3, vocab_size=7, discount=0.1).fit(data)
    assert model.nll(data) < 0.05
    assert torch.allclose(
        model.next_probs(torch.rand(4, 5).long()).sum(-1), torch.ones(4).double()
    )
    out = model.generate(torch.tensor([[0, 1]]), 5, temperature=0)
    assert out.tolist() == [[0, 1, 2, 3, 4, 5, 6]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 5), "n must be an int in 1..10"),
        ((2, 1), "vocab_size must be >= 2"),
        ((2, 5.0), "vocab_size must be an int"),
        ((2, 5, 1.0), r"discount must be in \(0, 1\)"),
    ],
)
def test_ngram_config_errors(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        NGramLM(*args)


def test_ngram_usage_errors() -> None:
    model = NGramLM(2, 3)
    with pytest.raises(ValueError, match="not fitted"):
        model.next_probs(torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside 0..2"):
        model.fit(torch.tensor([0, 1, 5]))
    model.fit(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"context must be \(M, L\) int64"):
        model.next_probs(torch.zeros(3))


# ---------------------------------------------------------------------------
# GPT


def test_gpt_shapes_loss_and_tied_weights() -> None:
    model = tiny_gpt()
    x = torch.randint(11, (3, 8), generator=gen())
    logits, loss = model(x, torch.randint(11, (3, 8), generator=gen(1)))
    assert logits.shape == (3, 8, 11)
    assert model(x)[1] is None
    assert loss.item() == pytest.approx(math.log(11), abs=0.1)  # small init: uniform
    assert model.head.weight is model.tok_emb.weight
    n_expected = 11 * 16 + 8 * 16 + 2 * (4 * 16 + 16 * 48 + 48 + 16 * 16 + 16)
    n_expected += 2 * (16 * 64 + 64 + 64 * 16 + 16) + 2 * 16
    assert model.num_params() == n_expected


def test_gpt_is_causal() -> None:
    model = tiny_gpt()
    x = torch.randint(11, (2, 8), generator=gen())
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 11  # change the future only
    torch.testing.assert_close(model(x)[0][:, :5], model(y)[0][:, :5])
    assert not torch.allclose(model(x)[0][:, 5:], model(y)[0][:, 5:])
    bert = tiny_gpt(causal=False)
    assert not torch.allclose(bert(x)[0][:, :5], bert(y)[0][:, :5])


def test_gpt_cache_gives_the_same_logits_and_tokens() -> None:
    model = tiny_gpt()
    x = torch.randint(11, (2, 8), generator=gen())
    full = model(x)[0]
    cache = KVCache(2)
    step = [model(x[:, :3], cache=cache)[0]]
    step += [model(x[:, t : t + 1], cache=cache)[0] for t in range(3, 8)]
    torch.testing.assert_close(torch.cat(step, dim=1), full)
    assert len(cache) == 8
    prompt = x[:, :2]
    for options in ({"temperature": 0.0}, {"temperature": 1.0, "top_k": 5}):
        # 20 new tokens run past block_size = 8: the cache must then recompute
        a = model.generate(prompt, 20, use_cache=True, generator=gen(3), **options)
        b = model.generate(prompt, 20, use_cache=False, generator=gen(3), **options)
        assert a.shape == (2, 22) and torch.equal(a, b)


def test_gpt_attention_maps_are_causal_distributions() -> None:
    model = tiny_gpt()
    maps = model.attention_maps(torch.randint(11, (1, 6), generator=gen()))
    assert len(maps) == 2 and maps[0].shape == (1, 2, 6, 6)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(1, 2, 6))
    assert torch.all(maps[0].triu(diagonal=1) == 0)


def test_gpt_overfits_one_batch() -> None:
    model = tiny_gpt(seed=1).train()
    x, y = get_batch(torch.randint(11, (200,), generator=gen()), 8, 4, gen())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model.loss((x, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    assert model.training
    out = model.sample(2, 5, start=3, temperature=0.0)
    assert out.shape == (2, 6) and torch.all(out[:, 0] == 3) and model.training


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_layer": 0}, "n_layer must be a positive int"),
        ({"vocab_size": 2.5}, "vocab_size must be a positive int"),
        ({"n_embd": 10, "n_head": 4}, "must be divisible by n_head=4"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"causal": 1}, "causal must be True or False"),
    ],
)
def test_gpt_config_errors(changes, message) -> None:
    base = {"vocab_size": 5, "block_size": 4, "n_layer": 1, "n_head": 2, "n_embd": 8}
    with pytest.raises(ValueError, match=message):
        GPTConfig(**(base | changes))


def test_gpt_config_is_frozen() -> None:
    cfg = GPTConfig(5, 4, 1, 2, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_layer = 2  # type: ignore[misc]


def test_gpt_usage_errors() -> None:
    model = tiny_gpt()
    ok = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\(B, T\) int64 tensor of token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="got list"):
        model([[1, 2]])
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside 0..10"):
        model(torch.full((1, 3), 11))
    with pytest.raises(ValueError, match="exceed the context of block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(ok, torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0"):
        model.generate(ok, -1)
    with pytest.raises(ValueError, match="max_new_tokens must be an int"):
        model.generate(ok, 2.0)
    with pytest.raises(ValueError, match="cannot generate"):
        tiny_gpt(causal=False).generate(ok, 2)


# ---------------------------------------------------------------------------
# LSTM and evaluation


def test_lstm_overfits_one_batch_and_generates() -> None:
    torch.manual_seed(0)
    model = CharLSTM(LSTMConfig(vocab_size=7, hidden_size=32, n_embd=8))
    data = torch.arange(7).repeat(20)
    x, y = get_batch(data, 10, 4, gen())
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(100):
        loss = model.loss((x, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert lm_loss(model, data, 10) < 0.1
    out = model.generate(torch.tensor([[2]]), 20, temperature=0)
    assert out[0].tolist() == [(2 + i) % 7 for i in range(21)]  # past the window
    n = 7 * 8 + 4 * (8 * 32 + 32 * 32 + 2 * 32) + 32 * 7 + 7
    assert model.num_params() == n


def test_lstm_errors() -> None:
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        LSTMConfig(vocab_size=5, hidden_size=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        LSTMConfig(vocab_size=5, hidden_size=4, dropout=-0.1)
    model = CharLSTM(LSTMConfig(vocab_size=5, hidden_size=4, n_layer=2, dropout=0.1))
    x = torch.zeros(2, 3, dtype=torch.long)
    assert model(x)[1] is None
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(x, x[:, :2])
    with pytest.raises(ValueError, match=r"outside 0..4"):
        model(x + 5)


def test_lm_loss_of_a_uniform_model_is_log_vocab() -> None:
    model = tiny_gpt()
    torch.nn.init.zeros_(model.tok_emb.weight)  # tied head: zero logits
    data = torch.randint(11, (100,), generator=gen())
    assert lm_loss(model, data, 8, batch_size=3) == pytest.approx(math.log(11))
    assert lm_loss(model, data, 8, max_windows=2) == pytest.approx(math.log(11))
