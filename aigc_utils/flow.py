"""Flow matching: learn the velocity of straight paths from noise to data.

Flow matching (Lipman et al. 2023) and rectified flow (Liu et al. 2023) join
noise ``x0 ~ N(0, I)`` and data ``x1`` by the straight path
``x_t = (1 - t) x0 + t x1``, ``t in [0, 1]``, whose velocity is ``x1 - x0``.
A network ``v_theta(x_t, t, y)`` regresses it,
``E_{t, x0, x1} ||v_theta(x_t, t) - (x1 - x0)||^2``; the minimiser is
``E[x1 - x0 | x_t]``, a velocity field whose ODE ``dx/dt = v(x, t)`` carries
``N(0, I)`` at ``t = 0`` to the data at ``t = 1``. Sampling integrates that ODE
(:func:`sample_euler`, :func:`sample_heun`). Reflow (Liu et al. 2023) retrains
on the pairs ``(x0, x1)`` that the ODE itself produces (:func:`reflow_pairs`,
then ``flow_matching_loss(..., x0=x0)``), which straightens the paths
(:func:`straightness`) so that fewer steps suffice.

The networks are DDPM's: ``MLPDenoiser`` (:mod:`aigc_utils.diffusion`) and
``UNet`` (:mod:`aigc_utils.unet`), called the same way, ``net(x, t, y)`` with
``t: (B,)`` and labels ``y: (B,)`` in which ``num_classes`` is the null label of
classifier-free guidance. Both embed ``t`` with ``timestep_embedding``, which
takes float timesteps as they come, so continuous time is passed as
``t * time_scale`` with ``time_scale = 999``, the range of DDPM's step indices
for which the sinusoids were spread (with ``t`` in [0, 1] most of them would
barely move). Mind the direction: here ``t = 0`` is noise and ``t = 1`` data,
while DDPM's step 0 is nearly clean and step 999 noise. A network trained from
scratch does not care; one started from a DDPM checkpoint would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
from torch import nn

__all__ = [
    "TIME_SCALE",
    "flow_matching_loss",
    "reflow_pairs",
    "sample_euler",
    "sample_heun",
    "straightness",
    "velocity",
]

TIME_SCALE = 999.0  # t in [0, 1] -> the float step index DDPM's networks embed

Model = Callable[..., torch.Tensor]  # model(x (B, ...), t (B,), y (B,) | None)


def _null_label(model: Model, null_label: int | None) -> int | None:
    """The null label: as given, else the network's ``config.num_classes``."""
    if null_label is not None:
        return null_label
    n = getattr(getattr(model, "config", None), "num_classes", None)
    return n if isinstance(n, int) and n > 0 else None


