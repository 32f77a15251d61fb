"""Tile-map game levels: a seeded corpus, text serialisation, playability.

A level is a small top-down map, a tuple of equal-length strings (its rows),
one character per tile::

    ########
    #S..#..#
    #...D.G#
    #K..#..#
    ########

``#`` is a wall, ``.`` floor, ``S`` the start, ``G`` the goal, ``K`` a key and
``D`` a door that opens only for a player who has picked up a key. The player
moves one tile up, down, left or right per step. A level is *well formed* when
it is a rectangle of known tiles framed by walls, with exactly one start, one
goal and at most one key; it is *playable* when the goal can be reached from
the start (breadth-first search over position and key). The corpus generator
lays out a side-scrolling dungeon: wall columns with gaps, sometimes a locked
door with its key before it, a few scattered blocks, the start on the left and
the goal on the right.

Serialised as text (``serialise``), a level is read row by row or column by
column, one line each; a language model trained on such text generates levels
(Summerville and Mateas, "Super Mario as a String", 2016).
"""

from __future__ import annotations

import random
from collections import deque

import numpy as np

WALL, FLOOR, START, GOAL, KEY, DOOR = "#", ".", "S", "G", "K", "D"
TILES = WALL + FLOOR + START + GOAL + KEY + DOOR  # code of each tile = its index
TILE_NAMES = {
    WALL: "wall",
    FLOOR: "floor",
    START: "start",
    GOAL: "goal",
    KEY: "key",
    DOOR: "door",
}
TILE_COLOURS = ["#3b3b3b", "#f4f1e8", "#2ca02c", "#d62728", "#ffbf00", "#8c564b"]
ORDERS = ("rows", "columns")

Level = tuple[str, ...]


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"order must be 'rows' or 'columns', got {order!r}")


def _check_grid(level: object) -> Level:
    """A non-empty rectangle of known tiles, as a tuple of rows."""
    if isinstance(level, str) or not isinstance(level, (tuple, list)):
        raise ValueError(
            f"a level is a tuple of row strings, got {type(level).__name__}; "
            "use parse(text) to read one from text"
        )
    if not level or not all(isinstance(r, str) and r for r in level):
        raise ValueError("a level needs at least one non-empty row string")
    widths = {len(r) for r in level}
    if len(widths) != 1:
        raise ValueError(f"rows of a level must have equal lengths, got {widths}")
    unknown = sorted(set("".join(level)) - set(TILES))
    if unknown:
        raise ValueError(f"unknown tiles {unknown}; the tiles are {TILES!r}")
    return tuple(level)


def transpose(level: Level) -> Level:
    """Rows become columns: ``(H rows of W) -> (W rows of H)``."""
    return tuple("".join(col) for col in zip(*level))


def serialise(level: Level, order: str = "columns", frame: bool = True) -> str:
    """A level as text: one line per row (``"rows"``) or per column, top to
    bottom (``"columns"``), joined by newlines (no trailing newline).

    With ``frame=False`` the outer ring of tiles is left out (for a well-formed
    level it is all walls, so it carries no information); ``parse`` with
    ``frame=False`` puts a wall ring back.

    Raises:
        ValueError: not a rectangle of known tiles (at least 3 x 3 without the
            frame), or an unknown order.
    """
    _check_order(order)
    level = _check_grid(level)
    if not frame:
        if len(level) < 3 or len(level[0]) < 3:
            raise ValueError("a level needs at least 3 x 3 tiles to drop its frame")
        level = tuple(row[1:-1] for row in level[1:-1])
    return "\n".join(level if order == "rows" else transpose(level))


def parse(text: str, order: str = "columns", frame: bool = True) -> Level:
    """Read a level written by ``serialise`` (one trailing newline allowed).

    Raises:
        ValueError: empty text, lines of unequal length, unknown tiles or order.
    """
    _check_order(order)
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    if not text.strip() or any(not line for line in lines):
        raise ValueError("empty line in level text (or empty text)")
    grid = _check_grid(tuple(lines))
    grid = grid if order == "rows" else transpose(grid)
    if not frame:
        ring = WALL * (len(grid[0]) + 2)
        grid = (ring, *(WALL + row + WALL for row in grid), ring)
    return grid


def check_level(level: Level) -> None:
    """Raise ``ValueError`` saying why ``level`` is not well formed.

    Well formed: a rectangle of at least 3 x 3 known tiles, walls all round the
    border, exactly one start and one goal, at most one key.
    """
    level = _check_grid(level)
    if len(level) < 3 or len(level[0]) < 3:
        raise ValueError(
            f"a level is at least 3 x 3, got {len(level)} x {len(level[0])}"
        )
    border = level[0] + level[-1] + "".join(r[0] + r[-1] for r in level)
    if set(border) != {WALL}:
        raise ValueError("the border of a level must be all walls")
    text = "".join(level)
    for tile, most in ((START, 1), (GOAL, 1), (KEY, 1)):
        n = text.count(tile)
        if n > most or (tile != KEY and n != 1):
            need = "exactly one" if tile != KEY else "at most one"
            raise ValueError(f"a level has {need} {TILE_NAMES[tile]}, found {n}")


