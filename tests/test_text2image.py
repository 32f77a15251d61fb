"""Tests for aigc_utils.text2image: attributes, captions, the text-conditioned
denoiser and guidance."""

from __future__ import annotations

import pytest
import torch

from aigc_utils.diffusion import NoiseSchedule
from aigc_utils.text2image import (
    PAD,
    VOCAB,
    CrossAttention,
    LatentAutoencoder,
    Terciles,
    TextDiffusion,
    TextEncoder,
    TextUNet,
    TextUNetConfig,
    attribute_accuracy,
    attributes,
    caption,
    caption_tokens,
    decode_tokens,
    held_out,
    null_tokens,
    tokenize,
)


def bar(width: int, shear: float = 0.0, length: int = 18) -> torch.Tensor:
    """A vertical bar ``(1, 28, 28)``; ``shear > 0`` moves its top to the right."""
    img = torch.zeros(1, 28, 28)
    top = (28 - length) // 2
    for r in range(top, top + length):
        c0 = 14 - width // 2 + round(shear * (14 - r))
        img[0, r, c0 : c0 + width] = 1.0
    return img


def test_thick_bar_is_thicker_and_thickness_is_about_the_width() -> None:
    a = attributes(torch.stack([bar(2), bar(4), bar(6)]))
    th = a["thickness"]
    assert th[0] < th[1] < th[2]
    # a w x L bar: 2 w L / (2 (w + L)) = w L / (w + L)
    for w, got in zip((2, 4, 6), th.tolist()):
        assert got == pytest.approx(w * 18 / (w + 18), rel=0.1)


def test_slant_sign_follows_the_shear() -> None:
    a = attributes(torch.stack([bar(3, 0.4), bar(3, 0.0), bar(3, -0.4)]))
    right, upright, left = a["slant"].tolist()
    assert right > 0.3 and left < -0.3 and abs(upright) < 1e-6
    assert right == pytest.approx(0.4, abs=0.05)


