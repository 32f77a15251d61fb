"""Where code runs and how it repeats: device choice, seeding, environment line."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"mps"``); the
            environment variable ``AIGC_DEVICE`` does the same without code.

    Raises:
        ValueError: the requested device is not available here.
    """
    prefer = prefer or os.environ.get("AIGC_DEVICE") or None
    if prefer is not None:
        device = torch.device(prefer)
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": _mps_available(),
        }.get(device.type, False)
        if not available:
            raise ValueError(
                f"device {prefer!r} was requested but is not available here; "
                "unset AIGC_DEVICE or pass prefer=None to choose automatically."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a seeded CPU generator.

    Results then repeat run to run on the same hardware and library versions;
    GPUs may still differ in the last digits (non-deterministic kernels).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)


def describe_environment(device: torch.device | None = None) -> str:
    """One line saying what runs the code, e.g.
    ``device cpu | torch 2.13.0+cpu | 2 threads | Python 3.11.7 | Linux x86_64``.
    """
    device = device or get_device()
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return (
        f"device {name} | torch {torch.__version__} | "
        f"{torch.get_num_threads()} threads | Python {platform.python_version()} | "
        f"{platform.system()} {platform.machine()}"
    )
