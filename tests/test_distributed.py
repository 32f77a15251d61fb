"""aigc_utils.distributed: two gloo processes take the same steps as one process
on the whole batch; bad batches are refused before any process starts."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from aigc_utils.distributed import max_difference, train_data_parallel, train_single
from aigc_utils.gpt import GPT, GPTConfig

TINY = partial(
    GPT, GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
)


def batches(steps: int = 2, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 11, (steps, batch, 8), generator=g)
    return x, torch.roll(x, -1, dims=-1)


def test_two_processes_take_the_steps_of_one_on_the_whole_batch() -> None:
    x, y = batches()
    single = train_single(TINY, x, y, steps=2, lr=1e-2)
    parallel = train_data_parallel(TINY, x, y, steps=2, world_size=2, lr=1e-2)
    assert max_difference(single, parallel) < 1e-5
    torch.manual_seed(0)
    start = dict(TINY().named_parameters())
    assert max_difference(single, {k: v.detach() for k, v in start.items()}) > 1e-3


def test_bad_batches_and_counts() -> None:
    x, y = batches(batch=3)
    with pytest.raises(ValueError, match="equal shards"):
        train_data_parallel(TINY, x, y, steps=2, world_size=2)
    with pytest.raises(ValueError, match="steps must be"):
        train_single(TINY, x, y, steps=0)
    with pytest.raises(ValueError, match="3 batches for 5 steps|2 batches for 5 steps"):
        train_single(TINY, x, y, steps=5)
    with pytest.raises(ValueError, match="inputs and targets"):
        train_single(TINY, x, y[:, :2], steps=1)
    with pytest.raises(ValueError, match="world_size"):
        train_data_parallel(TINY, x, y, steps=1, world_size=0)


def test_max_difference_checks_names_and_shapes() -> None:
    a = {"w": torch.zeros(2)}
    assert max_difference(a, {"w": torch.tensor([0.0, -0.5])}) == 0.5
    with pytest.raises(ValueError, match="different parameters"):
        max_difference(a, {"v": torch.zeros(2)})
    with pytest.raises(ValueError, match="shapes"):
        max_difference(a, {"w": torch.zeros(3)})