def is_well_formed(level: object) -> bool:
    """Whether ``check_level`` accepts ``level``."""
    try:
        check_level(level)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def shortest_path(level: Level) -> int | None:
    """Fewest steps from start to goal, or ``None`` if the goal is unreachable.

    Breadth-first search over states (row, column, has key): walls block, a door
    blocks until a key has been picked up (stepping on ``K`` picks it up).

    Raises:
        ValueError: the level is not well formed (see ``check_level``).
    """
    check_level(level)
    text = "".join(level)
    width = len(level[0])
    r0, c0 = divmod(text.index(START), width)
    seen = {(r0, c0, False)}
    queue = deque([(r0, c0, False, 0)])
    while queue:
        r, c, key, steps = queue.popleft()
        if level[r][c] == GOAL:
            return steps
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nr, nc = r + dr, c + dc
            tile = level[nr][nc]  # the wall border keeps indices inside
            if tile == WALL or (tile == DOOR and not key):
                continue
            state = (nr, nc, key or tile == KEY)
            if state not in seen:
                seen.add(state)
                queue.append((*state, steps + 1))
    return None


def is_playable(level: object) -> bool:
    """Well formed and the goal reachable from the start; never raises."""
    return is_well_formed(level) and shortest_path(level) is not None  # type: ignore[arg-type]


def _layout(rng: random.Random, height: int, width: int) -> list[list[str]]:
    grid = (
        [[WALL] * width]
        + [[WALL] + [FLOOR] * (width - 2) + [WALL] for _ in range(height - 2)]
        + [[WALL] * width]
    )
    inner = range(1, height - 1)
    walls, x = [], 1 + rng.randint(3, 5)
    while x < width - 3:
        walls.append(x)
        x += rng.randint(3, 6)
    locked = rng.choice(walls[1:]) if len(walls) > 1 and rng.random() < 0.5 else None
    for x in walls:
        for r in inner:
            grid[r][x] = WALL
        if x == locked:
            grid[rng.choice(inner)][x] = DOOR
        else:
            for r in rng.sample(inner, rng.randint(1, 2)):
                grid[r][x] = FLOOR
    for r in inner:
        for c in range(2, width - 2):
            if c not in walls and rng.random() < 0.08:
                grid[r][c] = WALL
    grid[rng.choice(inner)][1] = START
    grid[rng.choice(inner)][width - 2] = GOAL
    if locked is not None:
        grid[rng.choice(inner)][rng.randrange(2, locked)] = KEY
    return grid


def make_level(
    rng: random.Random, height: int = 8, width: int = 28, tries: int = 1000
) -> Level:
    """One playable corpus level of ``height`` rows and ``width`` columns.

    Lays out a level (see the module docstring) and draws again until it is
    playable, so every level the generator returns is playable.

    Raises:
        ValueError: ``height < 4`` or ``width < 12``, or no playable layout in
            ``tries`` draws.
    """
    if height < 4 or width < 12:
        raise ValueError(f"levels are at least 4 x 12, got {height} x {width}")
    for _ in range(tries):
        level = tuple("".join(row) for row in _layout(rng, height, width))
        if is_playable(level):
            return level
    raise ValueError(f"no playable {height} x {width} level in {tries} draws")


def make_corpus(
    n: int, seed: int = 0, height: int = 8, widths: tuple[int, int] = (20, 36)
) -> list[Level]:
    """``n`` playable levels, widths drawn uniformly from ``widths`` (inclusive);
    the same ``seed`` gives the same levels.

    Raises:
        ValueError: ``n < 1`` or a bad width range.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 12 <= widths[0] <= widths[1]:
        raise ValueError(f"widths must be (lo, hi) with 12 <= lo <= hi, got {widths}")
    rng = random.Random(seed)
    return [make_level(rng, height, rng.randint(*widths)) for _ in range(n)]


def to_codes(level: Level) -> np.ndarray:
    """Tile codes (index in ``TILES``), ``(H, W)`` int64, e.g. for ``imshow``.

    Raises:
        ValueError: not a rectangle of known tiles.
    """
    level = _check_grid(level)
    return np.array([[TILES.index(t) for t in row] for row in level], dtype=np.int64)


def tile_distance(a: Level, b: Level) -> float:
    """Share of tiles that differ, the levels aligned at their left edge.

    Columns that only the wider level has count as different, so the distance
    is ``(differing tiles + H * |W_a - W_b|) / (H * max(W_a, W_b))`` in [0, 1].

    Raises:
        ValueError: not levels, or levels of different heights.
    """
    ca, cb = to_codes(a), to_codes(b)
    if ca.shape[0] != cb.shape[0]:
        raise ValueError(f"heights differ: {ca.shape[0]} and {cb.shape[0]}")
    w = min(ca.shape[1], cb.shape[1])
    differ = int((ca[:, :w] != cb[:, :w]).sum())
    extra = ca.shape[0] * abs(ca.shape[1] - cb.shape[1])
    return (differ + extra) / (ca.shape[0] * max(ca.shape[1], cb.shape[1]))


def nearest_distance(level: Level, corpus: list[Level]) -> float:
    """``tile_distance`` from ``level`` to its nearest level in ``corpus``.

    Raises:
        ValueError: an empty corpus, or the errors of ``tile_distance``.
    """
    if not corpus:
        raise ValueError("the corpus is empty")
    return min(tile_distance(level, other) for other in corpus)
