"""How good are generated samples? Metrics for images and text.

Image metrics work in the feature space of the course's MNIST classifier
(:mod:`aigc_utils.evaluator`): a **classifier-FID** (the Fréchet distance of
Heusel et al. 2017 computed on that classifier's 128-d features, *not* on
Inception-v3's 2048-d features, so its values are not comparable with papers'
FIDs), an Inception-Score analogue (Salimans et al. 2016), label accuracy,
class histograms, precision and recall of k-NN manifolds (Kynkäänniemi et al.
2019) and a memorisation check. Text metrics measure likelihood (nats, bits per
character, perplexity), diversity (distinct-n) and copying (the longest
substring shared with the training text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# ------------------------------------------------------------------ checks


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """Raise ValueError unless ``images`` is ``(N, 1, 28, 28)`` float in [0, 1]."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{name} must be in [0, 1], got [{lo:.3g}, {hi:.3g}]; map tanh outputs "
            "with (x + 1) / 2 first"
        )


def _check_2d(x: torch.Tensor, name: str, min_rows: int = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D floating-point tensor (N, D)")
    if len(x) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {len(x)}")
    return x.double()


# -------------------------------------------------------- classifier outputs


@torch.no_grad()
def evaluate_images(
    evaluator: nn.Module, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(N, D)`` and class probabilities ``(N, 10)`` of ``images``
    ``(N, 1, 28, 28)`` in [0, 1], on the CPU, in float32."""
    check_images(images)
    evaluator.eval()
    device = next(evaluator.parameters()).device
    feats, probs = [], []
    for x in images.split(batch_size):
        f = evaluator.features(x.to(device))
        feats.append(f.cpu())
        probs.append(evaluator.head(f).softmax(1).cpu())
    return torch.cat(feats), torch.cat(probs)


def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) for class probabilities ``(N, K)``.

    1 when every prediction is the same distribution; K when each prediction is
    certain and the classes are used equally.
    """
    p = _check_2d(probs, "probs")
    if (p < 0).any() or not torch.allclose(
        p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4
    ):
        raise ValueError("probs must be non-negative rows summing to 1")
    marginal = p.mean(0, keepdim=True)
    kl = torch.xlogy(p, p) - torch.xlogy(p, marginal.expand_as(p))
    return math.exp(kl.sum(1).mean().item())


def label_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of samples whose predicted class equals the requested ``labels``."""
    _check_2d(probs, "probs")
    if labels.shape != probs.shape[:1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match probs {tuple(probs.shape)}"
        )
    return (probs.argmax(1) == labels.to(probs.device)).double().mean().item()


def class_histogram(probs: torch.Tensor) -> torch.Tensor:
    """Share of samples predicted as each class, ``(K,)`` summing to 1."""
    p = _check_2d(probs, "probs")
    return torch.bincount(p.argmax(1), minlength=p.shape[1]).double() / len(p)


# ------------------------------------------------------- Fréchet distance


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ‖mu1 − mu2‖² + tr(sigma1 + sigma2 − 2 (sigma1^½ sigma2 sigma1^½)^½).

    The matrix square root is taken of a symmetric positive semi-definite matrix
    through its eigenvalues, which is stable even for singular covariances.
    """
    mu1, mu2 = mu1.double(), mu2.double()
    s1, s2 = sigma1.double(), sigma2.double()
    d = mu1.shape[-1]
    if (
        mu1.shape != (d,)
        or mu2.shape != (d,)
        or s1.shape != (d, d)
        or s2.shape != (d, d)
    ):
        raise ValueError(
            "need mu1, mu2 of shape (D,) and sigma1, sigma2 of shape (D, D)"
        )
    w1, v1 = torch.linalg.eigh((s1 + s1.T) / 2)
    root1 = v1 @ torch.diag(w1.clamp(min=0).sqrt()) @ v1.T
    inner = root1 @ s2 @ root1
    trace_root = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * trace_root
    return max(value.item(), 0.0)


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of ``features`` ``(N, D)``.

    Raises:
        ValueError: fewer than D + 1 samples (the covariance would be singular
            and the distance meaningless).
    """
    f = _check_2d(features, "features", min_rows=2)
    if len(f) <= f.shape[1]:
        raise ValueError(
            f"{len(f)} samples are too few for the covariance of {f.shape[1]}-d "
            f"features: use at least {f.shape[1] + 1} (in practice thousands)"
        )
    return f.mean(0), torch.cov(f.T)


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)``."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


# ------------------------------------------------------ precision and recall


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = []
    for part in x.split(chunk):
        d = torch.cdist(part, x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the row itself
    return torch.cat(radii)


def _covered(
    points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    inside = []
    for part in points.split(2048):
        inside.append((torch.cdist(part, centres) <= radii).any(1))
    return torch.cat(inside)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points with radius the
    distance to the k-th nearest neighbour. Precision: share of fake samples
    inside the real manifold (fidelity). Recall: share of real samples inside
    the fake manifold (diversity, coverage).

    Args:
        real, fake: features ``(N, D)`` and ``(M, D)``, each with more than k rows.
    """
    r = _check_2d(real, "real", min_rows=k + 1).float()
    f = _check_2d(fake, "fake", min_rows=k + 1).float()
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    precision = _covered(f, r, _kth_nn_radius(r, k)).double().mean().item()
    recall = _covered(r, f, _kth_nn_radius(f, k)).double().mean().item()
    return precision, recall


# ------------------------------------------------------------ memorisation


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each query ``(N, ...)`` to its nearest reference
    ``(M, ...)`` (flattened), ``(N,)``."""
    q = queries.flatten(1).float()
    ref = reference.flatten(1).float()
    if q.shape[1] != ref.shape[1]:
        raise ValueError(f"sizes differ: {tuple(q.shape)} vs {tuple(ref.shape)}")
    return torch.cat([torch.cdist(part, ref).min(1).values for part in q.split(512)])


def memorization(
    samples: torch.Tensor,
    train: torch.Tensor,
    heldout: torch.Tensor,
    quantile: float = 0.05,
) -> dict[str, float]:
    """Do samples copy training images more closely than unseen real images do?

    For each sample, the distance to its nearest training image (in pixels).
    The reference is the same distance for held-out real images: a model that
    generalises produces samples about as far from the training set as new
    real data is. ``copy_share`` is the share of samples closer to a training
    image than ``quantile`` of held-out images are (about ``quantile`` for a
    model that does not copy, near 1 for one that does).

    Returns:
        ``{"sample_nn_median", "heldout_nn_median", "copy_share", "threshold"}``.
    """
    if not 0 < quantile < 1:
        raise ValueError("quantile must be in (0, 1)")
    d_samples = nearest_distances(samples, train)
    d_heldout = nearest_distances(heldout, train)
    threshold = torch.quantile(d_heldout, quantile).item()
    return {
        "sample_nn_median": d_samples.median().item(),
        "heldout_nn_median": d_heldout.median().item(),
        "copy_share": (d_samples < threshold).double().mean().item(),
        "threshold": threshold,
    }


# -------------------------------------------------------------------- text


def cross_entropy_nats(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean next-token cross-entropy in nats of ``logits`` ``(..., V)`` against
    integer ``targets`` ``(...)``."""
    if logits.shape[:-1] != targets.shape or targets.is_floating_point():
        raise ValueError(
            f"need logits (..., V) and integer targets (...), got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)} {targets.dtype}"
        )
    flat = logits.reshape(-1, logits.shape[-1]).double()
    return torch.nn.functional.cross_entropy(flat, targets.reshape(-1)).item()


def _check_nats(nats: float) -> float:
    nats = float(nats)
    if not nats >= 0:  # also rejects NaN
        raise ValueError(f"a cross-entropy must be a number >= 0 nats, got {nats}")
    return nats


def bits_per_char(nats: float) -> float:
    """Convert a cross-entropy in nats per character to bits per character."""
    return _check_nats(nats) / math.log(2)


def perplexity(nats: float) -> float:
    """exp(cross-entropy): the effective number of equally likely next tokens."""
    return math.exp(_check_nats(nats))


def distinct_n(tokens: Sequence[object] | str, n: int) -> float:
    """Unique n-grams divided by all n-grams of ``tokens`` (characters of a
    string, or any sequence). 1.0: nothing repeats; near 0: loops."""
    if n < 1:
        raise ValueError("n must be >= 1")
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        raise ValueError(f"need at least {n} tokens for distinct-{n}")
    return len(set(grams)) / len(grams)


def longest_copied_substring(sample: str, training_text: str) -> str:
    """The longest substring of ``sample`` that occurs verbatim in ``training_text``.

    Two pointers: if ``sample[i:j]`` occurs, so does ``sample[i+1:j]``, so the
    end never moves back and the search makes O(len(sample)) substring tests.
    """
    if not isinstance(sample, str) or not isinstance(training_text, str):
        raise ValueError("sample and training_text must both be str")
    best, j = "", 0
    for i in range(len(sample)):
        j = max(j, i)
        while j < len(sample) and sample[i : j + 1] in training_text:
            j += 1
        if j - i > len(best):
            best = sample[i:j]
    return best
