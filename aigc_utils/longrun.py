"""Long runs: the chapters' own models, trained for much longer, with shipped weights.

A chapter trains its model live for a few CPU minutes. Next to it, the same code
trained for tens of minutes shows what more compute buys. Each long run is made
reproducibly by one command (a GPU is used when there is one)::

    python -m aigc_utils.longrun gpt   # or ddpm, dcgan; --steps 5 for a smoke test

which writes ``<name>.pt`` (fp16 weights with their config, saved by
:func:`aigc_utils.checkpoints.save_checkpoint`) and ``<name>.json`` (recipe,
SHA-256 of the weights, training curve, hardware, wall time, final metrics) into
``./longrun-out/`` (``--out DIR`` elsewhere), never over an existing file unless
``--overwrite`` is given; ``load(name, directory="longrun-out")`` loads them.

The weights the course ships live in ``assets/longrun/`` and nothing writes
there unless asked twice: ``--shipped --overwrite`` (what ``make long-runs``
runs). The SHA-256 of every shipped file is pinned in :data:`SHIPPED_SHA256`, so
:func:`load` refuses a shipped file that was substituted or corrupted, and a
retrain prints the new hashes to pin. Every file is also checked against its
record's SHA-256 before it loads with ``weights_only=True``, so a missing or
corrupted file is a clear error that says what to do.

:func:`budget` says which recipe a chapter should train live: ``"gpu"`` (the
long-run recipe itself, minutes on a GPU) or ``"cpu"`` (the minutes recipe, with
the shipped long run loaded beside it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoints import load_checkpoint, save_checkpoint
from .data import content_sha256 as sha256  # the data loaders' file checksum
from .training import cosine_lr

#: the package's own assets; nothing here writes into them unless asked to.
PACKAGE_ASSETS = Path(__file__).resolve().parent / "assets"
#: where the shipped long runs live (tests point it at a copy).
ASSETS = PACKAGE_ASSETS / "longrun"
_PACKAGE_LONGRUN = ASSETS  # the real folder, even while ASSETS points elsewhere
#: where ``train`` and ``python -m aigc_utils.longrun`` write by default,
#: relative to the current directory.
DEFAULT_OUT = Path("longrun-out")
#: SHA-256 of each shipped file; a retrain with ``--shipped --overwrite`` prints
#: the new values to paste here.
SHIPPED_SHA256: dict[str, str] = {
    "gpt.pt": "ecf0536a9e2aa7ffb457d1e979da7ad9e8d4abdbdc04d138ec19e672a9b27e7a",
    "gpt.json": "7d567bdba5e5cbbf07f6f21e9078da3668721158babcb8cc7b892a5f18a41648",
    "ddpm.pt": "7eb9a7f0b0abd400fb2d990e643d630bfc0d8b6615e7a78c791764441c37e2b9",
    "ddpm.json": "1adec35a591ed1b6d73fad63fea302e02a58d3a61b9b04cc77227194ac0085fa",
    "dcgan.pt": "0d05af77f22696b8280d8664c8f365788f3583a9ff47000f7cd9d252a0d0ee80",
    "dcgan.json": "677f008775c56c7645b264861b19423f83b413e9ea89549203051898dd0ed039",
}
#: the keys of a record, in the order ``train`` writes them; ``note`` only when
#: one is given.
RECORD_KEYS = (
    "name",
    "recipe",
    "config",
    "sha256",
    "train_seconds",
    "wall_seconds",
    "hardware",
    "torch",
    "curve",
    "metrics",
    "command",
)
BUDGETS = ("cpu", "gpu")


def budget(device: torch.device | None = None) -> str:
    """Which live recipe to run: ``"gpu"`` on CUDA, else ``"cpu"``.

    The environment variable ``AIGC_BUDGET`` (``cpu`` or ``gpu``) overrides the
    choice, e.g. to run the short recipe on a GPU for a quick look.

    Raises:
        ValueError: ``AIGC_BUDGET`` holds anything else.
    """
    forced = os.environ.get("AIGC_BUDGET", "").strip().lower()
    if forced:
        if forced not in BUDGETS:
            raise ValueError(f"AIGC_BUDGET must be one of {BUDGETS}, got {forced!r}")
        return forced
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return "gpu" if device.type == "cuda" else "cpu"


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"{cpu} CPU, {torch.get_num_threads()} threads"


# --------------------------------------------------------------------- recipes


def _gpt_parts() -> tuple[Any, Callable[[Any], nn.Module]]:
    from .gpt import GPT, GPTConfig

    return GPTConfig, GPT


def _ddpm_parts() -> tuple[Any, Callable[[Any], nn.Module]]:
    from .diffusion import Diffusion, NoiseSchedule
    from .unet import UNet, UNetConfig

    def build(cfg: UNetConfig) -> nn.Module:
        return Diffusion(
            UNet(cfg),
            NoiseSchedule(1000, "cosine"),
            num_classes=cfg.num_classes,
            label_dropout=0.1,
            min_snr_gamma=5.0,
        )

    return UNetConfig, build


def _dcgan_parts() -> tuple[Any, Callable[[Any], nn.Module]]:
    from .gan_models import DCGANConfig, DCGenerator

    return DCGANConfig, DCGenerator


#: name -> recipe. ``config`` builds the model; the rest is the training recipe.
RECIPES: dict[str, dict[str, Any]] = {
    "gpt": dict(
        config=dict(
            vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.1
        ),
        steps=8000,
        batch=32,
        lr=2e-3,
        warmup=100,
        eval_every=250,
        seed=0,
        minutes_cpu=65,
    ),
    "ddpm": dict(
        config=dict(channels=16, mults=(1, 2, 4), num_classes=10),
        steps=10000,
        batch=64,
        lr=5e-3,
        warmup=100,
        ema=0.999,
        seed=0,
        minutes_cpu=35,
    ),
    "dcgan": dict(  # ships the generator's EMA weights; the critic is not needed
        config=dict(latent_dim=64, channels=64),
        steps=16000,
        batch=64,
        lr=5e-4,
        cosine=False,  # True: decay both learning rates to zero (cosine)
        # a cap: at 16000 steps the warm-up (1 + t) / (10 + t) stays below it
        ema=0.9995,
        eval_every=1000,
        seed=0,
        minutes_cpu=60,
    ),
}
_PARTS = {"gpt": _gpt_parts, "ddpm": _ddpm_parts, "dcgan": _dcgan_parts}


def build(name: str) -> tuple[nn.Module, Any]:
    """An untrained model of long run ``name`` and its config.

    Raises:
        KeyError: no long run of that name.
    """
    if name not in RECIPES:
        raise KeyError(f"no long run {name!r}; choose from {sorted(RECIPES)}")
    config_type, make = _PARTS[name]()
    fields = dict(RECIPES[name]["config"])
    if "mults" in fields:
        fields["mults"] = tuple(fields["mults"])
    config = config_type(**fields)
    return make(config), config


def _train_gpt(
    model: nn.Module,
    recipe: dict,
    steps: int,
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from .data import shakespeare_splits
    from .text import RandomWindows, lm_loss
    from .training import fit

    train, val, _ = shakespeare_splits()
    block = model.config.block_size
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_lr(s, steps, warmup=min(recipe["warmup"], steps))
    )
    history = fit(
        model,
        RandomWindows(train, block, recipe["batch"], steps, seed=recipe["seed"]),
        opt,
        scheduler=sched,
        evaluate=lambda m: {"val_loss": lm_loss(m, val, block, max_windows=150)},
        eval_every=min(recipe["eval_every"], steps),
        log_every=50,
        device=device,
    )
    steps_seen, vals = history.metric("val_loss")
    final = lm_loss(model, val, block)
    log(f"gpt: {steps} steps in {history.seconds:.0f} s, validation loss {final:.4f}")
    return dict(
        seconds=history.seconds,
        curve=dict(
            step=steps_seen, value=vals, label="validation loss, first 19k chars"
        ),
        metrics=dict(val_loss=final),
    )


def _train_ddpm(
    model: nn.Module,
    recipe: dict,
    steps: int,
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from .data import load_mnist
    from .diffusion import EMA
    from .training import fit

    x, y = load_mnist("train")
    x = x * 2 - 1
    gen = torch.Generator().manual_seed(recipe["seed"])

    def batches():
        for _ in range(steps):
            idx = torch.randint(0, len(x), (recipe["batch"],), generator=gen)
            yield x[idx].to(device), y[idx].to(device)

    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"])
    ema = EMA(model, decay=recipe["ema"])
    warmup = min(recipe["warmup"], steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_lr(s, steps, warmup, floor=0.0)
    )
    history = fit(
        model, batches(), opt, scheduler=[sched, ema], log_every=50, device=device
    )
    model.load_state_dict(ema.model.state_dict())  # ship the averaged weights
    log(
        f"ddpm: {steps} steps in {history.seconds:.0f} s, loss {history.final_loss:.4f}"
    )
    return dict(
        seconds=history.seconds,
        curve=dict(
            step=history.steps,
            value=history.losses,
            label="min-SNR weighted training loss (mean of 50 steps)",
        ),
        metrics=dict(final_loss=history.final_loss),
    )


def _train_dcgan(
    model: nn.Module,
    recipe: dict,
    steps: int,
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from . import metrics
    from .data import load_mnist
    from .evaluator import load_evaluator
    from .gan_models import DCDiscriminator, train_gan

    x = load_mnist("train")[0] * 2 - 1  # the range of tanh
    critic = DCDiscriminator(model.config).to(device)
    gen = torch.Generator().manual_seed(recipe["seed"])
    batch = recipe["batch"]

    def passes():  # endless shuffled passes over the data, full batches only
        while True:
            order = torch.randperm(len(x), generator=gen)
            for idx in order.split(batch)[: len(order) // batch]:
                yield x[idx].to(device)

    evaluator = load_evaluator(device)

    def evaluate(g: nn.Module) -> dict[str, float]:
        _, probs = metrics.evaluate_images(evaluator, g.sample(1000).cpu())
        return {"IS": metrics.inception_score(probs)}

    betas = (0.5, 0.999)
    opt_g = torch.optim.Adam(model.parameters(), lr=recipe["lr"], betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=recipe["lr"], betas=betas)
    schedulers = [  # cosine decay of both learning rates to zero, if asked for
        torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: cosine_lr(s, steps, warmup=0, floor=0.0)
        )
        for opt in ((opt_g, opt_d) if recipe.get("cosine") else ())
    ]
    every = min(recipe["eval_every"], steps)
    history, g_ema = train_gan(
        model, critic, passes(), opt_g, opt_d, steps=steps, ema_decay=recipe["ema"],
        evaluate=evaluate, eval_every=every, log_every=50, schedulers=schedulers,
    )  # fmt: skip
    model.load_state_dict(g_ema.state_dict())  # ship the averaged generator
    steps_seen, values = history.metric("IS")
    log(f"dcgan: {steps} steps in {history.seconds:.0f} s, IS {values[-1]:.2f}")
    return dict(
        seconds=history.seconds,
        curve=dict(
            step=steps_seen, value=values, label="classifier-IS of 1000 EMA samples"
        ),
        metrics=dict(IS_1000=values[-1]),
    )


_TRAIN = {"gpt": _train_gpt, "ddpm": _train_ddpm, "dcgan": _train_dcgan}


# ------------------------------------------------ where files go, and the pins


def _within(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def writes_package_assets(directory: str | Path) -> bool:
    """Whether ``directory`` is inside the package's assets (or :data:`ASSETS`)."""
    directory = Path(directory)
    return _within(directory, PACKAGE_ASSETS) or _within(directory, ASSETS)


