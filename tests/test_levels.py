"""aigc_utils.levels: serialisation, well-formedness, playability, the corpus."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aigc_utils import levels
from aigc_utils.levels import (
    check_level,
    is_playable,
    is_well_formed,
    make_corpus,
    make_level,
    nearest_distance,
    parse,
    serialise,
    shortest_path,
    tile_distance,
    to_codes,
)

OPEN = ("######", "#S..G#", "######")  # 3 steps to the right
WALLED = ("#######", "#S.#.G#", "#######")  # a wall between start and goal
LOCKED = ("#######", "#S.D.G#", "#K#####", "#######")  # door, key below the start
NO_KEY = ("#######", "#S.D.G#", "#######")  # the same door, no key
DETOUR = ("#######", "#S#.G.#", "#.#.#.#", "#.....#", "#######")


@pytest.mark.parametrize("order", ["rows", "columns"])
@pytest.mark.parametrize("frame", [True, False])
def test_serialise_parse_round_trip(order: str, frame: bool) -> None:
    for level in (OPEN, LOCKED, DETOUR, *make_corpus(5, seed=3)):
        text = serialise(level, order, frame=frame)
        assert parse(text, order, frame=frame) == level
        assert parse(text + "\n", order, frame=frame) == level


def test_serialise_reads_rows_or_columns() -> None:
    assert serialise(OPEN, "rows") == "######\n#S..G#\n######"
    assert serialise(OPEN, "columns").split("\n")[:2] == ["###", "#S#"]
    assert serialise(OPEN, "columns", frame=False) == "S\n.\n.\nG"
    assert serialise(LOCKED, "rows", frame=False) == "S.D.G\nK####"


def test_shortest_path_on_hand_made_maps() -> None:
    assert shortest_path(OPEN) == 3
    assert shortest_path(WALLED) is None
    assert shortest_path(DETOUR) == 7  # down, round the wall, up to the goal
    # down to the key and back up, then right through the door
    assert shortest_path(LOCKED) == 6
    assert shortest_path(NO_KEY) is None
    assert is_playable(LOCKED) and not is_playable(NO_KEY)


def test_door_opens_only_after_the_key() -> None:
    key_behind = ("########", "#S.D.KG#", "########")
    assert shortest_path(key_behind) is None
    assert shortest_path(key_behind[:1] + ("#SKD..G#",) + key_behind[2:]) == 5


@pytest.mark.parametrize(
    ("level", "message"),
    [
        (("######", "#S..G.", "######"), "border"),
        (("######", "#...G#", "######"), "exactly one start, found 0"),
        (("######", "#SS.G#", "######"), "exactly one start, found 2"),
        (("######", "#S...#", "######"), "exactly one goal, found 0"),
        (("#######", "#SKK.G#", "#######"), "at most one key, found 2"),
        (("###", "#S#"), "at least 3 x 3"),
        (("######", "#S..G", "######"), "equal lengths"),
        (("######", "#S.xG#", "######"), "unknown tiles"),
        ((), "at least one"),
        ("#S.G#", "tuple of row strings"),
    ],
)
def test_malformed_levels_say_why(level: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_level(level)  # type: ignore[arg-type]
    assert not is_well_formed(level)
    assert not is_playable(level)


def test_shortest_path_rejects_malformed() -> None:
    with pytest.raises(ValueError, match="exactly one goal"):
        shortest_path(("#####", "#S..#", "#####"))


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "empty"),
        ("##\n\n##", {}, "empty"),
        ("###\n##", {}, "equal lengths"),
        ("#a#", {}, "unknown tiles"),
        ("###", {"order": "diagonal"}, "order"),
        (None, {}, "must be a str"),
    ],
)
def test_parse_rejects_bad_text(text: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text, **kwargs)  # type: ignore[arg-type]


def test_serialise_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="order"):
        serialise(OPEN, "spiral")
    with pytest.raises(ValueError, match="drop its frame"):
        serialise(("SG",), frame=False)


def test_corpus_is_seeded_playable_and_varied() -> None:
    a, b = make_corpus(20, seed=7), make_corpus(20, seed=7)
    assert a == b
    assert a != make_corpus(20, seed=8)
    assert all(is_playable(level) for level in a)
    assert all(len(level) == 8 and 20 <= len(level[0]) <= 36 for level in a)
    assert len(set(a)) == 20
    assert any("D" in "".join(level) for level in make_corpus(40, seed=0))


def test_make_level_and_corpus_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="at least 4 x 12"):
        make_level(random.Random(0), height=3)
    with pytest.raises(ValueError, match="n must be"):
        make_corpus(0)
    with pytest.raises(ValueError, match="widths"):
        make_corpus(3, widths=(30, 20))


def test_make_level_gives_up_when_nothing_is_playable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocked = [list(row) for row in WALLED]
    monkeypatch.setattr(levels, "_layout", lambda rng, h, w: blocked)
    with pytest.raises(ValueError, match="no playable"):
        make_level(random.Random(0), tries=3)


def test_codes_and_distances() -> None:
    codes = to_codes(OPEN)
    assert codes.shape == (3, 6) and codes.dtype == np.int64
    assert codes[1, 1] == levels.TILES.index("S")
    assert tile_distance(OPEN, OPEN) == 0.0
    moved = ("######", "#S.G.#", "######")
    assert tile_distance(OPEN, moved) == pytest.approx(2 / 18)
    wider = ("#######", "#S..G.#", "#######")  # 1 differs + 3 unmatched of 21
    assert tile_distance(OPEN, wider) == pytest.approx(4 / 21)
    assert nearest_distance(moved, [wider, OPEN]) == pytest.approx(2 / 18)
    with pytest.raises(ValueError, match="heights differ"):
        tile_distance(OPEN, LOCKED)
    with pytest.raises(ValueError, match="empty"):
        nearest_distance(OPEN, [])
