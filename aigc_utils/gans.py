"""The GAN game: its losses, the optimal discriminator and one training step.

Goodfellow et al. (2014) define the value function

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],

which the discriminator ``D`` maximises and the generator ``G`` minimises. The
functions here take the discriminator's *logits* ``a`` (``D = sigmoid(a)``) and
use ``-log sigmoid(a) = softplus(-a)`` and ``-log(1 - sigmoid(a)) = softplus(a)``,
which stay accurate where ``D`` is close to 0 or 1.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "StepStats",
    "adversarial_step",
    "discriminator_loss",
    "gan_train_step",
    "generator_loss",
    "optimal_discriminator",
]


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor of logits, got {logits.dtype}"
        )
    if logits.numel() == 0:
        raise ValueError(f"{name} is empty: the batch has no samples")


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """The discriminator's loss ``-(E[log D(x)] + E[log(1 - D(G(z)))]) = -V``.

    It is binary cross-entropy with label 1 for real and 0 for generated
    samples, summed over the two halves of the batch. It is ``>= 0``, tends to 0
    for a perfect discriminator and equals ``log 4`` when ``D = 1/2`` everywhere.

    Args:
        real_logits: ``(B,)`` or ``(B, 1)`` discriminator logits on real data.
        fake_logits: ``(B',)`` or ``(B', 1)`` logits on generated samples
            (``B'`` may differ from ``B``).

    Returns:
        a scalar tensor.

    Raises:
        ValueError: a non-tensor, non-float or empty argument.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for generated samples.

    Args:
        fake_logits: ``(B,)`` or ``(B, 1)`` logits ``a`` with ``D(G(z)) = sigmoid(a)``.
        saturating: ``False`` (default) gives the non-saturating loss
            ``-E[log D(G(z))]``, whose gradient with respect to ``a`` is
            ``-(1 - D)``; ``True`` gives the minimax loss ``E[log(1 - D(G(z)))]``
            (``<= 0``), whose gradient ``-D`` vanishes when the discriminator
            confidently rejects the samples.

    Returns:
        a scalar tensor.

    Raises:
        ValueError: a non-tensor, non-float or empty argument.
    """
    _check_logits("fake_logits", fake_logits)
    if saturating:
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, the best response to a fixed G.

    Where both densities are zero, every value of ``D`` is optimal (the point
    does not enter ``V``); the function returns 1/2 there.

    Args:
        p_data, p_g: densities (or probabilities) evaluated at the same points,
            any broadcastable shapes, ``>= 0``.

    Returns:
        the broadcast shape, values in ``[0, 1]``.

    Raises:
        ValueError: a non-tensor or non-float argument, negative or non-finite
            values, or shapes that do not broadcast.
    """
    for name, p in (("p_data", p_data), ("p_g", p_g)):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise ValueError(f"{name} must be a floating-point torch.Tensor")
        values = p.detach()
        if not torch.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"{name} must be finite and >= 0 (a density)")
    try:
        p_data, p_g = torch.broadcast_tensors(p_data, p_g)
    except RuntimeError:
        raise ValueError(
            f"p_data {tuple(p_data.shape)} and p_g {tuple(p_g.shape)} do not broadcast"
        ) from None
    total = p_data + p_g
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, p_data / safe, torch.full_like(total, 0.5))


class StepStats(NamedTuple):
    """Detached 0-d tensors from one :func:`adversarial_step` (no device sync).

    ``loss_d`` and ``loss_g`` are the two players' losses, ``d_real`` and
    ``d_fake`` the mean of ``D = sigmoid(logit)`` on real and generated samples,
    all measured before the respective update. ``loss_g`` is NaN when the
    generator was not trained in this step.
    """

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor


def _call(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> Any:
    return net(x) if labels is None else net(x, labels)


def adversarial_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    saturating: bool = False,
    train_generator: bool = True,
) -> StepStats:
    """One discriminator update, then (optionally) one generator update.

    1. ``D`` step: minimise :func:`discriminator_loss` on ``real`` and on
       ``G(z).detach()``; detaching keeps this loss away from ``G``.
    2. ``G`` step (when ``train_generator``): minimise :func:`generator_loss`
       on ``D(G(z))`` *without* detaching, so the gradient flows through ``D``
       into ``G``. ``D``'s parameters are frozen during this backward pass, so
       they neither change nor collect gradients.

    Args:
        generator, discriminator: called as ``net(x)``, or ``net(x, labels)``
            when ``labels`` is given (a conditional GAN; the generated samples
            get the same labels as the real batch).
        opt_g, opt_d: optimisers over each player's parameters only.
        real: ``(B, ...)`` a batch of data; ``z``: ``(B', latent)`` noise
            (``B' = B`` when conditional).
        saturating: train ``G`` with the minimax (saturating) loss instead of
            the non-saturating one.

    Returns:
        :class:`StepStats` of detached tensors: read them with ``.item()`` only
        every few steps, since each read waits for the device.
    """
    if train_generator:
        fake = _call(generator, z, labels)
    else:
        with torch.no_grad():
            fake = _call(generator, z, labels)
    real_logits = _call(discriminator, real, labels)
    fake_logits = _call(discriminator, fake.detach(), labels)
    loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    loss_g = torch.full((), math.nan, device=loss_d.device)
    if train_generator:
        d_params = [p for p in discriminator.parameters() if p.requires_grad]
        for p in d_params:
            p.requires_grad_(False)
        try:
            loss_g = generator_loss(
                _call(discriminator, fake, labels), saturating=saturating
            )
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        finally:
            for p in d_params:
                p.requires_grad_(True)
    return StepStats(
        loss_d.detach(),
        loss_g.detach(),
        torch.sigmoid(real_logits.detach()).mean(),
        torch.sigmoid(fake_logits.detach()).mean(),
    )


def gan_train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> dict[str, float]:
    """:func:`adversarial_step` with the non-saturating loss, read back as floats.

    Returns:
        ``{"loss_d", "loss_g", "d_real", "d_fake"}`` as Python floats (measured
        before the respective update). Convenient for teaching; a training loop
        should keep :func:`adversarial_step`'s tensors to avoid a sync per step.

    Raises:
        ValueError: if the discriminator's outputs are not float logits.
    """
    stats = adversarial_step(generator, discriminator, opt_g, opt_d, real, z)
    return {name: value.item() for name, value in stats._asdict().items()}
