"""Video as moving digits: a moving-MNIST generator, two baselines, a small
predictor that learns motion, the metrics to compare them, and animations.

After Srivastava, Mansimov & Salakhutdinov (2015), a clip is a 28x28 MNIST digit
moving with constant velocity in a 64x64 frame and bouncing off the borders.
Velocities here are whole pixels per frame, so that every frame is the digit
shifted by an exact number of pixels::

    data = moving_mnist(images, labels, n_clips=8, n_frames=20, generator=g)
    context, future = data.clips[:, :10], data.clips[:, 10:]
    guess = constant_velocity(context, horizon=10)     # (8, 10, 1, 64, 64)
    frame_mse(guess, future)                           # (10,) one per horizon

:class:`MotionPredictor` continues a clip the way Finn et al.'s (2016) CDNA
does, with one kernel: a small CNN looks at the last frames and outputs a
normalised ``k x k`` kernel, and the next frame is the last one convolved
with it, a (soft) shift. Rolled out, it predicts any number of frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

DIGIT = 28  # side of an MNIST digit in pixels


class MovingMNIST(NamedTuple):
    """Clips and what made them.

    Attributes:
        clips: ``(B, T, 1, S, S)`` float in [0, 1].
        positions: ``(B, T, D, 2)`` int64, top-left corner (row, column) of each
            of the ``D`` digits' 28x28 patch in each frame.
        velocities: ``(B, D, 2)`` int64, pixels per frame at the first frame.
        labels: ``(B, D)`` int64, the digits' classes.
    """

    clips: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    labels: torch.Tensor


def _positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def bounce(start: torch.Tensor, velocity: torch.Tensor, n_frames: int, limit: int):
    """Positions ``(..., T)`` of points moving from ``start`` with ``velocity``
    (int tensors of the same shape) inside ``[0, limit]``, reflected at both ends:
    a step that would end at ``limit + e`` ends at ``limit - e`` and reverses the
    velocity (the same at 0). Returns the positions and the final velocities."""
    p, v, out = start.clone(), velocity.clone(), []
    for _ in range(n_frames):
        out.append(p)
        p = p + v
        high, low = p > limit, p < 0
        p = torch.where(high, 2 * limit - p, torch.where(low, -p, p))
        v = torch.where(high | low, -v, v)
    return torch.stack(out, -1), v


def moving_mnist(
    digits: torch.Tensor,
    labels: torch.Tensor,
    n_clips: int,
    n_frames: int = 20,
    *,
    size: int = 64,
    max_speed: int = 3,
    n_digits: int = 1,
    generator: torch.Generator | None = None,
) -> MovingMNIST:
    """Random clips of bouncing digits drawn from ``digits``.

    Each digit starts at a uniform random position, with a velocity whose two
    components are drawn from ``{-max_speed, ..., -1, 1, ..., max_speed}``;
    several digits are combined with a pixel-wise maximum, as in the original.

    Args:
        digits: ``(N, 1, 28, 28)`` float images in [0, 1]; labels ``(N,)`` ints.
        n_clips, n_frames: ``B`` and ``T`` of the result.
        size: side ``S`` of the frame (> 28).
        max_speed: largest speed per axis in pixels per frame (<= size - 28).
        n_digits: digits per clip.
        generator: a seeded ``torch.Generator`` makes the clips repeatable.

    Raises:
        ValueError: bad shapes, dtypes or counts.
    """
    if not isinstance(digits, torch.Tensor) or not digits.is_floating_point():
        raise ValueError("digits must be a floating-point tensor (N, 1, 28, 28)")
    if digits.dim() != 4 or tuple(digits.shape[1:]) != (1, DIGIT, DIGIT):
        raise ValueError(f"digits must be (N, 1, 28, 28), got {tuple(digits.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.shape != digits.shape[:1]:
        raise ValueError("labels must be a tensor (N,) with one label per digit")
    if len(digits) == 0:
        raise ValueError("digits is empty")
    b, t = _positive_int(n_clips, "n_clips"), _positive_int(n_frames, "n_frames")
    limit = _positive_int(size, "size", DIGIT + 1) - DIGIT
    speed = _positive_int(max_speed, "max_speed")
    if speed > limit:
        raise ValueError(f"max_speed must be <= size - 28 = {limit}, got {speed}")
    d = _positive_int(n_digits, "n_digits")
    idx = torch.randint(len(digits), (b, d), generator=generator)
    start = torch.randint(limit + 1, (b, d, 2), generator=generator)
    sign = torch.randint(2, (b, d, 2), generator=generator) * 2 - 1
    velocity = sign * torch.randint(1, speed + 1, (b, d, 2), generator=generator)
    pos, _ = bounce(start, velocity, t, limit)
    pos = pos.permute(0, 3, 1, 2)  # (B, T, D, 2)
    frames = torch.zeros(b, t, size, size, dtype=digits.dtype)
    bi = torch.arange(b)[:, None, None, None]
    ti = torch.arange(t)[None, :, None, None]
    offs = torch.arange(DIGIT)
    for k in range(d):
        rows = (pos[:, :, k, 0, None] + offs)[..., :, None]  # (B, T, 28, 1)
        cols = (pos[:, :, k, 1, None] + offs)[..., None, :]  # (B, T, 1, 28)
        ink = digits[idx[:, k], 0][:, None]  # (B, 1, 28, 28)
        frames[bi, ti, rows, cols] = torch.maximum(frames[bi, ti, rows, cols], ink)
    return MovingMNIST(frames[:, :, None], pos, velocity, labels[idx])


class ClipStream:
    """``steps`` fresh batches of clips ``(B, T, 1, S, S)`` for :func:`fit`;
    iterating again repeats the same batches (the generator is re-seeded)."""

    def __init__(
        self,
        digits: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        n_frames: int,
        steps: int,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        self.digits, self.labels, self.kwargs = digits, labels, kwargs
        self.batch_size, self.n_frames = batch_size, n_frames
        self.steps, self.seed = _positive_int(steps, "steps"), seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.steps):
            yield moving_mnist(
                self.digits,
                self.labels,
                self.batch_size,
                self.n_frames,
                generator=g,
                **self.kwargs,
            ).clips


# ---------------------------------------------------------------- baselines


def check_clips(clips: torch.Tensor, name: str = "clips", min_frames: int = 1) -> None:
    """Raise ValueError unless ``clips`` is float ``(B, T, 1, H, W)`` with at
    least one clip and ``T >= min_frames``."""
    if not isinstance(clips, torch.Tensor) or not clips.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (B, T, 1, H, W)")
    if clips.dim() != 5 or clips.shape[2] != 1:
        raise ValueError(f"{name} must be (B, T, 1, H, W), got {tuple(clips.shape)}")
    if clips.shape[1] < min_frames or clips.shape[0] == 0:
        raise ValueError(
            f"{name} needs at least one clip of {min_frames} frame(s), "
            f"got {tuple(clips.shape)}"
        )


def center_of_mass(frames: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted centre ``(..., 2)`` (row, column) in pixels of frames
    ``(..., H, W)``; a blank frame gets the frame's centre."""
    h, w = frames.shape[-2:]
    mass = frames.sum((-2, -1))
    rows = torch.arange(h, dtype=frames.dtype, device=frames.device)
    cols = torch.arange(w, dtype=frames.dtype, device=frames.device)
    r = (frames.sum(-1) * rows).sum(-1) / mass.clamp_min(1e-8)
    c = (frames.sum(-2) * cols).sum(-1) / mass.clamp_min(1e-8)
    centre = torch.stack([r, c], -1)
    blank = (mass <= 1e-8)[..., None]
    return torch.where(
        blank, torch.tensor([(h - 1) / 2, (w - 1) / 2]).to(centre), centre
    )


