"""DPO: the loss against a hand computation, log 2 at the reference, the
direction of its gradient, sequence log-probabilities against a manual gather,
the Monte-Carlo KL against the exact one, errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from aigc_utils.gpt import GPT, GPTConfig
from aigc_utils.preference import (
    DPOLoss,
    dpo_loss,
    kl_to_reference,
    sequence_logprob,
)

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)


def tiny_gpt(seed: int = 0, emb_std: float | None = None) -> GPT:
    torch.manual_seed(seed)
    model = GPT(CFG).eval()
    if emb_std is not None:  # larger embeddings: peakier next-token distributions
        nn.init.normal_(model.tok_emb.weight, std=emb_std)
    return model


def ids(b: int, t: int = CFG.block_size, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, CFG.vocab_size, (b, t), generator=g)


def test_dpo_loss_by_hand() -> None:
    pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    rc, rr = torch.tensor([-1.5, -2.0]), torch.tensor([-2.5, -1.5])
    # z = beta [(pc - rc) - (pr - rr)] = 0.5 [0.5 + 0.5], 0.5 [0 - 0.5]
    z1, z2 = 0.5, -0.25
    expected = (math.log1p(math.exp(-z1)) + math.log1p(math.exp(-z2))) / 2
    out = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert isinstance(out, DPOLoss)
    assert out.total.item() == pytest.approx(expected, rel=1e-6)
    assert out.reward_margin.item() == pytest.approx((z1 + z2) / 2)
    assert out.accuracy.item() == 0.5


def test_dpo_loss_is_log_two_at_the_reference() -> None:
    logp = -5 * torch.rand(6, generator=torch.Generator().manual_seed(0))
    chosen, rejected = logp[:3], logp[3:]
    out = dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta=0.1)
    assert out.total.item() == pytest.approx(math.log(2), rel=1e-6)
    assert out.reward_margin.item() == 0.0 and out.accuracy.item() == 0.0


def test_dpo_gradient_closed_form_and_direction() -> None:
    pc = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    pr = torch.tensor([-3.0, -1.0, -0.7], requires_grad=True)
    rc, rr = torch.tensor([-1.5, -2.0, -1.0]), torch.tensor([-2.5, -1.5, -0.2])
    rc.requires_grad_(True)
    beta = 0.5
    dpo_loss(pc, pr, rc, rr, beta).total.backward()
    z = beta * ((pc - rc) - (pr - rr)).detach()
    # d/dpc of -log sigmoid(z) / B is -beta sigmoid(-z) / B
    expected = -beta * torch.sigmoid(-z) / 3
    torch.testing.assert_close(pc.grad, expected)
    torch.testing.assert_close(pr.grad, -expected)
    assert torch.all(pc.grad < 0) and torch.all(pr.grad > 0)
    assert rc.grad is None  # the reference is detached


def test_one_sgd_step_on_a_gpt_increases_the_margin() -> None:
    policy, prompt_len = tiny_gpt(), 3
    reference = copy.deepcopy(policy).requires_grad_(False)
    chosen, rejected = ids(4, seed=1), ids(4, seed=2)
    rejected[:, :prompt_len] = chosen[:, :prompt_len]  # one prompt per pair
    with torch.no_grad():
        rc = sequence_logprob(reference, chosen, prompt_len)
        rr = sequence_logprob(reference, rejected, prompt_len)

    def step() -> DPOLoss:
        pc = sequence_logprob(policy, chosen, prompt_len)
        pr = sequence_logprob(policy, rejected, prompt_len)
        return dpo_loss(pc, pr, rc, rr, beta=0.5)

    first = step()
    assert first.total.item() == pytest.approx(math.log(2), rel=1e-6)
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    opt.zero_grad()
    first.total.backward()
    opt.step()
    second = step()
    assert second.reward_margin > first.reward_margin + 1e-3
    assert second.total < first.total and second.accuracy == 1.0


def test_sequence_logprob_is_a_gather_of_log_softmax() -> None:
    model, x, prompt_len = tiny_gpt(emb_std=0.5), ids(3), 3
    got = sequence_logprob(model, x, prompt_len)
    assert got.shape == (3,)
    logp = model(x)[0].log_softmax(dim=-1)
    manual = torch.stack(
        [
            sum(logp[b, t - 1, x[b, t]] for t in range(prompt_len, x.shape[1]))
            for b in range(x.shape[0])
        ]
    )
    torch.testing.assert_close(got, manual)
    # with a one-token prompt it is minus the summed next-token cross-entropy
    loss = model(x[:, :-1], x[:, 1:])[1]
    whole = sequence_logprob(model, x, 1)
    torch.testing.assert_close(whole.sum(), -loss * x[:, 1:].numel())


def test_kl_to_reference_is_zero_for_the_same_model() -> None:
    model = tiny_gpt()
    x = model.generate(ids(8, t=2), 4, generator=torch.Generator().manual_seed(0))
    assert kl_to_reference(model, copy.deepcopy(model), x, 2).item() == 0.0


def test_kl_to_reference_matches_the_exact_kl() -> None:
    policy, reference = tiny_gpt(seed=1, emb_std=0.5), tiny_gpt(seed=2, emb_std=0.5)
    t, n = 4, 2000
    prompts = ids(n, t=t - 1, seed=3)
    x = policy.generate(prompts, 1, generator=torch.Generator().manual_seed(4))
    estimate = kl_to_reference(policy, reference, x, t - 1)
    with torch.no_grad():
        logp = policy(prompts)[0][:, -1].log_softmax(-1)
        logq = reference(prompts)[0][:, -1].log_softmax(-1)
        exact = (logp.exp() * (logp - logq)).sum(-1).mean()
        terms = sequence_logprob(policy, x, t - 1) - sequence_logprob(
            reference, x, t - 1
        )
    stderr = terms.std() / math.sqrt(n)
    assert exact > 0.05 and estimate > 0
    assert abs(estimate - exact) < 4 * stderr
    assert not estimate.requires_grad


def test_errors() -> None:
    model, x = tiny_gpt(), ids(2)
    one = torch.zeros(3)
    with pytest.raises(ValueError, match="prompt_len must be an int in 1..7"):
        sequence_logprob(model, x, 0)
    with pytest.raises(ValueError, match="prompt_len must be an int in 1..7"):
        sequence_logprob(model, x, 8)
    with pytest.raises(ValueError, match="prompt_len must be an int"):
        kl_to_reference(model, model, x, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idx must be a"):
        sequence_logprob(model, x.float(), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="logits of shape"):
        sequence_logprob(lambda idx: (idx.float(), None), x, 2)  # type: ignore
    with pytest.raises(ValueError, match="one non-empty shape"):
        dpo_loss(one, one, one, torch.zeros(4), beta=0.1)
    with pytest.raises(ValueError, match="one non-empty shape"):
        dpo_loss(*[torch.zeros(0)] * 4, beta=0.1)
    with pytest.raises(ValueError, match="ref_chosen must be a floating"):
        dpo_loss(one, one, torch.zeros(3, 1), one, beta=0.1)
    with pytest.raises(ValueError, match="policy_chosen must be a floating"):
        dpo_loss(torch.zeros(3, dtype=torch.long), one, one, one, beta=0.1)
    for beta in (0.0, -1.0):
        with pytest.raises(ValueError, match="beta must be a positive number"):
            dpo_loss(one, one, one, one, beta=beta)
