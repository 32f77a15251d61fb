"""Datasets of the course: MNIST and Tiny Shakespeare, found offline or downloaded.

Every file is looked up in this order:

1. the directory named by the environment variable ``AIGC_DATA_DIR`` (a local
   copy, e.g. on a machine without internet);
2. the user cache directory (``AIGC_CACHE_DIR``, else ``$XDG_CACHE_HOME/aigc_utils``,
   else ``~/.cache/aigc_utils``);
3. a download from the official locations, trying the next mirror when one fails.

The SHA-256 of the file's *decompressed* content is verified on every cache hit
and after every download. Downloads go to a temporary file that is renamed only
once it has been verified, so an interrupted or corrupt download never leaves a
file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

DATA_DIR_ENV = "AIGC_DATA_DIR"
CACHE_DIR_ENV = "AIGC_CACHE_DIR"


class ChecksumError(ValueError):
    """A file's content does not have the expected SHA-256 (corrupt or truncated)."""


class IDXFormatError(ValueError):
    """A file is not a valid IDX array (bad magic number or wrong size)."""


@dataclass(frozen=True)
class Resource:
    """One data file: where it lives relative to a data directory and how to check it.

    ``relpath`` is relative to ``AIGC_DATA_DIR`` and to the cache directory, e.g.
    ``"mnist/train-images-idx3-ubyte.gz"``. ``sha256`` is the hash of the content
    after gzip decompression when ``relpath`` ends in ``.gz``.
    """

    relpath: str
    sha256: str
    urls: tuple[str, ...]


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte.gz": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}
MNIST_FILES: dict[str, Resource] = {
    name: Resource(f"mnist/{name}", digest, tuple(m + name for m in _MNIST_MIRRORS))
    for name, digest in _MNIST_SHA256.items()
}
SHAKESPEARE = Resource(
    "tinyshakespeare/input.txt",
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
        "tinyshakespeare/input.txt",
    ),
)


# ---------------------------------------------------------------------------
# Locating, verifying and downloading files


def cache_dir() -> Path:
    """The user cache directory for downloads (created on first download)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aigc_utils"


def content_sha256(path: Path, name: str | None = None) -> str:
    """SHA-256 of a file's content, decompressed first if its name ends in ``.gz``.

    ``name`` overrides ``path.name`` for that decision (a temporary file).

    Raises:
        ChecksumError: if a ``.gz`` file is truncated or not gzip data.
    """
    digest = hashlib.sha256()
    opener = gzip.open if (name or path.name).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ChecksumError(f"{path} is not a complete gzip file ({err}).") from err
    return digest.hexdigest()


def _check(path: Path, resource: Resource, name: str | None = None) -> None:
    """Raise ChecksumError unless ``path`` holds ``resource``'s content."""
    actual = content_sha256(path, name)
    if actual != resource.sha256:
        raise ChecksumError(
            f"{path} has SHA-256 {actual} but {resource.relpath} should have "
            f"{resource.sha256}. The file is corrupt or incomplete: delete it and "
            "run again to download a fresh copy."
        )


