"""aigc_utils.metrics and the shipped evaluator: closed forms and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_utils import evaluator as ev
from aigc_utils import metrics as m


def test_frechet_distance_of_known_gaussians() -> None:
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    d = m.frechet_distance(
        torch.tensor([1.0]),
        torch.tensor([[4.0]]),
        torch.tensor([-2.0]),
        torch.tensor([[1.0]]),
    )
    assert d == pytest.approx(9.0 + 1.0)
    # commuting covariances: sum over dims of (mu diff)^2 + (sqrt a - sqrt b)^2
    a, b = torch.tensor([1.0, 9.0, 0.25]), torch.tensor([4.0, 1.0, 0.25])
    mu = torch.zeros(3)
    expected = ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    assert m.frechet_distance(mu, torch.diag(a), mu, torch.diag(b)) == pytest.approx(
        expected
    )
    # a general case against the formula with an explicit matrix square root
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(4, 4, generator=g, dtype=torch.float64),
        torch.randn(4, 4, generator=g, dtype=torch.float64),
    )
    s1, s2 = x @ x.T + 0.1 * torch.eye(4), y @ y.T + 0.1 * torch.eye(4)
    w, v = torch.linalg.eig(s1 @ s2)
    root_trace = w.sqrt().real.sum().item()
    expected = (s1.trace() + s2.trace()).item() - 2 * root_trace
    assert m.frechet_distance(
        mu[:1].repeat(4), s1, mu[:1].repeat(4), s2
    ) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_zero_for_identical_and_bad_shapes() -> None:
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(500, 8, generator=g)
    assert m.fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        m.frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(3))


def test_feature_statistics_needs_enough_samples() -> None:
    with pytest.raises(ValueError, match="too few"):
        m.feature_statistics(torch.randn(8, 8))
    with pytest.raises(ValueError, match="2-D"):
        m.feature_statistics(torch.randn(8))
    mu, cov = m.feature_statistics(torch.randn(100, 3))
    assert mu.shape == (3,) and cov.shape == (3, 3)


def test_inception_score_closed_forms() -> None:
    uniform = torch.full((50, 10), 0.1)
    assert m.inception_score(uniform) == pytest.approx(1.0)
    one_hot = torch.eye(10).repeat(5, 1)
    assert m.inception_score(one_hot) == pytest.approx(10.0)
    collapsed = torch.eye(10)[torch.zeros(50, dtype=torch.long)]
    assert m.inception_score(collapsed) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="summing to 1"):
        m.inception_score(torch.ones(5, 10))


def test_label_accuracy_and_histogram() -> None:
    probs = torch.eye(3)[torch.tensor([0, 1, 2, 2])]
    assert m.label_accuracy(probs, torch.tensor([0, 1, 2, 0])) == 0.75
    assert m.class_histogram(probs).tolist() == [0.25, 0.25, 0.5]
    with pytest.raises(ValueError, match="do not match"):
        m.label_accuracy(probs, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        m.class_histogram(torch.ones(3))


def test_precision_recall() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 2, generator=g)
    p, r = m.precision_recall(real, real.clone(), k=3)
    assert p == 1.0 and r == 1.0
    # fakes on half of the data: full precision, about half the recall
    half = real[real[:, 0] > 0]
    p, r = m.precision_recall(real, half, k=3)
    assert p == 1.0 and 0.3 < r < 0.7
    # fakes far away: neither
    p, r = m.precision_recall(real, real + 100.0, k=3)
    assert p == 0.0 and r == 0.0
    with pytest.raises(ValueError, match="feature sizes"):
        m.precision_recall(real, torch.randn(10, 3), k=3)
    with pytest.raises(ValueError, match="at least 4 rows"):
        m.precision_recall(real, real[:3], k=3)


def test_memorization_catches_copies() -> None:
    g = torch.Generator().manual_seed(0)
    train, heldout = (
        torch.rand(300, 1, 4, 4, generator=g),
        torch.rand(100, 1, 4, 4, generator=g),
    )
    copies = m.memorization(train[:50], train, heldout)
    fresh = m.memorization(torch.rand(50, 1, 4, 4, generator=g), train, heldout)
    assert copies["copy_share"] == 1.0 and copies["sample_nn_median"] == 0.0
    assert fresh["copy_share"] < 0.2
    with pytest.raises(ValueError, match="quantile"):
        m.memorization(train, train, heldout, quantile=1.0)
    with pytest.raises(ValueError, match="sizes differ"):
        m.nearest_distances(torch.rand(2, 5), torch.rand(3, 4))


def test_check_images() -> None:
    m.check_images(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="shape"):
        m.check_images(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.check_images(torch.rand(2, 1, 28, 28) * 2 - 1)
    with pytest.raises(ValueError, match="floating"):
        m.check_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        m.check_images(torch.zeros(0, 1, 28, 28))


def test_text_metrics() -> None:
    v = 7
    nats = m.cross_entropy_nats(torch.zeros(3, 5, v), torch.randint(0, v, (3, 5)))
    assert nats == pytest.approx(math.log(v))
    assert m.perplexity(nats) == pytest.approx(v)
    assert m.bits_per_char(math.log(2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="integer targets"):
        m.cross_entropy_nats(torch.zeros(3, v), torch.zeros(3))
    assert m.distinct_n("abcabc", 1) == 0.5
    assert m.distinct_n("abcd", 2) == 1.0
    assert m.distinct_n([1, 1, 1, 1], 2) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least 3"):
        m.distinct_n("ab", 3)
    with pytest.raises(ValueError, match=">= 1"):
        m.distinct_n("ab", 0)
    train = "to be or not to be, that is the question"
    assert m.longest_copied_substring("xx not to be, yy", train) == " not to be, "
    assert m.longest_copied_substring("zzz", train) == ""
    with pytest.raises(ValueError, match="str"):
        m.longest_copied_substring(["a"], train)
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match=">= 0"):
            m.perplexity(bad)
        with pytest.raises(ValueError, match=">= 0"):
            m.bits_per_char(bad)


# ---------------------------------------------------------------- evaluator


def test_evaluator_shapes_and_features() -> None:
    model = ev.MNISTEvaluator()
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10) and model.features(x).shape == (5, 128)
    feats, probs = m.evaluate_images(model, x, batch_size=2)
    assert feats.shape == (5, 128) and torch.allclose(probs.sum(1), torch.ones(5))


def test_shipped_evaluator_is_verified_and_accurate(shared_data, monkeypatch) -> None:
    from aigc_utils.data import load_mnist

    monkeypatch.setenv("AIGC_DATA_DIR", str(shared_data))
    model = ev.load_evaluator("cpu")
    x, y = load_mnist("test")
    assert ev.accuracy(model, x, y) >= 0.99


def test_corrupt_or_missing_weights_are_refused(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"garbage")
    monkeypatch.setattr(ev, "weights_path", lambda: bad)
    with pytest.raises(ValueError, match="SHA-256"):
        ev.load_evaluator("cpu")
    monkeypatch.setattr(ev, "weights_path", lambda: tmp_path / "none.pt")
    with pytest.raises(FileNotFoundError, match="python -m aigc_utils.evaluator"):
        ev.load_evaluator("cpu")


def test_brief_retraining_learns_and_main_saves(shared_data, monkeypatch, tmp_path):
    from aigc_utils.checkpoints import load_checkpoint
    from aigc_utils.data import load_mnist

    monkeypatch.setenv("AIGC_DATA_DIR", str(shared_data))
    model, history = ev.train_evaluator(max_steps=40, progress=False)
    assert history.steps[-1] == 40
    x, y = load_mnist("test")
    assert ev.accuracy(model, x[:1000], y[:1000]) > 0.8
    monkeypatch.setattr(ev, "train_evaluator", lambda epochs: (model, history))
    out = tmp_path / "w.pt"
    ev.main(["--out", str(out)])
    fresh = ev.MNISTEvaluator()
    load_checkpoint(out, fresh, fresh.config)


def test_glue_records_only_in_the_book(monkeypatch) -> None:
    import sys

    from aigc_utils.report import glue

    calls = []
    fake = type(sys)("myst_nb")
    fake.glue = lambda name, value, display: calls.append((name, value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    glue("vae_fid", 3)
    assert calls == [("vae_fid", 3.0, False)]
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # not installed: no-op
    glue("vae_fid", 3)
    with pytest.raises(ValueError, match="snake_case"):
        glue("Bad", 1)
