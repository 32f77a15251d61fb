"""aigc_utils.quantize: int8 weights within half a step, a quarter of the bytes,
the original untouched, and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aigc_utils.quantize import Int8Linear, quantize_int8, state_bytes


def test_each_weight_moves_by_at_most_half_a_step() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(64, 32)
    q = Int8Linear(layer)
    assert q.qweight.dtype == torch.int8 and q.qweight.abs().max() == 127
    error = (q.weight - layer.weight).abs()
    assert (error <= q.scale[:, None] / 2 + 1e-7).all()
    x = torch.randn(5, 7, 64)
    assert torch.allclose(q(x), layer(x), atol=0.05)
    assert q(x).shape == (5, 7, 32)


def test_all_zero_rows_and_no_bias() -> None:
    layer = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[1] = torch.tensor([0.5, -1.0, 0.25, 0.0])
    q = Int8Linear(layer)
    assert torch.equal(q.weight[0], torch.zeros(4)) and q.bias is None
    assert torch.allclose(q.weight[1], layer.weight[1], atol=1.0 / 254)


def test_quantize_replaces_every_linear_in_a_copy() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(256, 256), nn.ReLU(), nn.Sequential(nn.Linear(256, 256))
    )
    before = [p.clone() for p in model.parameters()]
    q = quantize_int8(model)
    assert [type(m).__name__ for m in q.modules()].count("Int8Linear") == 2
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters())
    )  # untouched
    ratio = state_bytes(q) / state_bytes(model)
    assert 0.25 < ratio < 0.26  # one byte per weight, plus float scales and biases
    x = torch.randn(8, 256)
    assert torch.allclose(q(x), model(x), atol=0.02)


def test_shared_tensors_count_once() -> None:
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    assert state_bytes(model) == 10 * 4 * 4


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="nn.Linear"):
        Int8Linear(nn.Conv1d(1, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nn.Module"):
        quantize_int8("model")  # type: ignore[arg-type]
