"""Tests of aigc_utils.attention: agreement with PyTorch, masks, positions, errors."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from aigc_utils.attention import (
    AttentionConfig,
    MultiHeadSelfAttention,
    causal_mask,
    merge_heads,
    scaled_dot_product_attention,
    sinusoidal_positions,
    split_heads,
)


@pytest.fixture
def qkv() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, 8, generator=g)
    k = torch.randn(2, 3, 7, 8, generator=g)
    v = torch.randn(2, 3, 7, 4, generator=g)
    return q, k, v


def test_matches_fused_function(qkv):
    q, k, v = qkv
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_matches_fused_function_with_causal_mask():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected)


def test_matches_fused_function_with_boolean_mask(qkv):
    q, k, v = qkv
    mask = torch.rand(5, 7, generator=torch.Generator().manual_seed(2)) > 0.5
    mask[:, 0] = True  # every query keeps at least one key
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, mask))
    assert torch.all(weights[..., ~mask] == 0)


def test_rows_are_probability_distributions(qkv):
    _, weights = scaled_dot_product_attention(*qkv)
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_causal_weights_vanish_above_the_diagonal():
    x = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(3))
    _, weights = scaled_dot_product_attention(x, x, x, mask=causal_mask(6))
    upper = torch.ones(6, 6, dtype=torch.bool).triu(1)
    assert torch.all(weights[..., upper] == 0)
    assert torch.all(weights[..., ~upper] > 0)
    assert weights[0, 0, 0] == 1  # the first position can only see itself


def test_causal_mask_values_and_errors():
    assert causal_mask(3).tolist() == [
        [True, False, False],
        [True, True, False],
        [True, True, True],
    ]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="positive int"):
            causal_mask(bad)


def test_batch_dimensions_broadcast():
    g = torch.Generator().manual_seed(4)
    q = torch.randn(2, 1, 5, 8, generator=g)
    k = torch.randn(3, 7, 8, generator=g)
    v = torch.randn(3, 7, 4, generator=g)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("q", "k", "v"), "must be a torch.Tensor"),
        ((torch.ones(5, 8, dtype=torch.long),), "floating-point"),
        ((torch.ones(8),), "at least 2 dimensions"),
        ((torch.ones(5, 8, dtype=torch.float64),), "share one dtype"),
        ((torch.ones(5, 6),), "same feature size"),
        ((None, None, torch.ones(6, 4)), "same number of positions"),
        ((torch.ones(2, 5, 8), torch.ones(3, 7, 8), torch.ones(3, 7, 4)), "broadcast"),
    ],
)
def test_input_errors(args, message):
    defaults = (torch.ones(5, 8), torch.ones(7, 8), torch.ones(7, 4))
    q, k, v = (a if a is not None else d for a, d in zip(args + (None,) * 3, defaults))
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v)


def test_mask_errors():
    q, k, v = torch.ones(5, 8), torch.ones(7, 8), torch.ones(7, 4)
    with pytest.raises(ValueError, match="boolean tensor, got torch.int64"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="boolean tensor, got list"):
        scaled_dot_product_attention(q, k, v, mask=[[True]])
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=causal_mask(5))
    empty_row = torch.ones(5, 7, dtype=torch.bool)
    empty_row[2] = False
    with pytest.raises(ValueError, match="at least one key"):
        scaled_dot_product_attention(q, k, v, mask=empty_row)


def test_sinusoidal_positions_formula():
    p = sinusoidal_positions(50, 16)
    assert p.shape == (50, 16) and p.dtype == torch.float32
    pos, i = 7, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert p[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert p[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert torch.all(p[0, 0::2] == 0) and torch.all(p[0, 1::2] == 1)


def test_sinusoidal_dot_products_depend_only_on_offset():
    p = sinusoidal_positions(40, 32).double()
    gram = p @ p.T
    for offset in (1, 5):
        diagonal = torch.diagonal(gram, offset)
        assert float(diagonal.max() - diagonal.min()) < 1e-5


@pytest.mark.parametrize(
    ("t", "d", "base", "message"),
    [
        (0, 8, 10000.0, "t must be"),
        (4, 7, 10000.0, "even"),
        (4, 0, 10000.0, "even"),
        (4, 8, 1.0, "base"),
    ],
)
def test_sinusoidal_positions_errors(t, d, base, message):
    with pytest.raises(ValueError, match=message):
        sinusoidal_positions(t, d, base)


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError, match="divisible by n_heads=5"):
        split_heads(x, 5)
    with pytest.raises(ValueError, match=r"\(B, H, T, d_head\)"):
        merge_heads(x)


def test_config_validation_and_frozen():
    config = AttentionConfig(d_model=12, n_heads=3)
    assert config.d_head == 4 and config.causal is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_heads = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="divisible"):
        AttentionConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="positive"):
        AttentionConfig(d_model=0, n_heads=1)


@pytest.mark.parametrize("causal", [False, True])
def test_module_matches_torch_multihead_attention(causal):
    torch.manual_seed(5)
    mhsa = MultiHeadSelfAttention(AttentionConfig(d_model=16, n_heads=4, causal=causal))
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mhsa.qkv.weight)
        ref.in_proj_bias.copy_(mhsa.qkv.bias)
        ref.out_proj.weight.copy_(mhsa.proj.weight)
        ref.out_proj.bias.copy_(mhsa.proj.bias)
    x = torch.randn(3, 6, 16)
    blocked = ~causal_mask(6) if causal else None  # torch's mask: True = blocked
    expected, _ = ref(x, x, x, attn_mask=blocked, need_weights=False)
    torch.testing.assert_close(mhsa(x), expected)
    out, weights = mhsa.attend(x)
    torch.testing.assert_close(out, expected)
    assert weights.shape == (3, 4, 6, 6)
    if causal:
        assert torch.all(weights.triu(1) == 0)


def test_self_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(6)
    mhsa = MultiHeadSelfAttention(AttentionConfig(d_model=16, n_heads=2))
    x = torch.randn(2, 9, 16)
    perm = torch.randperm(9)
    torch.testing.assert_close(mhsa(x[:, perm]), mhsa(x)[:, perm])
    with_pos = x + sinusoidal_positions(9, 16)
    moved = mhsa(x[:, perm] + sinusoidal_positions(9, 16))
    assert (moved - mhsa(with_pos)[:, perm]).abs().max() > 1e-3


def test_causal_module_gradients_flow_only_to_the_past():
    torch.manual_seed(7)
    mhsa = MultiHeadSelfAttention(AttentionConfig(d_model=8, n_heads=2, causal=True))
    x = torch.randn(1, 5, 8, requires_grad=True)
    mhsa(x)[0, 2].sum().backward()
    assert x.grad is not None
    assert torch.all(x.grad[0, 3:] == 0) and torch.any(x.grad[0, :3] != 0)


def test_module_input_errors():
    mhsa = MultiHeadSelfAttention(AttentionConfig(d_model=8, n_heads=2))
    with pytest.raises(ValueError, match=r"\(B, T, d_model\), got \(5, 8\)"):
        mhsa(torch.ones(5, 8))
    with pytest.raises(ValueError, match="got list"):
        mhsa([1.0])
    with pytest.raises(ValueError, match="d_model=8 features"):
        mhsa.attend(torch.ones(1, 5, 6))
    with pytest.raises(ValueError, match="dtype torch.float64"):
        mhsa(torch.ones(1, 5, 8, dtype=torch.float64))
