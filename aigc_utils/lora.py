"""Low-rank adaptation, LoRA (Hu et al. 2022, arXiv:2106.09685).

Fine-tune a large frozen layer ``W`` (``out x in``) by learning only a low-rank
update: ``W' = W + (alpha / r) B A`` with ``A: (r, in)`` and ``B: (out, r)``,
``r << min(in, out)``. ``B`` starts at zero, so the adapted model starts exactly
where the pretrained one is; after training the update can be merged into ``W``
and inference costs nothing extra::

    names = add_lora(gpt, LoRAConfig(rank=4, alpha=8, targets=("qkv", "proj")))
    print(trainable_parameters(gpt))        # only the A's and B's
    ...                                     # train as usual
    merge_lora(gpt)                         # plain nn.Linear layers again

The targets name the Linear layers of :class:`aigc_utils.gpt.GPT`: ``"qkv"`` and
``"proj"`` (attention's input and output projections) and ``"mlp"`` (both Linear
layers of each block's feed-forward network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LORA_TARGETS",
    "LoRAConfig",
    "LoRALinear",
    "add_lora",
    "merge_lora",
    "trainable_parameters",
]

LORA_TARGETS = ("qkv", "proj", "mlp")


def _check_rank_alpha(rank: object, alpha: object) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    ``y = base(x) + (alpha / r) * x A^T B^T`` for ``x: (..., in) -> y: (..., out)``.
    ``A: (r, in)`` is initialised Kaiming-uniform like ``nn.Linear`` (the default
    of Hugging Face peft; the paper draws it from a Gaussian) and ``B: (out, r)``
    is zero, so a fresh layer computes exactly what ``base`` does. The base's
    parameters are frozen (``requires_grad=False``); ``weight`` and ``bias`` give
    them back, so code that reads ``layer.weight`` keeps working.

    Raises:
        ValueError: ``base`` not an ``nn.Linear`` (a ``LoRALinear`` included),
            ``rank`` not a positive int, or ``alpha <= 0``.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(
                f"LoRALinear wraps an nn.Linear, got {type(base).__name__}"
            )
        _check_rank_alpha(rank, alpha)
        self.base = base
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        base.requires_grad_(False)
        w = base.weight
        kw = {"device": w.device, "dtype": w.dtype}
        self.A = nn.Parameter(torch.empty(rank, base.in_features, **kw))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    @property
    def weight(self) -> Tensor:
        """The frozen base weight ``(out, in)`` (without the update)."""
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        """The frozen base bias ``(out,)`` or ``None``."""
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> Tensor:
        """The update ``(alpha / r) B A``, ``(out, in)``."""
        return self.scaling * (self.B @ self.A)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (..., in) -> (..., out)``."""
        # x A^T B^T costs r (in + out) per row; forming B A would cost in * out
        return self.base(x) + self.scaling * F.linear(F.linear(x, self.A), self.B)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A new plain ``nn.Linear`` with weight ``W + (alpha / r) B A`` and the
        base's bias; it computes what this layer does, in one matrix product.
        Its parameters keep the base's ``requires_grad``; ``self`` is unchanged."""
        w = self.base.weight
        merged = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.base.bias is not None,
            device=w.device,
            dtype=w.dtype,
        )
        merged.weight.copy_(w + self.delta_weight())
        merged.weight.requires_grad_(w.requires_grad)
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
            merged.bias.requires_grad_(self.base.bias.requires_grad)
        return merged


@dataclass(frozen=True)
class LoRAConfig:
    """Which Linear layers get an update of which rank and scale.

    ``rank`` is ``r``; ``alpha`` sets the scale ``alpha / r`` (Hu et al. keep
    ``alpha`` fixed while varying ``r``, so the learning rate need not be
    retuned); ``targets`` is a non-empty subset of ``("qkv", "proj", "mlp")``.

    Raises:
        ValueError: ``rank < 1``, ``alpha <= 0``, or empty/unknown/repeated
            targets.
    """

    rank: int = 4
    alpha: float = 8.0
    targets: tuple[str, ...] = ("qkv", "proj")

    def __post_init__(self) -> None:
        _check_rank_alpha(self.rank, self.alpha)
        targets = self.targets
        if not isinstance(targets, tuple) or not targets:
            raise ValueError(
                f"targets must be a non-empty tuple drawn from {LORA_TARGETS}, "
                f"got {targets!r}"
            )
        unknown = [t for t in targets if t not in LORA_TARGETS]
        if unknown or len(set(targets)) != len(targets):
            raise ValueError(
                f"targets must be distinct names from {LORA_TARGETS}, got {targets!r}"
            )


def _target_of(name: str) -> str | None:
    """``"qkv"``, ``"proj"``, ``"mlp"`` or ``None`` for a dotted module name."""
    parts = name.split(".")
    if parts[-1] in ("qkv", "proj"):
        return parts[-1]
    if len(parts) >= 2 and parts[-2] == "mlp":
        return "mlp"
    return None


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)  # also works for nn.Sequential's "0", "2"


def add_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Wrap the targeted ``nn.Linear`` layers of ``model`` in :class:`LoRALinear`,
    in place, and freeze every other parameter.

    Targets are found by name, as in :class:`aigc_utils.gpt.GPT`: a Linear
    called ``qkv`` or ``proj`` (attention), or any Linear inside a module called
    ``mlp`` (the feed-forward network). Afterwards only the ``A`` and ``B``
    matrices have ``requires_grad=True``.

    Returns:
        The dotted names of the replaced modules, e.g. ``"blocks.0.attn.qkv"``.

    Raises:
        ValueError: ``config`` not a ``LoRAConfig``, no module matches the
            targets, or a targeted module already is a ``LoRALinear``.
    """
    if not isinstance(config, LoRAConfig):
        raise ValueError(f"config must be a LoRAConfig, got {type(config).__name__}")
    found = [
        (name, module)
        for name, module in model.named_modules()
        if _target_of(name) in config.targets
        and isinstance(module, (nn.Linear, LoRALinear))
    ]
    adapted = [name for name, module in found if isinstance(module, LoRALinear)]
    if adapted:
        raise ValueError(
            f"{adapted} already carry LoRA; call merge_lora(model) before adding "
            "new adapters"
        )
    if not found:
        raise ValueError(
            f"no nn.Linear of {type(model).__name__} matches targets "
            f"{config.targets}: expected Linear layers named qkv/proj or inside a "
            "module named mlp"
        )
    model.requires_grad_(False)
    for name, module in found:
        _replace(model, name, LoRALinear(module, config.rank, config.alpha))
    return [name for name, _ in found]


def merge_lora(model: nn.Module) -> list[str]:
    """Replace every :class:`LoRALinear` of ``model`` by its merged ``nn.Linear``
    (see :meth:`LoRALinear.merge`), in place. Other parameters keep their
    ``requires_grad``.

    Returns:
        The dotted names of the merged modules.

    Raises:
        ValueError: ``model`` has no ``LoRALinear`` (nothing to merge).
    """
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no LoRALinear to merge; call add_lora first"
        )
    for name, module in found:
        _replace(model, name, module.merge())
    return [name for name, _ in found]


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad=True`` (shared ones counted once).
    With LoRA this is ``r (in + out)`` per adapted layer."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
