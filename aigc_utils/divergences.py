"""Information-theoretic quantities: entropy, cross-entropy, KL and JS divergences.

Discrete distributions are tensors ``(..., K)`` of probabilities that sum to 1
along the last dimension; the leading dimensions are a batch and broadcast. All
logarithms are natural, so the results are in nats. Zero probabilities follow
the conventions of information theory: ``0 * log 0 = 0``, and
``KL(p || q) = +inf`` as soon as ``p > 0`` where ``q = 0``.

:func:`gaussian_kl` is the closed-form KL divergence between diagonal Gaussians
that the VAE's loss uses.
"""

from __future__ import annotations

import torch

__all__ = [
    "cross_entropy",
    "entropy",
    "gaussian_kl",
    "js_divergence",
    "kl_divergence",
]


def _check_probs(p: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``p`` is a ``(..., K)`` float tensor of distributions."""
    if not isinstance(p, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(p).__name__}")
    if not p.is_floating_point():
        raise ValueError(
            f"{name} must have a floating-point dtype, got {p.dtype}; "
            "convert it with .float()"
        )
    if p.dim() == 0 or p.shape[-1] == 0:
        raise ValueError(
            f"{name} must have shape (..., K) with K >= 1, got {tuple(p.shape)}"
        )
    values = p.detach()
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (values < 0).any():
        raise ValueError(
            f"{name} has negative entries (smallest {values.min().item():.3g}); "
            "probabilities must be >= 0 (did you pass logits or log-probabilities?)"
        )
    k = p.shape[-1]
    atol = max(1e-6, 10 * k * torch.finfo(p.dtype).eps)
    worst = (values.sum(-1) - 1).abs().max().item()
    if worst > atol:
        raise ValueError(
            f"{name} does not sum to 1 along the last dimension (off by up to "
            f"{worst:.3g}, tolerance {atol:.1g}); normalise it, e.g. with softmax"
        )


def _check_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    """Check two distributions and that their shapes can be compared."""
    _check_probs(p, "p")
    _check_probs(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"p and q must have the same number of outcomes K (last dimension), "
            f"got shapes {tuple(p.shape)} and {tuple(q.shape)}"
        )
    try:
        torch.broadcast_shapes(p.shape, q.shape)
    except RuntimeError:
        raise ValueError(
            f"the batch shapes of p {tuple(p.shape)} and q {tuple(q.shape)} "
            "do not broadcast"
        ) from None


def _p_log_ratio(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Elementwise ``p * log(p / q)`` with ``0 log(0 / q) = 0``; ``+inf`` if q = 0 < p.

    The ``where`` guards keep gradients finite at zero entries of ``p``.
    """
    p, q = torch.broadcast_tensors(p, q)
    present = p > 0
    safe_p = torch.where(present, p, torch.ones_like(p))
    safe_q = torch.where(present, q, torch.ones_like(q))
    terms = safe_p * (safe_p.log() - safe_q.log())
    return torch.where(present, terms, torch.zeros_like(terms))


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = -sum_k p_k log p_k`` in nats.

    Args:
        p: ``(..., K)`` probabilities summing to 1 along the last dimension.

    Returns:
        ``(...)``, in ``[0, log K]``.

    Raises:
        ValueError: not a float tensor, negative or non-finite entries, rows
            that do not sum to 1, or an empty last dimension.
    """
    _check_probs(p, "p")
    present = p > 0
    safe_p = torch.where(present, p, torch.ones_like(p))
    terms = torch.where(present, safe_p * safe_p.log(), torch.zeros_like(p))
    return -terms.sum(-1)


def cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``H(p, q) = -sum_k p_k log q_k = H(p) + KL(p || q)`` in nats.

    Args:
        p: ``(..., K)`` the reference distribution (e.g. the data).
        q: ``(..., K)`` the model; the batch shapes of ``p`` and ``q`` broadcast.

    Returns:
        ``(...)``, ``+inf`` where some ``p_k > 0`` has ``q_k = 0``.

    Raises:
        ValueError: as for :func:`entropy`, for either argument, or when the
            shapes do not match.
    """
    _check_pair(p, q)
    p, q = torch.broadcast_tensors(p, q)
    present = p > 0
    safe_q = torch.where(present, q, torch.ones_like(q))
    terms = torch.where(present, p * safe_q.log(), torch.zeros_like(p))
    return -terms.sum(-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Kullback-Leibler divergence ``KL(p || q) = sum_k p_k log(p_k / q_k)``.

    Not symmetric: ``KL(p || q) != KL(q || p)`` in general.

    Args:
        p, q: ``(..., K)`` probabilities; the batch shapes broadcast.

    Returns:
        ``(...)``, ``>= 0``, zero iff ``p == q``, ``+inf`` where some ``p_k > 0``
        has ``q_k = 0``.

    Raises:
        ValueError: as for :func:`cross_entropy`.
    """
    _check_pair(p, q)
    return _p_log_ratio(p, q).sum(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence ``JSD = KL(p || m) / 2 + KL(q || m) / 2``.

    Here ``m = (p + q) / 2``. Symmetric, finite even where the supports differ.

    Args:
        p, q: ``(..., K)`` probabilities; the batch shapes broadcast.

    Returns:
        ``(...)``, in ``[0, log 2]``; ``log 2`` exactly when the supports are
        disjoint.

    Raises:
        ValueError: as for :func:`cross_entropy`.
    """
    _check_pair(p, q)
    m = (p + q) / 2
    return (_p_log_ratio(p, m).sum(-1) + _p_log_ratio(q, m).sum(-1)) / 2


def _check_gaussian(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have shape (..., D), got a scalar")


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | None = None,
    logvar_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """``KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p)))``.

    Summed over the last dimension::

        KL = 1/2 * sum_d [ logvar_p - logvar_q
                           + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1 ]

    With the default standard normal prior (``mu_p = 0``, ``logvar_p = 0``) this
    is ``-1/2 * sum_d (1 + logvar_q - mu_q^2 - exp(logvar_q))``, the KL term of
    the VAE. Variances are passed as log-variances so that any real number is
    valid; the result overflows to ``+inf`` only when the true value exceeds the
    dtype's range.

    Args:
        mu_q, logvar_q: ``(..., D)`` mean and log-variance of ``q`` (same shape).
        mu_p, logvar_p: those of ``p``, broadcastable to ``(..., D)``; ``None``
            means 0 (a standard normal prior), each independently.

    Returns:
        ``(...)``: one KL per batch element, ``>= 0``.

    Raises:
        ValueError: a non-tensor or non-float argument, a scalar, ``mu_q`` and
            ``logvar_q`` of different shapes, or prior shapes that do not
            broadcast to theirs.
    """
    _check_gaussian("mu_q", mu_q)
    _check_gaussian("logvar_q", logvar_q)
    if mu_q.shape != logvar_q.shape:
        raise ValueError(
            f"mu_q {tuple(mu_q.shape)} and logvar_q {tuple(logvar_q.shape)} "
            "must have the same shape (..., D)"
        )
    if mu_p is None and logvar_p is None:
        return -0.5 * (1 + logvar_q - mu_q.pow(2) - logvar_q.exp()).sum(-1)
    mu_p = torch.zeros_like(mu_q) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(logvar_q) if logvar_p is None else logvar_p
    _check_gaussian("mu_p", mu_p)
    _check_gaussian("logvar_p", logvar_p)
    for name, x in (("mu_p", mu_p), ("logvar_p", logvar_p)):
        try:
            shape = torch.broadcast_shapes(x.shape, mu_q.shape)
        except RuntimeError:
            shape = None
        if shape != mu_q.shape:
            raise ValueError(
                f"{name} {tuple(x.shape)} must broadcast to the shape of mu_q "
                f"{tuple(mu_q.shape)}"
            )
    # ratios computed as exp(differences) so that large log-variances of the same
    # size cancel instead of overflowing
    var_ratio = (logvar_q - logvar_p).exp()
    mahalanobis = (mu_q - mu_p).pow(2) * (-logvar_p).exp()
    return 0.5 * (var_ratio + mahalanobis - 1 - (logvar_q - logvar_p)).sum(-1)