def shift(frame: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``frame (..., H, W)`` moved down by ``dy`` and right by ``dx`` pixels,
    with zeros where nothing moved in (no wrap-around)."""
    out = torch.zeros_like(frame)
    h, w = frame.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = frame[..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    out[..., max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)] = src
    return out


def _check_horizon(horizon: int) -> int:
    return _positive_int(horizon, "horizon")


def copy_last(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The last frame of ``context (B, T, 1, H, W)``, repeated ``horizon`` times:
    ``(B, horizon, 1, H, W)``."""
    check_clips(context, "context")
    return context[:, -1:].repeat(1, _check_horizon(horizon), 1, 1, 1)


def constant_velocity(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """Keep moving: the shift between the centres of mass of the last two frames
    of ``context (B, T >= 2, 1, H, W)``, rounded to whole pixels, applied again
    every frame to the last frame. Returns ``(B, horizon, 1, H, W)``; exact for
    a digit that moves by whole pixels and does not reach a border."""
    check_clips(context, "context", min_frames=2)
    horizon = _check_horizon(horizon)
    steps = center_of_mass(context[:, -1, 0]) - center_of_mass(context[:, -2, 0])
    out = [
        torch.stack([shift(last, k * dy, k * dx) for k in range(1, horizon + 1)])
        for last, (dy, dx) in zip(context[:, -1], steps.round().long().tolist())
    ]
    return torch.stack(out)


# -------------------------------------------------------------------- model


@dataclass(frozen=True)
class MotionConfig:
    """:class:`MotionPredictor`: ``context`` frames in, one ``(2 * max_shift + 1)``
    square kernel out; ``channels`` of the first convolution (doubling twice)."""

    context: int = 3
    max_shift: int = 3
    channels: int = 16
    size: int = 64


class MotionPredictor(nn.Module):
    """Next frame = last frame convolved with a kernel the network predicts.

    Four stride-2 convolutions read the last ``context`` frames plus two
    coordinate channels (so it can see where the walls are) down to a
    ``size/16`` grid; a linear head gives ``k*k`` logits whose softmax is the
    kernel, non-negative and summing to 1, so the frame is moved, never redrawn.
    """

    def __init__(self, config: MotionConfig = MotionConfig()) -> None:
        super().__init__()
        if config.size % 16 or config.context < 2 or config.max_shift < 1:
            raise ValueError(f"size must be a multiple of 16, context >= 2: {config}")
        self.config = config
        c, k, g = config.channels, 2 * config.max_shift + 1, config.size // 16
        widths = [config.context + 2, c, 2 * c, 4 * c, 4 * c]
        convs = [
            (nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU())
            for a, b in zip(widths, widths[1:])
        ]
        self.encoder = nn.Sequential(*[m for pair in convs for m in pair], nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(4 * c * g * g, 128), nn.ReLU(), nn.Linear(128, k * k)
        )
        ramp = torch.linspace(-1, 1, config.size)
        self.register_buffer(
            "coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij"))
        )

    def kernels(self, frames: torch.Tensor) -> torch.Tensor:
        """Motion kernels ``(B, k, k)`` from frames ``(B, context, 1, S, S)``."""
        x = torch.cat([frames[:, :, 0], self.coords.expand(len(frames), -1, -1, -1)], 1)
        k = 2 * self.config.max_shift + 1
        return self.head(self.encoder(x)).softmax(-1).view(-1, k, k)

    def step(self, frames: torch.Tensor) -> torch.Tensor:
        """The next frame ``(B, 1, S, S)`` after ``frames (B, context, 1, S, S)``."""
        b, s, kern = len(frames), self.config.size, self.kernels(frames)
        last = frames[:, -1].reshape(1, b, s, s)
        out = F.conv2d(last, kern[:, None], padding=self.config.max_shift, groups=b)
        return out.view(b, 1, s, s)

    def predict(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """Roll out ``horizon`` frames ``(B, horizon, 1, S, S)`` after
        ``context (B, T >= config.context, 1, S, S)``, each fed back as input."""
        check_clips(context, "context", min_frames=self.config.context)
        if (
            context.shape[-1] != self.config.size
            or context.shape[-2] != self.config.size
        ):
            raise ValueError(f"frames must be {self.config.size}x{self.config.size}")
        window, out = context[:, -self.config.context :], []
        for _ in range(_check_horizon(horizon)):
            out.append(self.step(window))
            window = torch.cat([window[:, 1:], out[-1][:, None]], 1)
        return torch.stack(out, 1)

    def loss(self, clips: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the rollout from the first ``context`` frames of
        ``clips (B, T, 1, S, S)`` over the remaining ``T - context`` frames."""
        n = self.config.context
        check_clips(clips, "clips", min_frames=n + 1)
        return F.mse_loss(self.predict(clips[:, :n], clips.shape[1] - n), clips[:, n:])


# ------------------------------------------------------------------ metrics


def _check_pair(pred: torch.Tensor, truth: torch.Tensor) -> None:
    check_clips(pred, "pred")
    check_clips(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ"
        )


def frame_mse(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean squared error per predicted frame ``(T,)`` of clips ``(B, T, 1, H, W)``."""
    _check_pair(pred, truth)
    return ((pred - truth) ** 2).mean((0, 2, 3, 4))


def position_error(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Distance ``(B, T)`` in pixels between the centres of mass of predicted and
    true frames ``(B, T, 1, H, W)``."""
    _check_pair(pred, truth)
    return (center_of_mass(pred[:, :, 0]) - center_of_mass(truth[:, :, 0])).norm(dim=-1)


def crop_digit(frames: torch.Tensor) -> torch.Tensor:
    """The 28x28 window ``(N, 1, 28, 28)`` centred on each frame's centre of
    mass (moved inside the frame where needed) of frames ``(N, 1, H, W)``."""
    if (
        not isinstance(frames, torch.Tensor)
        or frames.dim() != 4
        or frames.shape[1] != 1
    ):
        raise ValueError("frames must be a tensor (N, 1, H, W)")
    h, w = frames.shape[-2:]
    if h < DIGIT or w < DIGIT:
        raise ValueError(f"frames must be at least 28x28, got {h}x{w}")
    top = (center_of_mass(frames[:, 0]) - (DIGIT - 1) / 2).round().long()
    top[:, 0].clamp_(0, h - DIGIT)
    top[:, 1].clamp_(0, w - DIGIT)
    return torch.stack(
        [f[:, r : r + DIGIT, c : c + DIGIT] for f, (r, c) in zip(frames, top.tolist())]
    )


@torch.no_grad()
def identity_accuracy(
    evaluator: nn.Module, frames: torch.Tensor, labels: torch.Tensor
) -> float:
    """Share of frames ``(N, 1, H, W)`` whose cropped digit the evaluator reads
    as ``labels (N,)``: is the digit still the same digit?"""
    if not isinstance(labels, torch.Tensor) or labels.shape != frames.shape[:1]:
        raise ValueError("labels must be a tensor (N,) with one label per frame")
    crops = crop_digit(frames).clamp(0, 1).cpu()
    device = next(evaluator.parameters()).device
    evaluator.eval()
    return (
        (evaluator(crops.to(device)).argmax(1).cpu() == labels.cpu())
        .float()
        .mean()
        .item()
    )


# --------------------------------------------------------------- animation


def animate(
    panels: dict[str, torch.Tensor],
    *,
    fps: int = 4,
    scale: float = 1.2,
    title: Any = None,
) -> Any:
    """An animation of clips side by side, as HTML that plays in Jupyter and in
    the built book (``FuncAnimation.to_jshtml``: PNG frames and a little
    JavaScript, no ffmpeg, no internet).

    Args:
        panels: column title -> clips ``(N, T, 1, H, W)`` (or one clip
            ``(T, 1, H, W)``) in [0, 1]; all with the same ``N`` and ``T``.
        fps: frames per second. scale: inches per panel.
        title: ``title(t) -> str`` for frame ``t``, or None for "frame t".

    Returns:
        ``IPython.display.HTML``.

    Raises:
        ValueError: no panels, or panels of different shapes.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    if not panels:
        raise ValueError("panels is empty: give at least one clip")
    clips = {
        k: v[None] if isinstance(v, torch.Tensor) and v.dim() == 4 else v
        for k, v in panels.items()
    }
    for name, v in clips.items():
        check_clips(v, name)
    shapes = {tuple(v.shape) for v in clips.values()}
    if len(shapes) != 1:
        raise ValueError(f"panels must share one shape (N, T, 1, H, W), got {shapes}")
    n, t = next(iter(shapes))[:2]
    fig, axes = plt.subplots(
        n,
        len(clips),
        figsize=(scale * len(clips), scale * n + 0.3),
        squeeze=False,
        dpi=60,
    )
    images = []
    for j, (name, v) in enumerate(clips.items()):
        axes[0, j].set_title(name, fontsize=9)
        for i in range(n):
            axes[i, j].axis("off")
            frames = v[i, :, 0].detach().cpu().numpy()
            images.append(
                (axes[i, j].imshow(frames[0], cmap="gray", vmin=0, vmax=1), frames)
            )
    label = fig.suptitle("", fontsize=9)
    fig.tight_layout()

    def draw(frame: int) -> list:
        for im, clip in images:
            im.set_data(clip[frame])
        label.set_text(title(frame) if title else f"frame {frame}")
        return [im for im, _ in images]

    anim = FuncAnimation(fig, draw, frames=t, interval=1000 / fps, blit=False)
    html = anim.to_jshtml(default_mode="loop")
    plt.close(fig)
    return HTML(_offline_player(html))


# matplotlib's player draws its buttons with Font Awesome icons fetched from a
# CDN; a page that must work offline gets plain Unicode symbols instead.
_ICONS = {
    "fa fa-play fa-flip-horizontal": "\u25c0",  # play backwards
    "fa fa-fast-backward": "\u23ee",
    "fa fa-step-backward": "\u23ea",
    "fa fa-fast-forward": "\u23ed",
    "fa fa-step-forward": "\u23e9",
    "fa fa-pause": "\u23f8",
    "fa fa-play": "\u25b6",
    "fa fa-minus": "\u2212",
    "fa fa-plus": "+",
}


def _offline_player(html: str) -> str:
    """``html`` from ``to_jshtml`` without its CDN stylesheet, icons as text."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    for css, symbol in _ICONS.items():
        html = html.replace(f'<i class="{css}"></i>', symbol)
    return html