def test_attributes_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="blank"):
        attributes(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        attributes(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attributes(torch.rand(2, 1, 28, 28) * 2)
    with pytest.raises(TypeError):
        attributes(torch.ones(1, 1, 28, 28, dtype=torch.long))


def _bars_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    widths = [1, 2, 3, 4, 5, 6]
    x = torch.stack([bar(w, s) for w in widths for s in (-0.3, 0.0, 0.3)] * 10)
    return x, torch.arange(10).repeat_interleave(18)


def test_terciles_are_per_digit_and_split_into_thirds() -> None:
    x, y = _bars_dataset()
    x[y == 3] = torch.stack(  # thicker bars: digit 3's terciles differ
        [bar(w + 4, s) for w in range(1, 7) for s in (-0.3, 0, 0.3)]
    )
    t = Terciles.fit(x, y)
    assert t.thresholds["thickness"].shape == (10, 2)
    assert t.thresholds["thickness"][3, 0] > t.thresholds["thickness"][0, 1]
    lv = t.levels(x, y)
    for name in ("thickness", "slant"):
        counts = torch.bincount(lv[name][y == 0], minlength=3)
        assert counts.tolist() == [6, 6, 6]
    assert (lv["slant"][y == 0] == torch.tensor([0, 1, 2] * 6)).all()
    with pytest.raises(ValueError, match=">= 3 images"):
        Terciles.fit(x[:20], y[:20])
    with pytest.raises(ValueError, match="0..9"):
        t.levels(x[:2], torch.tensor([0, 10]))


def test_captions_and_tokens_round_trip() -> None:
    assert caption(7, 2, 2) == "a thick seven, slanted right"
    assert caption(4, 0) == "a thin four"
    assert caption(0, 1, 0) == "a zero, slanted left"
    assert caption(1) == "a one"
    texts = [caption(d, t, s) for d in range(10) for t in range(3) for s in range(3)]
    tok = tokenize(texts)
    assert tok.shape == (90, 6) and tok.dtype == torch.long
    assert decode_tokens(tok) == [t.replace(",", "") for t in texts]
    assert torch.equal(tokenize(decode_tokens(tok)), tok)
    d, t, s = torch.tensor([[d, t, s] for d in range(10) for t in range(3)
                            for s in range(3)]).T  # fmt: skip
    assert torch.equal(caption_tokens(d, t, s), tok)
    assert null_tokens(2).tolist() == [[1, PAD, PAD, PAD, PAD, PAD]] * 2


def test_caption_and_tokenize_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="vocabulary"):
        tokenize("a purple seven")
    with pytest.raises(ValueError, match="at most"):
        tokenize("a thick seven slanted right right")
    with pytest.raises(ValueError):
        caption(10)
    with pytest.raises(ValueError):
        caption(3, thickness=3)
    with pytest.raises(ValueError, match="terciles"):
        caption_tokens(torch.tensor([1]), torch.tensor([3]), torch.tensor([1]))


def test_held_out_marks_thin_fours_and_left_sevens() -> None:
    d = torch.tensor([4, 4, 7, 7, 1])
    lv = {
        "thickness": torch.tensor([0, 2, 0, 1, 0]),
        "slant": torch.tensor([1, 0, 2, 0, 0]),
    }
    assert held_out(d, lv).tolist() == [True, False, False, True, False]


def test_attribute_accuracy_scores_with_the_same_code() -> None:
    x, y = _bars_dataset()
    t = Terciles.fit(x, y)
    lv = t.levels(x, y)
    right = attribute_accuracy(x, y, lv["thickness"], lv["slant"], t)
    assert right["thickness"] == right["slant"] == right["all"] == 1.0
    wrong = attribute_accuracy(x, y, 2 - lv["thickness"], lv["slant"], t)
    assert wrong["thickness"] == 0.0 and wrong["slant"] == 1.0 and wrong["all"] < 0.7
    assert "digit" not in right


def test_cross_attention_shapes_and_padding_mask() -> None:
    torch.manual_seed(0)
    xa = CrossAttention(32, 16, n_heads=4)
    x, text = torch.randn(3, 32, 7, 7), torch.randn(3, 5, 16)
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]).bool()
    out, w = xa.attend(x, text, keep)
    assert out.shape == x.shape and w.shape == (3, 4, 49, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, 49))
    assert (w[0, ..., 3:] == 0).all()
    text2 = text.clone()
    text2[~keep] = 100.0  # a masked token must not change the output
    assert torch.equal(xa(x, text2, keep), out)
    text2[0, 0] += 1.0  # an unmasked one must
    assert not torch.allclose(xa(x, text2, keep), out)
    with pytest.raises(ValueError, match="all False"):
        xa(x, text, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="keep"):
        xa(x, text, keep[:2])


def test_text_encoder_and_unet_ignore_padding() -> None:
    torch.manual_seed(0)
    enc = TextEncoder()
    tok = tokenize(["a thin four", "a seven slanted left"])
    h, keep = enc(tok)
    assert h.shape == (2, 6, 64) and keep.sum(1).tolist() == [4, 5]
    net = TextUNet(TextUNetConfig(channels=16, n_heads=2))
    torch.nn.init.normal_(net.out[-1].weight)  # the output starts at zero
    z, t = torch.randn(2, 4, 7, 7), torch.tensor([10, 500])
    out = net(z, t, tok)
    assert out.shape == z.shape
    # the embedding of <pad> is only ever seen at masked positions
    with torch.no_grad():
        net.text.embed.weight[PAD] += 5.0
    assert torch.allclose(net(z, t, tok), out, atol=1e-6)
    pixel = TextUNet(TextUNetConfig(in_channels=1, channels=16, n_heads=2))
    assert pixel(torch.randn(2, 1, 28, 28), t, tok).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="<s>"):
        net(z, t, tok.roll(1, 1))
    with pytest.raises(TypeError):
        net(z, t, tok.float())
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        net(torch.randn(2, 1, 7, 7), t, tok)


