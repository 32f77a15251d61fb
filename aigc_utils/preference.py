"""Learning from preferences: Direct Preference Optimization, DPO (Rafailov et al.
2023, arXiv:2305.18290).

Given a prompt ``x`` and two answers, a preferred ``y_w`` (chosen) and a
dispreferred ``y_l`` (rejected), DPO trains the policy ``pi`` directly, with no
reward model and no reinforcement learning, against a frozen reference ``pi_ref``
(usually the fine-tuned model it starts from)::

    L = -log sigmoid(beta [(log pi(y_w|x) - log pi_ref(y_w|x))
                           - (log pi(y_l|x) - log pi_ref(y_l|x))])

``beta log pi(y|x) / pi_ref(y|x)`` is the **implicit reward** of an answer; the
loss is the Bradley-Terry negative log-likelihood that the chosen answer has the
higher reward. In code::

    pc = sequence_logprob(policy, chosen, prompt_len)        # (B,)
    pr = sequence_logprob(policy, rejected, prompt_len)
    with torch.no_grad():
        rc = sequence_logprob(reference, chosen, prompt_len)
        rr = sequence_logprob(reference, rejected, prompt_len)
    out = dpo_loss(pc, pr, rc, rr, beta=0.1)                 # DPOLoss
    out.total.backward()

Sequences are ``(B, T)`` token ids whose first ``prompt_len`` tokens are the
prompt; every answer of a batch has the same length ``T - prompt_len``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gpt import describe

__all__ = ["DPOLoss", "dpo_loss", "kl_to_reference", "sequence_logprob"]


class DPOLoss(NamedTuple):
    """The DPO loss and two diagnostics.

    ``total``: the mean loss (a scalar with gradient). ``reward_margin``: the mean
    of ``beta [(pi_c - ref_c) - (pi_r - ref_r)]``, how much higher the implicit
    reward of the chosen answer is (detached). ``accuracy``: the share of pairs
    whose chosen answer has the higher implicit reward (detached, in [0, 1]).
    """

    total: Tensor
    reward_margin: Tensor
    accuracy: Tensor


def _check_prompt(idx: object, prompt_len: object) -> Tensor:
    if not isinstance(idx, Tensor) or idx.dtype != torch.long or idx.dim() != 2:
        raise ValueError(
            f"idx must be a (B, T) int64 tensor of token ids, got {describe(idx)}"
        )
    t = idx.shape[1]
    if (
        isinstance(prompt_len, bool)
        or not isinstance(prompt_len, int)
        or not 1 <= prompt_len < t
    ):
        raise ValueError(
            f"prompt_len must be an int in 1..{t - 1} for sequences of length T={t} "
            f"(at least one prompt token and one answer token), got {prompt_len!r}"
        )
    return idx


def sequence_logprob(model: nn.Module, idx: Tensor, prompt_len: int) -> Tensor:
    """``log p(answer | prompt)``: the sum of the log-probabilities the model gives
    the tokens after the prompt.

    Args:
        model: a language model whose ``model(idx)`` returns ``(logits, loss)``,
            logits ``(B, T, V)`` for the token after each position (a GPT).
        idx: ``(B, T)`` int64, prompt ``idx[:, :prompt_len]`` followed by the
            answer ``idx[:, prompt_len:]``.
        prompt_len: number of prompt tokens, ``1 <= prompt_len < T``.

    Returns:
        ``(B,)`` log-probabilities in nats (with gradient, if the model has one).

    Raises:
        ValueError: ``idx`` not a ``(B, T)`` int64 tensor, ``prompt_len`` outside
            ``1..T-1``, or logits of the wrong shape.
    """
    _check_prompt(idx, prompt_len)
    logits = model(idx)[0]
    b, t = idx.shape
    if (
        not isinstance(logits, Tensor)
        or logits.dim() != 3
        or logits.shape[:2]
        != (
            b,
            t,
        )
    ):
        got = tuple(logits.shape) if isinstance(logits, Tensor) else logits
        raise ValueError(
            f"model(idx)[0] must be logits of shape ({b}, {t}, V), got {got}"
        )
    # position i predicts token i + 1: the answer is predicted from prompt_len - 1 on
    logp = F.log_softmax(logits[:, prompt_len - 1 : -1], dim=-1)
    answer = idx[:, prompt_len:]
    return logp.gather(-1, answer.unsqueeze(-1)).squeeze(-1).sum(dim=-1)


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float,
) -> DPOLoss:
    """The DPO loss ``-log sigmoid(beta [(pi_c - ref_c) - (pi_r - ref_r)])``,
    averaged over the batch (Rafailov et al. 2023, eq. 7).

    Args:
        policy_chosen, policy_rejected: ``(B,)`` sequence log-probabilities of
            the chosen and rejected answers under the policy.
        ref_chosen, ref_rejected: ``(B,)`` the same under the frozen reference;
            they are detached, so no gradient reaches the reference.
        beta: ``> 0``, the strength of the implicit KL penalty; small ``beta``
            lets the policy move far from the reference (0.1 is common).

    Returns:
        ``DPOLoss(total, reward_margin, accuracy)``, all scalars.

    Raises:
        ValueError: inputs not four floating ``(B,)`` tensors of one shape with
            ``B >= 1``, or ``beta <= 0``.
    """
    named = {
        "policy_chosen": policy_chosen,
        "policy_rejected": policy_rejected,
        "ref_chosen": ref_chosen,
        "ref_rejected": ref_rejected,
    }
    for name, x in named.items():
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 1:
            raise ValueError(
                f"{name} must be a floating (B,) tensor of log-probabilities, "
                f"got {describe(x)}"
            )
    shapes = {name: tuple(x.shape) for name, x in named.items()}
    if len(set(shapes.values())) != 1 or policy_chosen.numel() == 0:
        raise ValueError(
            f"the four log-probabilities need one non-empty shape (B,), got {shapes}"
        )
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    chosen = policy_chosen - ref_chosen.detach()  # log pi/pi_ref of y_w
    rejected = policy_rejected - ref_rejected.detach()
    z = beta * (chosen - rejected)  # implicit reward margin per pair
    total = -F.logsigmoid(z).mean()
    z = z.detach()
    return DPOLoss(total, z.mean(), (z > 0).float().mean())


@torch.no_grad()
def kl_to_reference(
    policy: nn.Module, reference: nn.Module, idx: Tensor, prompt_len: int
) -> Tensor:
    """A Monte-Carlo estimate of ``KL(pi || pi_ref)`` over answers, from samples.

    ``mean over b of [log pi(y_b|x_b) - log pi_ref(y_b|x_b)]``: the answers
    ``idx[:, prompt_len:]`` must have been sampled from ``policy`` (e.g. with
    ``policy.generate``) for this to be unbiased. A single sample's term can be
    negative; only the average tends to the KL, which is ``>= 0``. It is a
    monitor, computed without gradient (the gradient of this estimate is not
    the gradient of the KL).

    Args:
        policy, reference: language models as in :func:`sequence_logprob`.
        idx: ``(B, T)`` int64, prompts followed by answers sampled from ``policy``.
        prompt_len: number of prompt tokens, ``1 <= prompt_len < T``.

    Returns:
        A scalar tensor, nats per answer.

    Raises:
        ValueError: as :func:`sequence_logprob`.
    """
    diff = sequence_logprob(policy, idx, prompt_len) - sequence_logprob(
        reference, idx, prompt_len
    )
    return diff.mean()
