"""aigc_utils.video: moving digits, baselines, the motion predictor, metrics."""

from __future__ import annotations

import pytest
import torch

from aigc_utils import video as V


def fake_digits(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Blobs of different shapes in 28x28 (no MNIST needed), labels 0..n-1."""
    g = torch.Generator().manual_seed(0)
    digits = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        r, c = 6 + i, 8
        digits[i, 0, r : r + 10, c : c + 6 + i] = torch.rand(10, 6 + i, generator=g)
    return digits, torch.arange(n)


def triangle(u: torch.Tensor, limit: int) -> torch.Tensor:
    """A point moving freely on the line, folded into [0, limit] by reflection."""
    m = u % (2 * limit)
    return torch.where(m > limit, 2 * limit - m, m)


def test_clips_have_documented_shapes_and_range() -> None:
    digits, labels = fake_digits()
    g = torch.Generator().manual_seed(1)
    data = V.moving_mnist(digits, labels, 4, 7, size=40, n_digits=2, generator=g)
    assert data.clips.shape == (4, 7, 1, 40, 40) and data.clips.dtype == torch.float32
    assert data.positions.shape == (4, 7, 2, 2) and data.velocities.shape == (4, 2, 2)
    assert data.labels.shape == (4, 2)
    assert 0 <= data.clips.min() and data.clips.max() <= 1


def test_digits_bounce_inside_the_frame_by_reflection() -> None:
    digits, labels = fake_digits()
    g = torch.Generator().manual_seed(2)
    data = V.moving_mnist(digits, labels, 64, 30, max_speed=4, generator=g)
    limit = 64 - 28
    pos, vel = data.positions[:, :, 0], data.velocities[:, 0]
    assert pos.min() >= 0 and pos.max() <= limit
    assert (vel != 0).all() and vel.abs().max() <= 4
    t = torch.arange(30)[None, :, None]
    expected = triangle(pos[:, :1] + vel[:, None] * t, limit)
    assert torch.equal(pos, expected)
    steps = pos.diff(dim=1)
    assert (steps.sign() != vel[:, None].sign()).any(), "no clip bounced"
    # each frame holds its digit's ink at the recorded position, nothing else
    b, f = 3, 11
    r, c = pos[b, f].tolist()
    digit = digits[labels == data.labels[b, 0]][0, 0]
    frame = data.clips[b, f, 0]
    assert torch.equal(frame[r : r + 28, c : c + 28], digit)
    assert frame.sum() == pytest.approx(digit.sum().item())


def test_seeded_clips_repeat_and_other_seeds_differ() -> None:
    digits, labels = fake_digits()

    def make(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return V.moving_mnist(digits, labels, 3, 5, generator=g).clips

    assert torch.equal(make(0), make(0))
    assert not torch.equal(make(0), make(1))
    stream = V.ClipStream(digits, labels, 2, 4, steps=3, seed=5)
    assert len(stream) == 3
    assert all(torch.equal(a, b) for a, b in zip(stream, stream))


def slow_clip(dy: int, dx: int, n_frames: int = 8) -> torch.Tensor:
    """One clip (1, T, 1, 64, 64) of a digit starting in the middle, moving by
    (dy, dx) per frame without reaching a border."""
    digit = fake_digits()[0][3, 0]
    frames = torch.stack(
        [
            V.shift(torch.nn.functional.pad(digit, (18, 18, 18, 18)), t * dy, t * dx)
            for t in range(n_frames)
        ]
    )
    return frames[None, :, None]


def test_constant_velocity_is_exact_without_a_bounce() -> None:
    clip = slow_clip(1, -2)
    guess = V.constant_velocity(clip[:, :3], 5)
    assert guess.shape == (1, 5, 1, 64, 64)
    assert torch.equal(guess, clip[:, 3:])
    assert torch.equal(V.frame_mse(guess, clip[:, 3:]), torch.zeros(5))
    assert torch.allclose(V.position_error(guess, clip[:, 3:]), torch.zeros(1, 5))
    last = V.copy_last(clip[:, :3], 4)
    assert last.shape == (1, 4, 1, 64, 64) and torch.equal(last[0, 3], clip[0, 2])
    # copy-last is wrong by exactly the distance travelled
    err = V.position_error(last, clip[:, 3:7])
    assert torch.allclose(err[0], torch.arange(1, 5) * 5**0.5, atol=1e-4)


def test_centre_of_mass_shift_and_crop() -> None:
    frame = torch.zeros(2, 64, 64)
    frame[0, 10, 20] = 1.0
    com = V.center_of_mass(frame)
    assert com[0].tolist() == [10.0, 20.0] and com[1].tolist() == [31.5, 31.5]
    assert V.shift(frame[0], 3, -5)[13, 15] == 1.0
    assert V.shift(frame[0], 64, 0).sum() == 0
    clip = slow_clip(0, 0, 1)[0]  # (1, 1, 64, 64)
    crop = V.crop_digit(clip)
    assert crop.shape == (1, 1, 28, 28) and crop.sum() == pytest.approx(
        clip.sum().item()
    )


def test_motion_predictor_shapes_and_a_shift_kernel() -> None:
    torch.manual_seed(0)
    model = V.MotionPredictor(
        V.MotionConfig(context=2, max_shift=2, channels=4, size=32)
    )
    clips = torch.rand(3, 5, 1, 32, 32)
    assert model.kernels(clips[:, :2]).shape == (3, 5, 5)
    assert torch.allclose(model.kernels(clips[:, :2]).sum((1, 2)), torch.ones(3))
    assert model.predict(clips, 4).shape == (3, 4, 1, 32, 32)
    assert model.loss(clips).dim() == 0
    # a one-hot kernel moves the frame: the convolution is a shift
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.fill_(-1e4)
        model.head[-1].bias[0] = 0.0  # top-left entry: down and right by 2
    assert torch.allclose(model.step(clips[:, :2])[:, 0], V.shift(clips[:, 1, 0], 2, 2))


def test_motion_predictor_overfits_one_batch(one_thread: None) -> None:
    torch.manual_seed(0)
    digits, labels = fake_digits()
    clips = V.moving_mnist(
        digits,
        labels,
        4,
        5,
        size=48,
        max_speed=2,
        generator=torch.Generator().manual_seed(0),
    ).clips
    model = V.MotionPredictor(
        V.MotionConfig(context=2, max_shift=2, channels=8, size=48)
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(clips).item()
    for _ in range(100):
        loss = model.loss(clips)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.15 * first


def test_identity_accuracy_reads_cropped_digits() -> None:
    class Ink(torch.nn.Module):  # "class 1" when the crop holds ink, else 0
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = x.sum((1, 2, 3))
            return torch.stack([-s, s * self.w], 1)

    clip = slow_clip(0, 0, 1)[0]
    frames = torch.cat([clip, torch.zeros_like(clip)])
    assert V.identity_accuracy(Ink(), frames, torch.tensor([1, 0])) == 1.0
    assert V.identity_accuracy(Ink(), frames, torch.tensor([0, 0])) == 0.5


def test_identity_of_true_mnist_frames(shared_data: object) -> None:
    from aigc_utils.data import load_mnist
    from aigc_utils.evaluator import load_evaluator

    images, labels = load_mnist("test")
    g = torch.Generator().manual_seed(0)
    data = V.moving_mnist(images[:500], labels[:500], 200, 3, generator=g)
    acc = V.identity_accuracy(
        load_evaluator("cpu"), data.clips[:, -1], data.labels[:, 0]
    )
    assert acc >= 0.95


def test_animation_is_html_with_every_frame() -> None:
    clip = torch.rand(2, 3, 1, 16, 16)
    html = V.animate({"truth": clip, "guess": clip.flip(1)}, title=lambda t: f"t={t}")
    text = html.data
    assert "<script" in text and text.count("data:image/png;base64") == 3
    assert V.animate({"one clip": clip[0]}).data.count("data:image/png") == 3
    # the page must work offline: no stylesheet or icon font from a CDN
    assert "http" not in text and "fa fa-" not in text and "\u25b6" in text


R = torch.rand


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d, y: V.moving_mnist(d[:, 0], y, 2), r"\(N, 1, 28, 28\)"),
        (lambda d, y: V.moving_mnist(d.long(), y, 2), "floating-point"),
        (lambda d, y: V.moving_mnist(d, y[:2], 2), "one label per digit"),
        (lambda d, y: V.moving_mnist(d, y, 0), "n_clips"),
        (lambda d, y: V.moving_mnist(d, y, 2, n_frames=0), "n_frames"),
        (lambda d, y: V.moving_mnist(d, y, 2, size=28), "size"),
        (lambda d, y: V.moving_mnist(d, y, 2, size=32, max_speed=5), "max_speed"),
        (lambda d, y: V.moving_mnist(d, y, 2, n_digits=0), "n_digits"),
        (lambda d, y: V.copy_last(R(2, 3, 64, 64), 2), r"\(B, T, 1, H, W\)"),
        (lambda d, y: V.copy_last(R(2, 3, 1, 8, 8), 0), "horizon"),
        (lambda d, y: V.constant_velocity(R(2, 1, 1, 8, 8), 2), "2 frame"),
        (lambda d, y: V.frame_mse(R(1, 2, 1, 8, 8), R(1, 3, 1, 8, 8)), "differ"),
        (lambda d, y: V.crop_digit(R(2, 1, 20, 20)), "28x28"),
        (lambda d, y: V.MotionPredictor().predict(R(1, 2, 1, 64, 64), 1), "3 frame"),
        (lambda d, y: V.MotionPredictor().predict(R(1, 3, 1, 32, 32), 1), "64x64"),
        (lambda d, y: V.MotionPredictor(V.MotionConfig(size=40)), "multiple of 16"),
        (lambda d, y: V.animate({}), "empty"),
        (
            lambda d, y: V.animate({"a": R(1, 2, 1, 8, 8), "b": R(1, 3, 1, 8, 8)}),
            "one shape",
        ),
    ],
)
def test_bad_inputs_raise_value_errors(call: object, message: str) -> None:
    digits, labels = fake_digits()
    with pytest.raises(ValueError, match=message):
        call(digits, labels)  # type: ignore[operator]
