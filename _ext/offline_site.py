"""Make the built site work offline and keep its browser console clean.

1. MathJax 3 is served from the site itself, so formulas render with no
   internet. The files come from the PyPI package ``django-static-mathjax``
   (plain static files despite its name; no Django needed). After the HTML build
   its ``es5`` directory is copied to ``_static/mathjax`` and Sphinx loads
   MathJax from there instead of a CDN.
2. Two upstream slips of Jupyter Book 1's theme stack are mended, since the
   browser test demands a console without errors: sphinx-thebe's inline
   configuration script is registered twice (a JavaScript redeclaration error),
   and the theme's colour mode defaults to "" (an "invalid theme mode" error).
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


def _dedupe_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {})
        key = (str(getattr(js, "filename", js) or ""), str(sorted(attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: the builder holds the same list
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local, priority=900)
    app.connect("html-page-context", _dedupe_scripts, priority=990)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