def _model(seed: int = 0) -> TextDiffusion:
    torch.manual_seed(seed)
    net = TextUNet(TextUNetConfig(channels=16, n_heads=2))
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)
    return TextDiffusion(net, NoiseSchedule(50), word_dropout=0.3)


def test_guidance_weights() -> None:
    model = _model().eval()
    x, tok = torch.randn(3, 4, 7, 7), tokenize(["a two", "a thick six", "a nine"])
    tt = torch.full((3,), 20)
    cond = model.net(x, tt, tok)
    uncond = model.net(x, tt, null_tokens(3))
    assert not torch.allclose(cond, uncond)
    assert torch.allclose(
        model.predict_eps(x, 20, tok, 0.0), cond
    )  # w = 0: conditional
    assert torch.allclose(model.predict_eps(x, 20, tok, -1.0), uncond, atol=1e-5)
    assert torch.allclose(
        model.predict_eps(x, 20, tok, 2.0), 3 * cond - 2 * uncond, atol=1e-5
    )
    # guided with the empty caption = unconditional, whatever w
    assert torch.allclose(
        model.predict_eps(x, 20, null_tokens(3), 5.0), uncond, atol=1e-5
    )


def test_word_dropout_keeps_start_and_compacts() -> None:
    model = _model()
    tok = tokenize(["a thick seven, slanted right"] * 4000)
    torch.manual_seed(1)
    dropped = model.drop_words(tok)
    assert (dropped[:, 0] == 1).all()
    n_words = (dropped[:, 1:] != PAD).sum(1).float()
    # 5 words kept with prob 0.7 each, unless the caption is dropped (prob 0.1)
    assert n_words.mean().item() == pytest.approx(0.9 * 5 * 0.7, abs=0.1)
    assert (n_words == 0).float().mean().item() == pytest.approx(
        0.1 + 0.9 * 0.3**5, abs=0.02
    )
    pads_then_words = (dropped[:, 1:-1] == PAD) & (dropped[:, 2:] != PAD)
    assert not pads_then_words.any()  # padding only at the end


def test_sample_and_loss_with_captions() -> None:
    model = _model()
    tok = tokenize(["a thin four", "a seven, slanted left"])
    loss = model.loss((torch.randn(2, 4, 7, 7), tok))
    assert loss.dim() == 0 and torch.isfinite(loss)
    gen = torch.Generator().manual_seed(0)
    x = model.sample(2, (4, 7, 7), labels=tok, guidance=2.0, steps=5, generator=gen)
    gen = torch.Generator().manual_seed(0)
    x2 = model.sample(2, (4, 7, 7), labels=tok, guidance=2.0, steps=5, generator=gen)
    assert x.shape == (2, 4, 7, 7) and torch.equal(x, x2)
    with pytest.raises(ValueError, match="captions"):
        model.sample(2, (4, 7, 7), steps=5)
    with pytest.raises(ValueError, match="expected 2"):
        model.sample(2, (4, 7, 7), labels=tok[:1], steps=5)
    with pytest.raises(ValueError, match="dropout"):
        TextDiffusion(model.net, NoiseSchedule(50), word_dropout=1.0)


def test_autoencoder_shapes_scale_and_overfit() -> None:
    torch.manual_seed(0)
    ae = LatentAutoencoder()
    x = torch.stack([bar(w, s) for w in (2, 4) for s in (-0.3, 0.3)])
    assert ae.encode(x).shape == (4, 4, 7, 7)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = ae.loss(x).recon.item()
    for _ in range(150):
        opt.zero_grad()
        ae.loss(x).total.backward()
        opt.step()
    assert ae.loss(x).recon.item() < 0.3 * first
    scale = ae.fit_scale(x)
    z = ae.to_latent(x)
    assert z.std().item() == pytest.approx(1.0, rel=1e-4) and scale > 0
    y = ae.from_latent(z)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    with pytest.raises(ValueError, match=r"\(B, 4, 7, 7\)"):
        ae.decode(torch.randn(1, 4, 8, 8))


def test_vocab_is_small_and_unique() -> None:
    assert len(set(VOCAB)) == len(VOCAB) == 18
