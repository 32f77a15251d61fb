"""Showing the package's code on the page, from the package itself.

A chapter that trains a model shows the model's code where the prose explains
it. ``show_source(GPT.forward)`` renders the code that actually runs, so the page
can never drift from the package (a renamed or deleted object fails the
notebook's execution in CI).
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any


def source(obj: Any) -> str:
    """The source code of a class, function or method, dedented.

    Raises:
        TypeError: ``obj`` has no Python source (a builtin, an instance).
    """
    try:
        text = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(
            f"no Python source for {obj!r}: pass a class or function"
        ) from err
    return textwrap.dedent(text)


def show_source(obj: Any) -> Any:
    """Display ``obj``'s source as highlighted Python in a notebook.

    Returns an ``IPython.display.Code`` object (rendered as highlighted HTML in
    Jupyter, Colab and the built book); outside IPython, the source string.
    """
    text = source(obj)
    try:
        from IPython.display import Code
    except ImportError:  # plain Python: the text is still useful
        return text
    return Code(text, language="python")
