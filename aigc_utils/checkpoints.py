"""Saving and loading trained models together with the config that built them.

A checkpoint is a dict ``{"config_type", "config", "state_dict", "extra"}`` saved
with :func:`torch.save`. Loading uses ``torch.load(..., weights_only=True)``, which
refuses arbitrary pickled objects, and compares the stored config with the config
of the model you load into: a checkpoint trained with another config is refused
with a message naming the fields that differ, instead of failing later with an
obscure shape error (or, worse, loading into a model that means something else).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointMismatchError(ValueError):
    """The checkpoint was saved with a different model config."""


def _config_dict(config: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(
            f"config must be a dataclass instance, got {type(config).__name__}"
        )
    return dataclasses.asdict(config)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``model``'s weights with ``config`` (a dataclass of plain values).

    ``extra`` holds plain values worth keeping (step, metrics). The file is
    written to a temporary name and renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config_type": type(config).__name__,
        "config": _config_dict(config),
        "state_dict": model.state_dict(),
        "extra": dict(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: Any,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint` into ``model``.

    Returns:
        The checkpoint's ``extra`` dict.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointMismatchError: the stored config type or any field differs
            from ``config``; the message lists the differences.
        ValueError: the file is not a checkpoint of this format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(
            f"{path} is not a loadable checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise ValueError(f"{path} is not a checkpoint saved by save_checkpoint")
    expected = _config_dict(config)
    stored = payload["config"]
    if payload.get("config_type") != type(config).__name__ or stored != expected:
        diffs = [
            f"{key}: checkpoint {stored.get(key, '<missing>')!r} vs model "
            f"{expected.get(key, '<missing>')!r}"
            for key in sorted(set(stored) | set(expected))
            if stored.get(key, "<missing>") != expected.get(key, "<missing>")
        ]
        raise CheckpointMismatchError(
            f"{path} was saved from {payload.get('config_type')} with a different "
            f"config ({'; '.join(diffs) or 'type differs'}). Build the model with "
            "the checkpoint's config, or retrain."
        )
    model.load_state_dict(payload["state_dict"])
    return dict(payload.get("extra", {}))
