"""Shared fixtures: an isolated data environment and a local HTTP mirror."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

# The real data, when this machine has a local copy (CI and the developers' machines).
SHARED_DATA = os.environ.get("AIGC_DATA_DIR")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AIGC_DATA_DIR and an empty cache under tmp_path; returns the cache dir."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("AIGC_DATA_DIR", raising=False)
    monkeypatch.setenv("AIGC_CACHE_DIR", str(cache))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return cache


@pytest.fixture
def shared_data() -> Path:
    """The real data directory; skip where this machine has none, except in CI,
    where a missing copy fails (a test that silently skips proves nothing)."""
    if not SHARED_DATA or not Path(SHARED_DATA).is_dir():
        reason = "AIGC_DATA_DIR does not name a local copy of the data"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the tests that need it)")
        pytest.skip(reason)
    return Path(SHARED_DATA)


class Mirror:
    """A file server on 127.0.0.1 with a good, a corrupt, a truncated and a dead
    route, all serving files from ``root``:

    - ``/good/<path>``: the file;
    - ``/corrupt/<path>``: the file with one byte flipped in the middle;
    - ``/truncated/<path>``: announces the full length, sends half, hangs up;
    - ``/missing/<path>``: 404.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                mirror.requests.append(self.path)
                mode, _, rel = self.path.lstrip("/").partition("/")
                file = mirror.root / rel
                if mode == "missing" or not file.is_file():
                    self.send_error(404)
                    return
                body = file.read_bytes()
                if mode == "corrupt":
                    mid = len(body) // 2
                    body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1 :]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncated":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, mode: str, relpath: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{mode}/{relpath}"


@pytest.fixture
def mirror_factory() -> Iterator:
    servers: list[Mirror] = []

    def make(root: Path) -> Mirror:
        m = Mirror(root)
        m.thread.start()
        servers.append(m)
        return m

    yield make
    for m in servers:
        m.server.shutdown()
        m.server.server_close()