def _check(
    model: Model,
    shape: tuple[int, ...] | torch.Size,
    labels: torch.Tensor | None,
    *,
    guidance: float = 0.0,
    label_drop: float = 0.0,
    null_label: int | None = None,
    steps: int | None = None,
    t: float | torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
) -> int | None:
    """Validate the public functions' inputs; return the null label (or None)."""
    shape = tuple(shape)
    if len(shape) < 2 or shape[0] < 1:
        raise ValueError(f"expected a batch (B, D) or (B, C, H, W), got {shape}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 <= label_drop < 1:
        raise ValueError(f"label_drop must be in [0, 1), got {label_drop}")
    if x0 is not None and tuple(x0.shape) != shape:
        raise ValueError(f"x0 must have shape {shape}, got {tuple(x0.shape)}")
    if t is not None:
        t = torch.as_tensor(t)
        if t.dim() > 0 and tuple(t.shape) != shape[:1]:
            raise ValueError(
                f"t must be a scalar or ({shape[0]},), got {tuple(t.shape)}"
            )
        if t.min() < 0 or t.max() > 1:
            raise ValueError(f"t must be in [0, 1], got [{t.min():.3g}, {t.max():.3g}]")
    null = _null_label(model, null_label)
    if labels is None:
        if guidance != 0:
            raise ValueError(
                "guidance needs labels: pass labels (B,), or set guidance=0.0"
            )
        if label_drop > 0:
            raise ValueError("label_drop needs labels; set label_drop=0.0 without")
        return null
    if tuple(labels.shape) != shape[:1]:
        raise ValueError(f"labels must be ({shape[0]},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if (guidance != 0 or label_drop > 0) and null is None:
        raise ValueError(
            "classifier-free guidance needs a null label: pass null_label "
            "(DDPM's convention is num_classes) or a network with config.num_classes"
        )
    if null is not None and (labels.min() < 0 or labels.max() > null):
        raise ValueError(f"labels must be in 0..{null} ({null} is the null label)")
    return null


def _rand(
    fn: Callable[..., torch.Tensor],
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """``fn(shape)`` (``torch.rand``/``randn``) from ``generator`` on its own
    device, or from the global RNG on ``like``'s; returned like ``like``."""
    device = like.device if generator is None else generator.device
    return fn(shape, generator=generator, device=device).to(like)


def flow_matching_loss(
    model: Model,
    x1: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    label_drop: float = 0.0,
    null_label: int | None = None,
    time_scale: float = TIME_SCALE,
) -> torch.Tensor:
    """The conditional flow-matching loss ``E ||v_theta(x_t, t, y) - (x1 - x0)||^2``
    with ``x_t = (1 - t) x0 + t x1``, ``t ~ U[0, 1]`` (Lipman et al. 2023,
    their optimal-transport path with ``sigma_min = 0``; Liu et al. 2023).

    Args:
        model: ``model(x_t, t * time_scale, y)`` as DDPM's networks are called:
            ``x_t`` like ``x1``, times ``(B,)`` floats in ``[0, time_scale]``.
        x1: data ``(B, D)`` or ``(B, C, H, W)``, already scaled (e.g. to [-1, 1]).
        labels: ``(B,)`` integer labels of a conditional model, or ``None``.
        x0: noise paired with ``x1`` (reflow's coupling); default fresh
            ``N(0, I)`` draws, independent of ``x1``.
        generator: draws ``x0``, ``t`` and the dropped labels, on its device.
        label_drop: share of labels replaced by the null label, so that one
            network learns ``v(x, t, y)`` and ``v(x, t)`` (as ``Diffusion``'s
            ``label_dropout``).
        null_label: default the network's ``config.num_classes`` (DDPM's).
        time_scale: what ``t = 1`` becomes for the network (999: DDPM's last step).

    Returns:
        The mean squared error over all elements, a scalar.

    Raises:
        ValueError: a bad shape, labels or ``label_drop``, or no null label.
    """
    null = _check(
        model, x1.shape, labels, label_drop=label_drop, null_label=null_label, x0=x0
    )
    if x0 is None:
        x0 = _rand(torch.randn, x1.shape, generator, x1)
    t = _rand(torch.rand, (len(x1),), generator, x1)  # (B,)
    t_ = t.view(-1, *[1] * (x1.dim() - 1))  # broadcast over (C, H, W) or (D,)
    x_t = (1 - t_) * x0 + t_ * x1
    if labels is not None and label_drop > 0:  # classifier-free guidance
        drop = _rand(torch.rand, labels.shape, generator, x1).to(labels.device)
        labels = torch.where(drop < label_drop, torch.full_like(labels, null), labels)
    return (model(x_t, t * time_scale, labels) - (x1 - x0)).pow(2).mean()


def velocity(
    model: Model,
    x: torch.Tensor,
    t: float | torch.Tensor,
    labels: torch.Tensor | None = None,
    guidance: float = 0.0,
    *,
    null_label: int | None = None,
    time_scale: float = TIME_SCALE,
) -> torch.Tensor:
    """The model's velocity ``v(x, t, y)`` ``(B, ...)`` at ``x: (B, ...)``.

    With labels and ``guidance = w != 0``, classifier-free guidance (Ho and
    Salimans 2022) in DDPM's convention (``Diffusion.predict_eps``):
    ``v_cond + w (v_cond - v_uncond) = v_uncond + (1 + w)(v_cond - v_uncond)``,
    so ``w = 0`` is the plain conditional model; both passes run as one batch.

    Args:
        t: one time in [0, 1] for the batch, or ``(B,)``.
        labels: ``(B,)``; the null label gives the unconditional velocity.

    Raises:
        ValueError: ``t`` outside [0, 1], guidance without labels or without a
            null label, bad shapes.
    """
    null = _check(model, x.shape, labels, guidance=guidance, null_label=null_label, t=t)
    tt = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x)) * time_scale
    if labels is None or guidance == 0:
        return model(x, tt, labels)
    y = torch.cat([labels, torch.full_like(labels, null)])
    v_cond, v_uncond = model(torch.cat([x, x]), torch.cat([tt, tt]), y).chunk(2)
    return v_cond + guidance * (v_cond - v_uncond)


def _start(
    model: Model,
    shape: tuple[int, ...],
    labels: torch.Tensor | None,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    x0: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The starting noise and the labels, on ``device`` (default: the model's)."""
    if device is None:
        p = next(model.parameters(), None) if isinstance(model, nn.Module) else None
        device = p.device if p is not None else torch.device("cpu")
    x = torch.randn(shape, generator=generator) if x0 is None else x0
    return x.to(device), None if labels is None else labels.to(device)


# samples, or (samples, trajectory)
SamplerOutput = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def sample_euler(
    model: Model,
    shape: tuple[int, ...],
    steps: int,
    labels: torch.Tensor | None = None,
    guidance: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    *,
    x0: torch.Tensor | None = None,
    trajectory: bool = False,
    null_label: int | None = None,
    time_scale: float = TIME_SCALE,
) -> SamplerOutput:
    """Integrate ``dx/dt = v(x, t)`` from noise at ``t = 0`` to ``t = 1`` by
    Euler's method: ``x <- x + h v(x, t)``, ``h = 1 / steps``.

    Uses ``steps`` network evaluations (one batch each, twice as wide with
    guidance) at ``t = 0, h, ..., 1 - h``, never at ``t = 1``.

    Args:
        shape: ``(B, D)`` or ``(B, C, H, W)``, the batch to sample.
        labels, guidance: as in :func:`velocity`.
        generator: a CPU generator for the starting noise (as ``Diffusion.sample``).
        device: default the model's.
        x0: the starting noise ``shape``, instead of drawing it.
        trajectory: also return the states at ``t = k / steps``.

    Returns:
        Samples ``shape`` at ``t = 1``; with ``trajectory``, also the path
        ``(steps + 1, *shape)``, starting noise first.

    Raises:
        ValueError: ``steps < 1`` and the errors of :func:`velocity`.
    """
    _check(model, shape, labels, steps=steps, x0=x0)
    x, y = _start(model, shape, labels, generator, device, x0)
    opts = dict(null_label=null_label, time_scale=time_scale)
    path = [x]
    for i in range(steps):
        x = x + velocity(model, x, i / steps, y, guidance, **opts) / steps
        if trajectory:
            path.append(x)
    return (x, torch.stack(path)) if trajectory else x


@torch.no_grad()
def sample_heun(
    model: Model,
    shape: tuple[int, ...],
    steps: int,
    labels: torch.Tensor | None = None,
    guidance: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    *,
    x0: torch.Tensor | None = None,
    trajectory: bool = False,
    null_label: int | None = None,
    time_scale: float = TIME_SCALE,
) -> SamplerOutput:
    """Integrate ``dx/dt = v(x, t)`` from ``t = 0`` to 1 by Heun's method: an
    Euler step to ``x'``, then the average slope ``(v(x, t) + v(x', t + h)) / 2``.

    The last step stays an Euler step, as in Karras et al. (2022), Algorithm 1: it would
    evaluate the network at ``t = 1``, where a data distribution with isolated
    points makes the velocity ``(x1 - x) / (1 - t)`` blow up. The error is still
    of second order, ``O(h^2)``. That makes ``2 * steps - 1`` network
    evaluations, against Euler's ``steps``. Arguments, returns and errors as in
    :func:`sample_euler`.
    """
    _check(model, shape, labels, steps=steps, x0=x0)
    x, y = _start(model, shape, labels, generator, device, x0)
    opts = dict(null_label=null_label, time_scale=time_scale)
    path = [x]
    for i in range(steps):
        v = velocity(model, x, i / steps, y, guidance, **opts)
        x_next = x + v / steps  # Euler's step
        if i + 1 < steps:  # Heun's correction: the mean of the slopes at both ends
            v_next = velocity(model, x_next, (i + 1) / steps, y, guidance, **opts)
            x_next = x + (v + v_next) / (2 * steps)
        x = x_next
        if trajectory:
            path.append(x)
    return (x, torch.stack(path)) if trajectory else x


def straightness(trajectory: torch.Tensor) -> torch.Tensor:
    """How far sampled paths are from straight lines: Liu et al. (2023)'s
    ``S = int_0^1 E ||(x_1 - x_0) - dx_t/dt||^2 dt``.

    ``S = 0`` exactly when every path is a straight line run at constant speed;
    it is in squared data units (summed over the dimensions of one example,
    averaged over examples). The derivative is the finite difference
    ``K (x_{k+1} - x_k)``, which for Euler's path is the network's velocity.

    Args:
        trajectory: ``(K + 1, B, ...)`` states at ``t = k / K``, as the samplers
            return with ``trajectory=True``.

    Returns:
        A scalar.

    Raises:
        ValueError: fewer than two states or no batch dimension.
    """
    if trajectory.dim() < 3 or len(trajectory) < 2:
        raise ValueError(
            f"trajectory must be (K + 1, B, ...) with K >= 1, got "
            f"{tuple(trajectory.shape)}"
        )
    slopes = (len(trajectory) - 1) * trajectory.diff(dim=0)  # (K, B, ...)
    chord = trajectory[-1] - trajectory[0]  # (B, ...): x_1 - x_0
    return (slopes - chord).pow(2).flatten(2).sum(2).mean()


def reflow_pairs(
    model: Model,
    n: int,
    shape: tuple[int, ...],
    steps: int,
    labels: torch.Tensor | None = None,
    guidance: float = 0.0,
    *,
    sampler: Callable[..., SamplerOutput] = sample_euler,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 500,
    null_label: int | None = None,
    time_scale: float = TIME_SCALE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise and the model's samples from it, ``(x0, x1)`` each ``(n, *shape)``:
    the coupling for one round of reflow (Liu et al. 2023).

    Training a fresh (or the same) network with ``flow_matching_loss(net, x1,
    x0=x0)`` on these pairs gives straighter paths than the independent
    coupling did.

    Args:
        shape: one example's shape, ``(D,)`` or ``(C, H, W)``.
        labels: ``(n,)`` for a conditional model; ``guidance`` as in
            :func:`velocity`.
        sampler: :func:`sample_euler` or :func:`sample_heun`, with ``steps``.
        generator: a CPU generator for ``x0``.
        batch_size: examples integrated together.

    Returns:
        ``(x0, x1)`` on ``device`` (default the model's).

    Raises:
        ValueError: ``n`` or ``batch_size`` below 1 and the samplers' errors.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be >= 1, got {n}, {batch_size}")
    _check(model, (n, *shape), labels, steps=steps)
    x0 = torch.randn((n, *shape), generator=generator)
    ys = [None] * n if labels is None else labels.split(batch_size)
    x1 = [
        sampler(
            model,
            z.shape,
            steps,
            y,
            guidance,
            device=device,
            x0=z,
            null_label=null_label,
            time_scale=time_scale,
        )
        for z, y in zip(x0.split(batch_size), ys)
    ]
    x1 = torch.cat(x1)
    return x0.to(x1.device), x1
