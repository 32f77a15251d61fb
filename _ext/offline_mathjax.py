"""Serve MathJax 3 from the built site itself, so formulas render offline.

The MathJax files come from the PyPI package ``django-static-mathjax`` (pure
static files despite its name; no Django needed). After the HTML build, its
``es5`` directory is copied to ``_static/mathjax`` and Sphinx is told to load
MathJax from there instead of a CDN.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from sphinx.application import Sphinx

ENTRY = "mathjax/tex-mml-chtml.js"  # relative to _static


def _es5_dir() -> Path:
    try:
        root = Path(str(files("mathjax")))
    except ModuleNotFoundError as err:
        raise RuntimeError(
            "MathJax is not installed: pip install django-static-mathjax "
            "(make book installs it)"
        ) from err
    es5 = root / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise RuntimeError(f"no MathJax es5 build under {root}")
    return es5


def _use_local(app: Sphinx, config) -> None:
    _es5_dir()  # fail early, before a long build, if MathJax is missing
    config.mathjax_path = ENTRY


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        shutil.copytree(_es5_dir(), target, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local, priority=900)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
