"""aigc_utils.knobs: sliders over a trained model's settings, and their errors."""

from __future__ import annotations

import pytest

from aigc_utils.knobs import knob


def test_knob_renders_at_the_defaults_and_on_each_move() -> None:
    calls: list[dict] = []
    panel = knob(
        lambda **kw: calls.append(kw),
        defaults={"w": 2.0},
        w=[0.0, 2.0, 4.0],
        steps=(5, 10),
    )
    assert calls == [{"w": 2.0, "steps": 5}]  # rendered once at the start values
    slider_w, slider_steps, _output = panel.children
    assert (slider_w.description, list(slider_w.options)) == ("w", [0.0, 2.0, 4.0])
    slider_w.value = 4.0  # what releasing the slider does
    slider_steps.value = 10
    assert calls[1:] == [{"w": 4.0, "steps": 5}, {"w": 4.0, "steps": 10}]


@pytest.mark.parametrize(
    ("choices", "defaults", "error", "match"),
    [
        ({}, None, ValueError, "at least one"),
        ({"w": []}, None, ValueError, "no values"),
        ({"w": "abc"}, None, TypeError, "list or tuple"),
        ({"w": 3}, None, TypeError, "list or tuple"),
        ({"w": [1, 2]}, {"w": 3}, ValueError, "not among its values"),
        ({"w": [1, 2]}, {"tau": 1}, ValueError, "not a knob"),
    ],
)
def test_knob_rejects_bad_choices(choices, defaults, error, match) -> None:
    with pytest.raises(error, match=match):
        knob(lambda **kw: None, defaults=defaults, **choices)


def test_knob_only_makes_sliders_for_its_keywords_and_raises_a_first_failure() -> None:
    calls: list[tuple] = []

    def render(w, show=True):  # a parameter that is not a knob gets no widget
        calls.append((w, show))

    panel = knob(render, w=[1, 2])
    assert len(panel.children) == 2 and calls == [(1, True)]

    def broken(w):
        raise RuntimeError(f"cannot draw w={w}")

    with pytest.raises(RuntimeError, match="cannot draw w=1"):
        knob(broken, w=[1, 2])