def _download(url: str, target: Path, resource: Resource, timeout: float) -> None:
    """Download ``url`` to ``target`` through a verified temporary file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=target.name + ".", suffix=".part", dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            expected = response.headers.get("Content-Length")
            try:
                shutil.copyfileobj(response, out)
            except http.client.IncompleteRead as err:
                raise ChecksumError(f"{url} closed the connection early") from err
            received = out.tell()
        if expected is not None and int(expected) != received:
            raise ChecksumError(
                f"{url} sent {received} bytes but announced {expected}: truncated."
            )
        # the temporary name does not end in .gz: check it under the real name
        _check(tmp, resource, name=target.name)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(resource: Resource, *, download: bool = True, timeout: float = 60.0) -> Path:
    """Return the path of a verified local copy of ``resource``.

    Looks in ``$AIGC_DATA_DIR``, then in :func:`cache_dir`, then downloads into the
    cache from ``resource.urls`` in order.

    Raises:
        ChecksumError: a copy in ``$AIGC_DATA_DIR`` is corrupt, or every mirror
            that answered sent corrupt or truncated data (nothing is cached).
        FileNotFoundError: no local copy and no mirror could be reached (or
            ``download=False``); the message names the file, ``AIGC_DATA_DIR``
            and the URLs.
    """
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        local = Path(data_dir).expanduser() / resource.relpath
        if local.exists():
            _check(local, resource)
            return local
    cached = cache_dir() / resource.relpath
    if cached.exists():
        try:
            _check(cached, resource)
            return cached
        except ChecksumError:
            cached.unlink()  # a bad cache entry is replaced by a fresh download
    failures: list[str] = []
    corrupt = False
    if download:
        for url in resource.urls:
            try:
                _download(url, cached, resource, timeout)
                return cached
            except ChecksumError as err:
                corrupt = True
                failures.append(f"  {url}: {err}")
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                failures.append(f"  {url}: {err}")
    where = (
        f"{DATA_DIR_ENV}={data_dir!r} has no {resource.relpath}"
        if data_dir
        else f"{DATA_DIR_ENV} is not set"
    )
    tried = "\n".join(failures) if failures else "  (downloads disabled)"
    message = (
        f"Could not find or download {resource.relpath}. {where}; the cache "
        f"{cached} has no copy. Mirrors tried:\n{tried}\n"
        f"Either connect to the internet, or put the file at "
        f"<dir>/{resource.relpath} and set {DATA_DIR_ENV}=<dir>. "
        f"Official URLs: {', '.join(resource.urls)}"
    )
    if corrupt:
        raise ChecksumError(message)
    raise FileNotFoundError(message)


# ---------------------------------------------------------------------------
# MNIST

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    The IDX format is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then
    ``ndim`` big-endian uint32 sizes, then the data.

    Raises:
        IDXFormatError: bad magic number, unknown dtype, or a data size that does
            not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IDXFormatError(
            f"{path} does not start with an IDX magic number (got {raw[:4].hex()}); "
            "is it really an MNIST file?"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise IDXFormatError(f"{path} has a truncated IDX header.")
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{path}: header says shape {shape} ({expected} bytes of data) but the "
            f"file has {len(raw) - header}. The file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images and labels as tensors.

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).

    Returns:
        images: ``(N, 1, 28, 28)`` float32 in [0, 1].
        labels: ``(N,)`` int64 in 0..9.

    Raises:
        ValueError: unknown split. See :func:`fetch` and :func:`read_idx` for the
            file errors.
    """
    prefixes = {"train": "train", "test": "t10k"}
    if split not in prefixes:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    p = prefixes[split]
    images = read_idx(fetch(MNIST_FILES[f"{p}-images-idx3-ubyte.gz"]))
    labels = read_idx(fetch(MNIST_FILES[f"{p}-labels-idx1-ubyte.gz"]))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise IDXFormatError(
            f"MNIST {split}: images {images.shape} and labels {labels.shape} "
            "do not match."
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def mnist_loaders(
    batch_size: int = 128,
    *,
    test_batch_size: int = 1000,
    flatten: bool = False,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Shuffled training and ordered test DataLoaders over in-memory MNIST.

    Batches are ``(x, y)`` with ``x: (B, 1, 28, 28)`` (or ``(B, 784)`` when
    ``flatten``) in [0, 1] and ``y: (B,)`` int64. The training order is drawn
    from a generator seeded with ``seed``, so runs repeat.
    """
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError("batch sizes must be positive")
    loaders = []
    for split in ("train", "test"):
        x, y = load_mnist(split)
        if flatten:
            x = x.flatten(1)
        train = split == "train"
        loaders.append(
            DataLoader(
                TensorDataset(x, y),
                batch_size=batch_size if train else test_batch_size,
                shuffle=train,
                generator=torch.Generator().manual_seed(seed) if train else None,
            )
        )
    return loaders[0], loaders[1]


# ---------------------------------------------------------------------------
# Tiny Shakespeare


def load_shakespeare() -> str:
    """The Tiny Shakespeare text (1,115,394 characters, 65 distinct)."""
    return fetch(SHAKESPEARE).read_text(encoding="utf-8")


def flat_ids(ids: torch.Tensor | Sequence[int], size: int) -> list[int]:
    """Token ids of any shape, flattened to a list, each checked to lie in
    ``0..size-1`` (the vocabularies' ``decode`` methods use it).

    Raises:
        ValueError: an id outside ``0..size-1``.
    """
    flat = torch.as_tensor(ids).flatten().tolist()
    bad = [i for i in flat if not 0 <= i < size]
    if bad:
        raise ValueError(f"ids {bad[:5]} are outside 0..{size - 1}")
    return flat


class CharVocab:
    """A character vocabulary: characters sorted, ids ``0..len(vocab)-1``."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        self.chars: list[str] = sorted(set(text))
        self._index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``text`` as ids, shape ``(len(text),)`` int64.

        Raises:
            ValueError: a character is not in the vocabulary.
        """
        try:
            ids = [self._index[c] for c in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in the vocabulary of "
                f"{len(self)} characters"
            ) from None
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids (any shape that flattens to 1-D) back to text.

        Raises:
            ValueError: an id outside ``0..len(vocab)-1``.
        """
        return "".join(self.chars[i] for i in flat_ids(ids, len(self)))


def shakespeare_splits(
    val_fraction: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, CharVocab]:
    """Tiny Shakespeare as ids, split in order: the first 90% trains, the rest
    validates (the split every text chapter uses).

    Returns:
        train: ``(N_train,)`` int64; val: ``(N_val,)`` int64; the vocabulary.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = load_shakespeare()
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    n_train = int(len(ids) * (1.0 - val_fraction))
    return ids[:n_train], ids[n_train:], vocab
