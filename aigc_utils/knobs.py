"""Knobs: sliders over settings of a model the chapter has already trained.

A reader would rather turn a knob than read a table: the guidance weight and
the number of sampling steps of a diffusion model, the temperature of a language
model, the beta of a VAE. ``knob(render, w=[0, 1, 2, 4], steps=[5, 10, 20])``
shows one slider per keyword, each stepping through the listed values, and calls
``render(w=..., steps=...)`` whenever one is released; ``render`` draws or prints
its result (a figure, a sample), typically from a model trained earlier in the
chapter, so turning a knob costs a sampling call, not a training run. It works
in JupyterLab, Jupyter Notebook and Colab (ipywidgets).

A static web page cannot call Python, so a chapter that has a knob also draws
the same sweep as an ordinary figure for the website, and tags the knob's cell
``remove-output``. Without ipywidgets, ``knob`` renders once, at the default
values, and says how to get the sliders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def _widgets() -> Any | None:
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover - ipywidgets is a dependency
        return None
    return ipywidgets


def _check(choices: dict[str, Sequence[Any]], defaults: dict[str, Any]) -> None:
    if not choices:
        raise ValueError("knob needs at least one keyword with values to choose from")
    for name, values in choices.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(
                f"knob {name!r}: give a list or tuple of values, got "
                f"{type(values).__name__}"
            )
        if len(values) == 0:
            raise ValueError(f"knob {name!r} has no values to choose from")
    for name, value in defaults.items():
        if name not in choices:
            raise ValueError(f"default for {name!r}, which is not a knob")
        if value not in choices[name]:
            raise ValueError(
                f"default {value!r} of knob {name!r} is not among its values "
                f"{list(choices[name])}"
            )


def knob(
    render: Callable[..., Any],
    *,
    defaults: dict[str, Any] | None = None,
    **choices: Sequence[Any],
) -> Any:
    """One slider per keyword of ``choices``; moving one calls ``render``.

    Args:
        render: called as ``render(**values)`` with one value per knob, at the
            defaults first and then each time a slider is released. It shows its
            result itself (``plt.show()``, ``print``) and its return value is
            ignored.
        defaults: starting value of some knobs (each must be one of its
            values); the others start at their first value.
        **choices: knob name -> the values it steps through, in slider order.

    Returns:
        The panel (an ipywidgets ``VBox`` of the sliders and an ``Output`` that
        shows what ``render`` draws), already displayed; or ``None`` where
        ipywidgets is missing (``render`` then ran once at the defaults).

    Raises:
        ValueError: no knobs, a knob without values, or a default that is not
            one of its knob's values.
        TypeError: a knob's values are not a list or tuple.
        Exception: whatever ``render`` raises at the start values (later
            failures show in the panel instead).
    """
    defaults = dict(defaults or {})
    _check(choices, defaults)
    start = {name: defaults.get(name, values[0]) for name, values in choices.items()}
    widgets = _widgets()
    if widgets is None:  # pragma: no cover - ipywidgets is a dependency
        print("(install ipywidgets for sliders; showing the default setting)")
        render(**start)
        return None
    sliders = {
        name: widgets.SelectionSlider(
            options=list(values),
            value=start[name],
            description=name,
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"),
        )
        for name, values in choices.items()
    }
    from IPython.display import display

    output = widgets.Output()

    def update(change: Any = None) -> None:  # noqa: ARG001 - the observer's argument
        output.clear_output(wait=True)
        with output:  # a failure inside shows in the panel; the first one is raised
            try:
                render(**{name: slider.value for name, slider in sliders.items()})
            except Exception as err:
                failures.append(err)
                raise

    failures: list[Exception] = []
    for slider in sliders.values():
        slider.observe(update, names="value")
    panel = widgets.VBox([*sliders.values(), output])
    display(panel)
    update()
    if failures:  # rendering at the start values failed: fail the cell, not silently
        raise failures[0]
    return panel