def is_shipped(directory: str | Path) -> bool:
    """Whether ``directory`` is the shipped long runs' folder, whose files must
    match :data:`SHIPPED_SHA256`."""
    found = Path(directory).resolve()
    return found in (ASSETS.resolve(), _PACKAGE_LONGRUN.resolve())


def check_destination(name: str, out_dir: str | Path, overwrite: bool) -> None:
    """Refuse, before any training, to write long run ``name`` where it may not go.

    Raises:
        KeyError: no long run of that name.
        PermissionError: ``out_dir`` is inside the package's assets and
            ``overwrite`` is false.
        FileExistsError: ``<name>.pt`` or ``<name>.json`` already exists in
            ``out_dir`` and ``overwrite`` is false.
    """
    if name not in RECIPES:
        raise KeyError(f"no long run {name!r}; choose from {sorted(RECIPES)}")
    out_dir = Path(out_dir)
    if overwrite:
        return
    if writes_package_assets(out_dir):
        raise PermissionError(
            f"long run {name!r}: {out_dir} holds the weights shipped with "
            "aigc_utils; refusing to replace them. Train into a folder of your "
            "own (the default, ./longrun-out), or pass overwrite=True "
            "(--overwrite) to retrain the shipped weights on purpose"
        )
    targets = (out_dir / f"{name}.pt", out_dir / f"{name}.json")
    existing = [path for path in targets if path.exists()]
    if existing:
        names = ", ".join(str(path) for path in existing)
        raise FileExistsError(
            f"long run {name!r}: refusing to overwrite existing {names}. Choose "
            "another folder (--out DIR), move the files away, or pass "
            "overwrite=True (--overwrite) to replace them"
        )


