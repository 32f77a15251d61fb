"""Data parallelism on one machine: several processes, one model, averaged gradients.

When a model outgrows one device's time budget, the first step is **data
parallelism**: every process holds a full copy of the model, takes its own
slice of each batch, and before each optimiser step the processes average
their gradients (an *all-reduce*), so every copy takes the same step. PyTorch's
``DistributedDataParallel`` (DDP; Li et al. 2020) does the averaging, overlapped
with the backward pass. The ``gloo`` backend runs it between CPU processes, so
it can be watched on a laptop; on GPUs the ``nccl`` backend does the same.

:func:`train_data_parallel` trains a model with ``world_size`` processes on
shards of a batch; :func:`train_single` trains the same model in one process on
the whole batch. With equal shards and mean-reduced losses the two take the
same steps, up to floating-point rounding: data parallelism changes where the
arithmetic happens, not what is computed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

#: builds the model in every process; must be importable (spawned processes
#: import it by name), e.g. a module-level function or a class.
ModelFactory = Callable[[], nn.Module]


def _check(xb: torch.Tensor, yb: torch.Tensor, world_size: int, steps: int) -> None:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if xb.dim() < 2 or xb.shape[:2] != yb.shape[:2]:
        raise ValueError(
            f"need batches (steps, B, ...) for inputs and targets, got "
            f"{tuple(xb.shape)} and {tuple(yb.shape)}"
        )
    if xb.shape[0] < steps:
        raise ValueError(f"{xb.shape[0]} batches for {steps} steps")
    if xb.shape[1] % world_size:
        raise ValueError(
            f"batch size {xb.shape[1]} does not split into {world_size} equal shards"
        )


def train_single(
    make_model: ModelFactory,
    xb: torch.Tensor,
    yb: torch.Tensor,
    steps: int,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Train ``make_model()`` (built after ``torch.manual_seed(seed)``) for
    ``steps`` AdamW steps on batches ``xb[i], yb[i]`` in this process.

    The model's ``forward(x, y)`` must return ``(output, loss)`` with the loss a
    mean over the batch (as the course's GPT does).

    Returns:
        The trained parameters by name (CPU tensors).
    """
    _check(xb, yb, 1, steps)
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        model(xb[i], yb[i])[1].backward()
        opt.step()
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters()}


def _worker(
    rank: int,
    world_size: int,
    init_file: str,
    make_model: ModelFactory,
    xb: torch.Tensor,
    yb: torch.Tensor,
    steps: int,
    lr: float,
    seed: int,
    out: str,
) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(seed)  # the same initial weights in every process
        model = nn.parallel.DistributedDataParallel(make_model())
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        shard = xb.shape[1] // world_size
        mine = slice(rank * shard, (rank + 1) * shard)
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            model(xb[i, mine], yb[i, mine])[1].backward()  # DDP averages the grads
            opt.step()
        if rank == 0:
            params = {k: v.detach().cpu() for k, v in model.module.named_parameters()}
            torch.save(params, out)
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    make_model: ModelFactory,
    xb: torch.Tensor,
    yb: torch.Tensor,
    steps: int,
    world_size: int = 2,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """As :func:`train_single`, with ``world_size`` CPU processes (DDP, gloo),
    each taking an equal, contiguous shard of every batch.

    Returns:
        Rank 0's trained parameters by name (every rank holds the same).

    Raises:
        ValueError: bad counts, or a batch that does not split into equal shards.
    """
    _check(xb, yb, world_size, steps)
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "rendezvous")
        out = os.path.join(tmp, "params.pt")
        args: tuple[Any, ...] = (
            world_size, init_file, make_model, xb, yb, steps, lr, seed, out,
        )  # fmt: skip
        mp.spawn(_worker, args=args, nprocs=world_size, join=True)
        return torch.load(Path(out), weights_only=True)


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two sets of named parameters.

    Raises:
        ValueError: the names or shapes differ.
    """
    if a.keys() != b.keys():
        raise ValueError(f"different parameters: {sorted(a.keys() ^ b.keys())[:5]}")
    worst = 0.0
    for k in a:
        if a[k].shape != b[k].shape:
            raise ValueError(f"{k}: shapes {tuple(a[k].shape)} and {tuple(b[k].shape)}")
        worst = max(worst, (a[k].float() - b[k].float()).abs().max().item())
    return worst
