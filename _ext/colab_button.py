"""The website's Colab button opens the Colab edition of the chapter.

sphinx-book-theme's launch menu links Colab to the executed notebook under
``notebooks/``, whose MyST (glued numbers, cross-references, citations) Colab
cannot render and whose reference solutions are in plain view. ``make colab``
(``tools/colab.py``) writes editions with all of that resolved, under
``colab/student/`` and ``colab/teacher/``. This extension points the menu's
"Colab" entry at the student edition and adds "Colab (teacher)" beside it.

A chapter with no committed edition keeps the theme's link and gets a warning,
which fails the book's build (warnings are errors there): run ``make colab``.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
COLAB_DIR = "colab"
LAUNCH = re.compile(
    r"^(?P<head>https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/)"
    r"notebooks/(?P<rel>.+\.ipynb)$"
)


def colab_urls(launch_url: str) -> dict[str, str]:
    """The student's and teacher's Colab URLs for the theme's Colab ``launch_url``
    (``.../blob/<branch>/notebooks/<part>/<chapter>.ipynb``); empty when the
    URL is not a chapter's."""
    match = LAUNCH.match(launch_url)
    if not match:
        return {}
    return {
        variant: f"{match['head']}{COLAB_DIR}/{variant}/{match['rel']}"
        for variant in ("student", "teacher")
    }


def point_to_editions(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree
) -> None:
    """Rewrite the launch menu's Colab entry (``html-page-context``, after the
    theme built the menu)."""
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = group["buttons"]
        for i, button in enumerate(list(buttons)):
            match = LAUNCH.match(button.get("url", ""))
            if button.get("text") != "Colab" or not match:
                continue
            rel = f"{COLAB_DIR}/student/{match['rel']}"
            if not (Path(app.srcdir) / rel).is_file():
                LOGGER.warning(
                    f"{pagename}: no Colab edition {rel}; run make colab",
                    location=pagename,
                )
                continue
            urls = colab_urls(button["url"])
            button["url"] = urls["student"]
            button["tooltip"] = "Open the student's notebook on Colab"
            teacher = dict(button, text="Colab (teacher)", url=urls["teacher"])
            teacher["tooltip"] = "Open the teacher's notebook, with solutions, on Colab"
            buttons.insert(i + 1, teacher)
            break


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", point_to_editions, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