def pin_lines(name: str, directory: str | Path) -> str:
    """The lines of :data:`SHIPPED_SHA256` for long run ``name``'s files in
    ``directory``, to paste after retraining the shipped weights."""
    directory = Path(directory)
    return "\n".join(
        f'    "{file}": "{sha256(directory / file)}",'
        for file in (f"{name}.pt", f"{name}.json")
    )


def _check_pinned(name: str, path: Path, how: str) -> None:
    expected = SHIPPED_SHA256[path.name]
    found = sha256(path)
    if found != expected:
        raise ValueError(
            f"long run {name!r}: shipped file {path} has SHA-256 {found}, expected "
            f"{expected} (pinned in aigc_utils.longrun.SHIPPED_SHA256): the file "
            f"was substituted or corrupted, so it is not loaded; {how}. After "
            "retraining the shipped weights on purpose, pin the hashes it printed"
        )


# -------------------------------------------------------------- train, load


def train(
    name: str,
    *,
    steps: int | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    note: str | None = None,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train long run ``name`` with its fixed recipe and seed; write its files.

    Args:
        steps: override the recipe's step count (for a smoke test).
        out_dir: where ``<name>.pt`` and ``<name>.json`` go; defaults to
            :data:`DEFAULT_OUT` in the current directory.
        overwrite: replace existing files there; required to write into the
            package's assets (:data:`ASSETS`), which are never written otherwise.
        note: a remark kept in the record under ``"note"`` (e.g. how the
            machine was loaded while it trained); no such key when ``None``.
        device: defaults to CUDA when available, else the CPU.

    Returns:
        The path of the weights file.

    Raises:
        KeyError: no long run of that name.
        ValueError: ``steps`` below 1.
        PermissionError, FileExistsError: see :func:`check_destination`; checked
            before training starts.
    """
    from .runtime import seed_everything

    if name not in RECIPES:
        raise KeyError(f"no long run {name!r}; choose from {sorted(RECIPES)}")
    recipe = RECIPES[name]
    steps = recipe["steps"] if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out_dir = Path.cwd() / DEFAULT_OUT if out_dir is None else Path(out_dir)
    check_destination(name, out_dir, overwrite)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    seed_everything(recipe["seed"])
    model, config = build(name)  # built after seeding, so the init repeats
    model = model.to(device)
    start = time.perf_counter()
    result = _TRAIN[name](model, recipe, steps, device, log)
    wall = time.perf_counter() - start
    path = save_checkpoint(out_dir / f"{name}.pt", model.half().cpu(), config)
    info = dict(
        name=name,
        recipe={k: v for k, v in recipe.items() if k != "minutes_cpu"}
        | {"steps": steps},
        config=dataclasses.asdict(config),
        sha256=sha256(path),
        train_seconds=result["seconds"],
        wall_seconds=wall,
        hardware=_hardware(device),
        torch=torch.__version__,
        curve=result["curve"],
        metrics=result["metrics"],
        command=f"python -m aigc_utils.longrun {name}",
    )
    if note is not None:
        info["note"] = note
    tmp = out_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, out_dir / f"{name}.json")
    if writes_package_assets(out_dir):
        log(
            f"long run {name}: the shipped files changed; pin their new SHA-256 in "
            f"aigc_utils/longrun.py, SHIPPED_SHA256:\n{pin_lines(name, out_dir)}"
        )
    return path


def load(
    name: str,
    device: torch.device | str = "cpu",
    directory: str | Path | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Long run ``name`` (in eval mode, fp32) and its record.

    Args:
        directory: the shipped long runs (:data:`ASSETS`) by default, whose files
            must match :data:`SHIPPED_SHA256`; or a folder ``train`` wrote to,
            whose weights must match their record's SHA-256.

    Raises:
        KeyError: no long run of that name.
        FileNotFoundError: the weights or the record are missing.
        ValueError: a shipped file's SHA-256 differs from the pinned one (a
            substituted or corrupted file), or the weights' SHA-256 differs from
            the record's (a corrupted or partial file, or weights from another
            run).
    """
    model, config = build(name)
    directory = ASSETS if directory is None else Path(directory)
    weights, record = directory / f"{name}.pt", directory / f"{name}.json"
    minutes = RECIPES[name]["minutes_cpu"]
    shipped = is_shipped(directory)
    retrain = (
        f"`python -m aigc_utils.longrun {name}` (about {minutes} minutes on a "
        "2-core CPU, a few on a GPU)"
    )
    if shipped:
        how = (
            "restore the shipped files (reinstall aigc_utils, or `git checkout -- "
            "aigc_utils/assets/longrun` in a clone), or train your own with "
            f"{retrain} and load it with load({name!r}, "
            f"directory={str(DEFAULT_OUT)!r})"
        )
    else:
        how = (
            f"retrain it with `python -m aigc_utils.longrun {name} --out "
            f"{directory} --overwrite` (about {minutes} minutes on a 2-core CPU, "
            "a few on a GPU)"
        )
    for path in (weights, record):
        if not path.exists():
            raise FileNotFoundError(f"long run {name!r}: {path} is missing; {how}")
    if shipped:
        for path in (weights, record):
            _check_pinned(name, path, how)
    info = json.loads(record.read_text())
    found = sha256(weights)
    if found != info["sha256"]:
        raise ValueError(
            f"long run {name!r}: {weights} has SHA-256 {found[:12]}..., the record "
            f"says {info['sha256'][:12]}... (corrupted or from another run); {how}"
        )
    load_checkpoint(weights, model, config)
    return model.float().to(device).eval(), info


def main(argv: list[str] | None = None) -> int:
    """``python -m aigc_utils.longrun NAME... [--steps N] [--out DIR | --shipped]
    [--overwrite] [--note TEXT]``; exits with status 2 and a message, before any
    training, when a destination is refused."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=None, help="override (smoke test)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        default=None,
        help=f"output folder (default: ./{DEFAULT_OUT} in the current directory)",
    )
    where.add_argument(
        "--shipped",
        action="store_true",
        help=f"write into the package's shipped weights, {ASSETS} (needs --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing files; required to write the shipped weights",
    )
    parser.add_argument("--note", default=None, help="a remark kept in the record")
    args = parser.parse_args(argv)
    out = ASSETS if args.shipped else Path(args.out or Path.cwd() / DEFAULT_OUT)
    try:  # every destination is checked before the first run trains
        for name in args.names:
            check_destination(name, out, args.overwrite)
    except (PermissionError, FileExistsError) as err:
        parser.error(str(err))
    for name in args.names:
        path = train(
            name,
            steps=args.steps,
            out_dir=out,
            overwrite=args.overwrite,
            note=args.note,
        )
        record = path.with_name(f"{name}.json")
        print(f"long run {name}: written to {path} and {record}")
        if not writes_package_assets(out):
            print(
                f"  load it with aigc_utils.longrun.load({name!r}, "
                f"directory={str(path.parent)!r})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
