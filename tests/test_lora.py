"""LoRA: a fresh adapter changes nothing, training moves only A and B, merging
keeps the outputs, the parameter count has its closed form, rank 2 overfits one
batch, errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from aigc_utils.gpt import GPT, GPTConfig
from aigc_utils.lora import (
    LoRAConfig,
    LoRALinear,
    add_lora,
    merge_lora,
    trainable_parameters,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
ALL = ("qkv", "proj", "mlp")


def tiny_gpt(seed: int = 0, emb_std: float | None = None) -> GPT:
    torch.manual_seed(seed)
    model = GPT(CFG).eval()
    if emb_std is not None:
        nn.init.normal_(model.tok_emb.weight, std=emb_std)
    return model


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, CFG.vocab_size, (4, CFG.block_size), generator=g)
    return x, (x + 3) % CFG.vocab_size


def train(model: GPT, steps: int, lr: float = 3e-2) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    x, y = batch()
    losses = []
    for _ in range(steps):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_lora_linear_init_and_forward() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = LoRALinear(base, rank=3, alpha=6)
    assert layer.A.shape == (3, 6) and layer.B.shape == (5, 3)
    assert torch.all(layer.B == 0) and layer.A.abs().max() > 0
    # Kaiming-uniform with a = sqrt(5): the bound of nn.Linear, 1 / sqrt(fan_in)
    assert layer.A.abs().max() <= 1 / math.sqrt(6)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.weight is base.weight and layer.scaling == 2.0
    x = torch.randn(2, 4, 6)
    assert torch.equal(layer(x), base(x))
    with torch.no_grad():
        layer.B.normal_()
    expected = base(x) + 2.0 * x @ layer.A.T @ layer.B.T
    torch.testing.assert_close(layer(x), expected)


def test_fresh_lora_model_gives_the_base_outputs() -> None:
    model = tiny_gpt()
    base = copy.deepcopy(model)
    names = add_lora(model, LoRAConfig(rank=2, alpha=4, targets=ALL))
    assert names == [
        "blocks.0.attn.qkv",
        "blocks.0.attn.proj",
        "blocks.0.mlp.0",
        "blocks.0.mlp.2",
    ]
    x, _ = batch()
    assert torch.equal(model(x)[0], base(x)[0])


def test_targets_select_the_layers() -> None:
    model = tiny_gpt()
    assert add_lora(model, LoRAConfig(targets=("mlp",))) == [
        "blocks.0.mlp.0",
        "blocks.0.mlp.2",
    ]
    assert isinstance(model.blocks[0].attn.qkv, nn.Linear)
    assert isinstance(model.blocks[0].mlp[2], LoRALinear)


def test_training_moves_only_a_and_b() -> None:
    model = tiny_gpt()
    before = copy.deepcopy(model.state_dict())
    add_lora(model, LoRAConfig(rank=2, alpha=4, targets=ALL))
    trainable = {
        n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
    }
    assert trainable and all(n.endswith((".A", ".B")) for n in trainable)
    train(model, steps=3)
    after = model.state_dict()
    for name, value in before.items():
        if name not in after:  # a wrapped layer keeps its weights in ".base"
            prefix, _, leaf = name.rpartition(".")
            name = f"{prefix}.base.{leaf}"
        assert torch.equal(after[name], value), name
    for name, init in trainable.items():
        assert not torch.equal(after[name], init), name


def test_merged_model_matches_the_lora_model() -> None:
    model = tiny_gpt()
    add_lora(model, LoRAConfig(rank=2, alpha=4, targets=ALL))
    train(model, steps=5)
    x, _ = batch(seed=2)
    with torch.no_grad():
        adapted = model(x)[0]
    merged = merge_lora(model)
    assert len(merged) == 4
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert type(model.blocks[0].mlp[0]) is nn.Linear
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], adapted, atol=1e-5, rtol=0)


def test_trainable_parameters_closed_form() -> None:
    model = tiny_gpt()
    add_lora(model, LoRAConfig(rank=3, alpha=3, targets=ALL))
    c, r = CFG.n_embd, 3
    per_block = r * (c + 3 * c) + r * (c + c) + r * (c + 4 * c) + r * (4 * c + c)
    assert trainable_parameters(model) == CFG.n_layer * per_block
    assert trainable_parameters(tiny_gpt()) == tiny_gpt().num_params()


def test_rank_two_overfits_one_batch() -> None:
    # A pretrained model's embeddings are larger than the 0.02 of the init; with
    # those and the tied output layer frozen, no adapter could move the logits.
    model = tiny_gpt(emb_std=0.3)
    add_lora(model, LoRAConfig(rank=2, alpha=4, targets=ALL))
    losses = train(model, steps=100)
    assert losses[-1] < 0.3 * losses[0] and losses[-1] < 1.0


def test_errors() -> None:
    with pytest.raises(ValueError, match="rank must be a positive int"):
        LoRAConfig(rank=0)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        LoRAConfig(alpha=0)
    with pytest.raises(ValueError, match="non-empty tuple"):
        LoRAConfig(targets=())
    with pytest.raises(ValueError, match="distinct names"):
        LoRAConfig(targets=("qkv", "head"))
    with pytest.raises(ValueError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), rank=1, alpha=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rank must be a positive int"):
        LoRALinear(nn.Linear(2, 2), rank=-1, alpha=1)
    with pytest.raises(ValueError, match="no nn.Linear"):
        add_lora(nn.Sequential(nn.Linear(2, 2)), LoRAConfig())
    model = tiny_gpt()
    add_lora(model, LoRAConfig())
    with pytest.raises(ValueError, match="already carry LoRA"):
        add_lora(model, LoRAConfig())
    with pytest.raises(ValueError, match="no LoRALinear to merge"):
        merge_lora(tiny_gpt())
