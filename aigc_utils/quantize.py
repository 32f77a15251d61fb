"""Weight-only int8 quantisation: a model's linear layers in a quarter of the bytes.

Most of a Transformer's parameters sit in the weight matrices of its linear
layers. Round-to-nearest int8 quantisation with one scale per output row (the
"vector-wise" quantisation of Dettmers et al. 2022, LLM.int8(), without its
outlier handling) stores a weight matrix ``W`` of shape ``(out, in)`` as

    s_i = max_j |W_ij| / 127,    q_ij = round(W_ij / s_i)  in  [-127, 127],

one byte per weight plus one float per row, and uses ``s_i q_ij`` in place of
``W_ij``: each weight moves by at most ``s_i / 2``. :func:`quantize_int8`
returns such a copy of a model; :func:`state_bytes` measures what it stores.

Here the int8 weights are turned back into floats at every call, so the copy
saves memory and disk, not time: a speed-up needs int8 matrix-multiply kernels
(as in bitsandbytes or a GPU's tensor cores), which this small module does not
use.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

QMAX = 127


class Int8Linear(nn.Module):
    """A frozen ``nn.Linear`` with int8 weights and one float32 scale per row.

    ``forward``: ``x (..., in) -> (..., out)``, as the original layer, with the
    weight ``scale[:, None] * qweight``.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(
                f"Int8Linear wraps an nn.Linear, got {type(linear).__name__}"
            )
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1) / QMAX
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero rows
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("qweight", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantised weight ``(out, in)`` float32 (code that reads a
        linear layer's ``weight``, e.g. for its dtype, keeps working)."""
        return self.qweight.float() * self.scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by :class:`Int8Linear`.

    The original is left untouched. Other layers (embeddings, norms) keep their
    float weights. A weight shared between an embedding and a linear head is
    quantised in the head only, so the copy stores it twice.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize_int8 needs an nn.Module, got {type(model).__name__}")
    out = copy.deepcopy(model).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return out


def state_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers (a tensor shared by two
    modules is counted once), what a checkpoint of it stores."""
    seen: set[int] = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total
