"""aigc_utils.data: the IDX reader, lookup order, verification and downloads."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from aigc_utils import data
from aigc_utils.data import (
    MNIST_FILES,
    CharVocab,
    ChecksumError,
    IDXFormatError,
    Resource,
    fetch,
    read_idx,
)


def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> Path:
    header = magic or bytes([0, 0, 0x08, array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def gz_resource(tmp_path: Path, name: str = "toy/labels-idx1-ubyte.gz") -> Resource:
    """A small gzipped IDX file under tmp_path/src and its Resource."""
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([3, 1, 4, 1, 5])
    src = tmp_path / "src" / name
    src.parent.mkdir(parents=True)
    src.write_bytes(gzip.compress(raw))
    return Resource(name, hashlib.sha256(raw).hexdigest(), ())


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing"


# --------------------------------------------------------------------- IDX


def test_read_idx_roundtrip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        out = read_idx(write_idx(tmp_path / name, array))
        np.testing.assert_array_equal(out, array)


def test_read_idx_bad_magic(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.zeros((2, 2)), magic=b"\x1f\x8b\x08\x03")
    with pytest.raises(IDXFormatError, match="magic number"):
        read_idx(path)


def test_read_idx_wrong_size(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.zeros((2, 2)))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(IDXFormatError, match="truncated or corrupt"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(IDXFormatError, match="header"):
        read_idx(path)


# ------------------------------------------------------ lookup and checksum


def test_fetch_prefers_data_dir(tmp_path, isolated_data, monkeypatch) -> None:
    res = gz_resource(tmp_path)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "src"))
    assert fetch(res) == tmp_path / "src" / res.relpath


def test_fetch_corrupt_data_dir_copy_is_refused(tmp_path, isolated_data, monkeypatch):
    res = dataclasses.replace(gz_resource(tmp_path), sha256="0" * 64)
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "src"))
    with pytest.raises(ChecksumError, match="corrupt or incomplete"):
        fetch(res)


def test_truncated_gzip_is_a_checksum_error(tmp_path, isolated_data, monkeypatch):
    res = gz_resource(tmp_path)
    file = tmp_path / "src" / res.relpath
    file.write_bytes(file.read_bytes()[:-6])
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "src"))
    with pytest.raises(ChecksumError, match="gzip"):
        fetch(res)


def test_offline_without_copy_names_file_setting_and_urls(isolated_data) -> None:
    res = Resource("mnist/x.gz", "0" * 64, (dead_url(), dead_url()))
    with pytest.raises(FileNotFoundError) as err:
        fetch(res)
    message = str(err.value)
    assert "mnist/x.gz" in message and "AIGC_DATA_DIR" in message
    assert all(url in message for url in res.urls)
    assert not any(p.is_file() for p in isolated_data.rglob("*"))


def test_download_disabled(isolated_data) -> None:
    with pytest.raises(FileNotFoundError, match="downloads disabled"):
        fetch(Resource("a/b.txt", "0" * 64, ("http://127.0.0.1:9/x",)), download=False)


def test_missing_file_in_data_dir_falls_through(tmp_path, isolated_data, monkeypatch):
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="has no a/b.txt"):
        fetch(Resource("a/b.txt", "0" * 64, ()))


def test_cache_dir_default_and_xdg(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("AIGC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / "aigc_utils"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir() == Path.home() / ".cache" / "aigc_utils"


# ------------------------------------------------------------ downloading


def test_download_verifies_and_caches(tmp_path, isolated_data, mirror_factory):
    res = gz_resource(tmp_path)
    mirror = mirror_factory(tmp_path / "src")
    res = dataclasses.replace(res, urls=(mirror.url("good", res.relpath),))
    path = fetch(res)
    assert path == isolated_data / res.relpath and path.exists()
    assert fetch(res) == path  # a cache hit: verified, not downloaded again
    assert len(mirror.requests) == 1


def test_failing_mirror_then_good_one(tmp_path, isolated_data, mirror_factory):
    res = gz_resource(tmp_path)
    mirror = mirror_factory(tmp_path / "src")
    urls = (
        dead_url(),
        mirror.url("missing", res.relpath),
        mirror.url("good", res.relpath),
    )
    assert fetch(dataclasses.replace(res, urls=urls)).exists()


@pytest.mark.parametrize("mode", ["corrupt", "truncated"])
def test_bad_bytes_are_never_cached(tmp_path, isolated_data, mirror_factory, mode):
    res = gz_resource(tmp_path)
    mirror = mirror_factory(tmp_path / "src")
    bad = dataclasses.replace(res, urls=(mirror.url(mode, res.relpath),))
    with pytest.raises(ChecksumError, match="Mirrors tried"):
        fetch(bad)
    leftovers = [p for p in isolated_data.rglob("*") if p.is_file()]
    assert leftovers == []
    # and a good mirror after the bad one is used
    both = dataclasses.replace(res, urls=(bad.urls[0], mirror.url("good", res.relpath)))
    assert fetch(both).exists()


def test_corrupt_cache_entry_is_replaced(tmp_path, isolated_data, mirror_factory):
    res = gz_resource(tmp_path)
    mirror = mirror_factory(tmp_path / "src")
    res = dataclasses.replace(res, urls=(mirror.url("good", res.relpath),))
    cached = isolated_data / res.relpath
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not gzip at all")
    assert fetch(res) == cached
    assert data.content_sha256(cached) == res.sha256


def test_real_mnist_file_through_local_mirror(
    shared_data, isolated_data, mirror_factory
):
    """The official file names and checksums, served from the local copy."""
    mirror = mirror_factory(shared_data)
    res = MNIST_FILES["t10k-labels-idx1-ubyte.gz"]
    local = dataclasses.replace(
        res,
        urls=(
            dead_url(),
            mirror.url("corrupt", res.relpath),
            mirror.url("good", res.relpath),
        ),
    )
    labels = read_idx(fetch(local))
    assert labels.shape == (10000,) and labels.max() == 9


# ------------------------------------------------------------ the datasets


def test_load_mnist(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_DATA_DIR", str(shared_data))
    x, y = data.load_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.bincount().tolist()[:3] == [980, 1135, 1032]


def test_load_mnist_bad_split() -> None:
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")


def test_mnist_loaders(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_DATA_DIR", str(shared_data))
    train, test = data.mnist_loaders(batch_size=32, flatten=True, seed=1)
    x, y = next(iter(train))
    assert x.shape == (32, 784) and y.shape == (32,)
    x2, _ = next(iter(data.mnist_loaders(batch_size=32, flatten=True, seed=1)[0]))
    assert torch.equal(x, x2)  # seeded order
    assert len(test.dataset) == 10000
    with pytest.raises(ValueError, match="positive"):
        data.mnist_loaders(batch_size=0)


def test_shakespeare(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_DATA_DIR", str(shared_data))
    train, val, vocab = data.shakespeare_splits()
    assert len(vocab) == 65 and len(train) + len(val) == 1115394
    assert len(val) == 1115394 - int(1115394 * 0.9)
    assert vocab.decode(train[:14]) == "First Citizen:"
    with pytest.raises(ValueError, match="val_fraction"):
        data.shakespeare_splits(1.0)


def test_char_vocab() -> None:
    vocab = CharVocab("hello world")
    ids = vocab.encode("hello")
    assert ids.dtype == torch.int64 and vocab.decode(ids) == "hello"
    assert vocab.decode([[0, 1]]) == " d"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("hello!")
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([99])
    with pytest.raises(ValueError, match="empty"):
        CharVocab("")
