"""Bach chorales as tokens: parse once, cache, split, and turn tokens back into sound.

The 4-part chorales that ship with ``music21`` (``music21.corpus``, offline once
the package is installed) are parsed once into a grid of integer codes, one row
per sixteenth note and one column per voice (soprano, alto, tenor, bass)::

    code = p          a note of MIDI pitch p starts here (0..127)
    code = HOLD + p   the note of pitch p started earlier and still sounds
    code = REST       silence

and cached as a small ``.npz`` file, so later loads need neither the parser nor
its time. A chorale reads as tokens: a pitch name (``"C4"`` is MIDI 60) when a
note starts, ``"_"`` while it is held, ``"R"`` for a rest; with several voices
the tokens of one time step are interleaved (S, A, T, B, S, A, ...)::

    chorales = load_chorales()
    train, val, vocab = chorale_splits(chorales, voices=1)
    write_midi(chorales[0].in_c().tokens(voices=1), "melody.mid", voices=1)
    wave = synthesize(chorales[0].tokens(voices=4), voices=4)   # play it
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from aigc_utils.data import DATA_DIR_ENV, cache_dir, flat_ids

REST, HOLD = -1, 128
SPQ = 4  # grid steps per quarter note in the cache (a sixteenth-note grid)
FORMAT = 1  # bump when the cached arrays change meaning
REST_TOKEN, HOLD_TOKEN, END_TOKEN = "R", "_", "|"
VOICES = ("soprano", "alto", "tenor", "bass")
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_PITCH = re.compile(r"^([A-G]#?)(-?\d)$")
_INSTALL_HINT = "install it with `pip install music21` (the course pins 10.5.1)"


class CacheError(ValueError):
    """A cached chorale file is unreadable or inconsistent (corrupt, truncated)."""


class Note(NamedTuple):
    """One note of one voice: MIDI ``pitch``, ``start`` step and ``duration`` in
    grid steps (both >= 0, ``duration`` >= 1)."""

    pitch: int
    start: int
    duration: int


# ---------------------------------------------------------------------------
# tokens <-> pitches <-> notes


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> token, e.g. ``60 -> "C4"``, ``70 -> "A#4"``.

    Raises:
        ValueError: a pitch outside 0..127.
    """
    if isinstance(pitch, bool) or not 0 <= int(pitch) <= 127:
        raise ValueError(f"a MIDI pitch is an int in 0..127, got {pitch!r}")
    return f"{_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def pitch_of(token: str) -> int:
    """Pitch token -> MIDI pitch, e.g. ``"C4" -> 60``.

    Raises:
        ValueError: not a pitch token (the message lists the token forms).
    """
    m = _PITCH.match(token) if isinstance(token, str) else None
    pitch = (_NAMES.index(m.group(1)) + 12 * (int(m.group(2)) + 1)) if m else -1
    if not 0 <= pitch <= 127:
        raise ValueError(
            f"unknown token {token!r}: expected a pitch such as 'C4' or 'F#3' "
            f"(sharps only, MIDI 0..127), {HOLD_TOKEN!r} (hold) or "
            f"{REST_TOKEN!r} (rest)"
        )
    return pitch


def grid_to_tokens(grid: np.ndarray) -> list[str]:
    """Codes ``(T, V)`` -> ``T * V`` tokens, the V voices of each step in a row."""
    grid = _check_grid(grid)
    return [
        REST_TOKEN if c < 0 else HOLD_TOKEN if c >= HOLD else pitch_name(c)
        for c in grid.reshape(-1).tolist()
    ]


def tokens_to_grid(tokens: Sequence[str], voices: int = 1) -> np.ndarray:
    """Tokens (V voices interleaved) -> codes ``(T, V)`` int16.

    A hold with no sounding note before it (at the start, after a rest) is read
    as a rest, so that any sampled sequence can be played.

    Raises:
        ValueError: ``voices`` < 1, a length that is not a multiple of ``voices``,
            or an unknown token (``"|"`` included: split pieces first).
    """
    if isinstance(voices, bool) or not isinstance(voices, int) or voices < 1:
        raise ValueError(f"voices must be a positive int, got {voices!r}")
    if isinstance(tokens, str) or len(tokens) % voices:
        raise ValueError(
            f"expected a sequence of tokens whose length is a multiple of "
            f"voices={voices}, got {type(tokens).__name__} of length {len(tokens)}"
        )
    grid = np.full((len(tokens) // voices, voices), REST, dtype=np.int16)
    last = [REST] * voices  # the pitch each voice is sounding
    for i, tok in enumerate(tokens):
        t, v = divmod(i, voices)
        if tok == REST_TOKEN or (tok == HOLD_TOKEN and last[v] == REST):
            last[v] = REST
        elif tok == HOLD_TOKEN:
            grid[t, v] = HOLD + last[v]
        else:
            grid[t, v] = last[v] = pitch_of(tok)
    return grid


def grid_to_notes(grid: np.ndarray) -> list[list[Note]]:
    """Codes ``(T, V)`` -> for each voice, its notes in time order (rests are the
    gaps between them)."""
    grid = _check_grid(grid)
    voices: list[list[Note]] = []
    for column in grid.T.tolist():
        notes: list[Note] = []
        for t, c in enumerate(column):
            if 0 <= c < HOLD:
                notes.append(Note(c, t, 1))
            elif c >= HOLD and notes and notes[-1].start + notes[-1].duration == t:
                notes[-1] = notes[-1]._replace(duration=notes[-1].duration + 1)
        voices.append(notes)
    return voices


def notes_to_grid(
    voices: Sequence[Sequence[Note]], steps: int | None = None
) -> np.ndarray:
    """Per-voice notes -> codes ``(steps, V)`` int16 (``steps`` defaults to the end
    of the last note).

    Raises:
        ValueError: no voices, overlapping notes in one voice, bad pitch or
            duration, or a note that ends after ``steps``.
    """
    if not voices:
        raise ValueError("expected at least one voice")
    end = max((n.start + n.duration for v in voices for n in v), default=0)
    steps = end if steps is None else steps
    if end > steps:
        raise ValueError(f"a note ends at step {end}, after steps={steps}")
    grid = np.full((steps, len(voices)), REST, dtype=np.int16)
    for v, notes in enumerate(voices):
        free = 0
        for n in sorted(notes, key=lambda n: n.start):
            pitch_name(n.pitch)  # validates the pitch
            if n.duration < 1 or n.start < free:
                raise ValueError(f"voice {v}: {n} overlaps or has no duration")
            grid[n.start, v] = n.pitch
            grid[n.start + 1 : n.start + n.duration, v] = HOLD + n.pitch
            free = n.start + n.duration
    return grid


def _check_grid(grid: object) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 2 or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError(
            f"expected integer codes (T, V), got {grid.dtype} {grid.shape}"
        )
    if grid.size and (grid.min() < REST or grid.max() >= 2 * HOLD):
        raise ValueError(f"codes must be in {REST}..{2 * HOLD - 1}")
    return grid


def coarsen(grid: np.ndarray, factor: int) -> np.ndarray:
    """Keep every ``factor``-th step of a grid ``(T, V)`` -> ``(ceil(T/f), V)``.

    A note that starts between kept steps starts at the next kept one; notes
    shorter than ``factor`` steps may vanish.
    """
    grid = _check_grid(grid)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    out = grid[::factor].copy()
    before = np.vstack([np.full((1, out.shape[1]), REST), out[:-1]])
    orphan = (out >= HOLD) & ((before < 0) | (before % HOLD != out % HOLD))
    out[orphan] -= HOLD
    return out


# ---------------------------------------------------------------------------
# chorales


@dataclass(frozen=True, eq=False)
class Chorale:
    """One chorale: ``grid (T, 4)`` int16 codes on a sixteenth-note grid (S, A, T,
    B), its key signature (``sharps``, negative for flats) and mode."""

    name: str
    grid: np.ndarray
    sharps: int
    minor: bool

    @property
    def key(self) -> str:
        """E.g. ``"F major"`` or ``"d minor"``, from the key signature and mode."""
        tonic = (7 * self.sharps + (9 if self.minor else 0)) % 12
        name = (_FLAT_NAMES if self.sharps < 0 else _NAMES)[tonic]
        return f"{name.lower()} minor" if self.minor else f"{name} major"

    def transposed(self, semitones: int) -> Chorale:
        """The chorale moved by ``semitones`` (the key signature follows).

        Raises:
            ValueError: a pitch would leave 0..127.
        """
        g = self.grid.astype(np.int32)
        sounding = g >= 0
        pitches = g[sounding] % HOLD + semitones
        if pitches.size and not (0 <= pitches.min() and pitches.max() <= 127):
            raise ValueError(f"{self.name}: transposing by {semitones} leaves 0..127")
        g[sounding] += semitones
        sharps = (self.sharps + 7 * semitones + 6) % 12 - 6  # -6..5, fewest flats
        return Chorale(self.name, g.astype(np.int16), sharps, self.minor)

    def in_c(self) -> Chorale:
        """Transposed to C major or A minor, by the smallest shift (-6..+5)."""
        shift = -((7 * self.sharps) % 12)
        return self.transposed(shift + 12 if shift < -6 else shift)

    def tokens(self, voices: int = 4, steps_per_quarter: int = SPQ) -> list[str]:
        """Tokens of the first ``voices`` voices (1 = soprano melody, 4 = all),
        on a grid of ``steps_per_quarter`` in (1, 2, 4)."""
        return grid_to_tokens(self.grid_at(steps_per_quarter)[:, :voices])

    def grid_at(self, steps_per_quarter: int = SPQ) -> np.ndarray:
        """Codes on a grid of ``steps_per_quarter`` (4 = sixteenths, 2 = eighths).

        Raises:
            ValueError: ``steps_per_quarter`` not in (1, 2, 4).
        """
        if steps_per_quarter not in (1, 2, 4):
            raise ValueError(
                f"steps_per_quarter must be 1, 2 or 4, got {steps_per_quarter!r}"
            )
        return coarsen(self.grid, SPQ // steps_per_quarter)

    def is_validation(self, val_percent: int = 10) -> bool:
        """Deterministic split by melody: the hash of the first 8 soprano pitches
        (in C) picks the split, so a tune harmonised twice lands on one side."""
        column = self.in_c().grid[:, 0]
        head = column[(column >= 0) & (column < HOLD)][:8].tolist()
        digest = hashlib.sha256(json.dumps(head).encode()).digest()
        return int.from_bytes(digest[:4], "big") % 100 < val_percent


def _music21() -> Any:
    try:
        import music21
    except ImportError as err:
        raise ImportError(f"this needs the music21 package: {_INSTALL_HINT}") from err
    return music21


def corpus_paths() -> list[Path]:
    """The Bach files of the ``music21`` corpus (MusicXML and Humdrum)."""
    paths = _music21().corpus.getComposer("bach")
    return sorted(Path(p) for p in paths if Path(p).suffix in (".mxl", ".xml", ".krn"))


def parse_chorale(path: str | Path) -> Chorale | None:
    """Parse one file into a :class:`Chorale` (``None`` if it is not a four-part
    chorale: other part counts, or no S, A, T, B parts among more).

    Ties are merged, grace notes dropped, a chord keeps its top note, and onsets
    are rounded to the nearest sixteenth.
    """
    m21 = _music21()
    score = m21.converter.parse(str(path))
    parts = list(score.parts)
    if len(parts) != 4:
        named = {(p.partName or "").strip().lower(): p for p in parts}
        if not all(v in named for v in VOICES):
            return None
        parts = [named[v] for v in VOICES]
    steps = int(round(float(score.highestTime) * SPQ))
    grid = np.full((steps, 4), REST, dtype=np.int16)
    for v, part in enumerate(parts):
        for n in part.stripTies().flatten().notes:
            if n.duration.isGrace or n.quarterLength == 0:
                continue
            start = int(round(float(n.offset) * SPQ))
            end = max(int(round(float(n.offset + n.quarterLength) * SPQ)), start + 1)
            pitch = max(p.midi for p in n.pitches)
            grid[start, v] = pitch
            grid[start + 1 : end, v] = HOLD + pitch
    keys = list(score.flatten().getElementsByClass("KeySignature"))
    sharps = keys[0].sharps if keys else 0
    mode = getattr(keys[0], "mode", None) if keys else None
    if mode not in ("major", "minor"):
        mode = score.analyze("key").mode
    return Chorale(Path(path).stem, grid, int(sharps), mode == "minor")


# ---------------------------------------------------------------------------
# the cache


def chorale_cache_dir() -> Path:
    """Where parsed chorales are cached: ``$AIGC_DATA_DIR/music`` when that
    variable is set, else ``<aigc_utils cache>/music`` (see
    :func:`aigc_utils.data.cache_dir`)."""
    data_dir = os.environ.get(DATA_DIR_ENV)
    return (Path(data_dir).expanduser() if data_dir else cache_dir()) / "music"


def save_chorales(chorales: Sequence[Chorale], path: str | Path) -> Path:
    """Write chorales to ``path`` (``.npz``) through a temporary file and a rename,
    so an interrupted write never leaves a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=path.name + ".", suffix=".part", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                grid=np.concatenate([c.grid for c in chorales]).astype(np.int16),
                lengths=np.array([len(c.grid) for c in chorales], dtype=np.int32),
                names=np.array([c.name for c in chorales]),
                sharps=np.array([c.sharps for c in chorales], dtype=np.int8),
                minor=np.array([c.minor for c in chorales], dtype=bool),
                meta=np.array(json.dumps({"format": FORMAT, "spq": SPQ})),
            )
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def read_chorales(path: str | Path) -> list[Chorale]:
    """Read chorales written by :func:`save_chorales`.

    Raises:
        CacheError: the file is not a readable, consistent chorale cache of this
            format (truncated, corrupt, or written by another version).
    """
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            grid, lengths, names = z["grid"], z["lengths"], z["names"]
            sharps, minor = z["sharps"], z["minor"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CacheError(f"{path} is not a readable chorale cache ({err})") from err
    problem = None
    if meta != {"format": FORMAT, "spq": SPQ}:
        problem = f"format {meta}, expected {{'format': {FORMAT}, 'spq': {SPQ}}}"
    elif grid.ndim != 2 or grid.shape[1] != 4 or lengths.sum() != len(grid):
        problem = f"grid {grid.shape} does not match lengths summing to {lengths.sum()}"
    elif not len(names) == len(lengths) == len(sharps) == len(minor):
        problem = "names, lengths and keys differ in number"
    elif grid.size and (grid.min() < REST or grid.max() >= 2 * HOLD):
        problem = "codes outside the valid range"
    if problem:
        raise CacheError(f"{path} is inconsistent: {problem}")
    parts = np.split(grid, np.cumsum(lengths)[:-1])
    return [
        Chorale(str(n), g, int(s), bool(m))
        for n, g, s, m in zip(names, parts, sharps, minor)
    ]


def load_chorales(
    paths: Sequence[str | Path] | None = None,
    *,
    directory: str | Path | None = None,
    rebuild: bool = False,
) -> list[Chorale]:
    """The four-part chorales of ``paths`` (default: all Bach files of the
    ``music21`` corpus), parsed once and then read from a cache file.

    The cache lives in ``directory`` (default :func:`chorale_cache_dir`; if that
    is not writable, the user cache). A corrupt cache file is reported with a
    warning and rebuilt. Reading the cache needs no ``music21``.

    Raises:
        ImportError: ``music21`` is missing and there is no cache (with a hint).
        FileNotFoundError: a path does not exist.
        ValueError: a file cannot be parsed, or none is a four-part chorale.
    """
    if paths is None:
        name = f"bach_chorales_v{FORMAT}.npz"
    else:
        key = json.dumps(sorted(Path(p).name for p in paths)).encode()
        name = f"chorales_v{FORMAT}_{hashlib.sha256(key).hexdigest()[:12]}.npz"
    places = [Path(directory) if directory else chorale_cache_dir()]
    if directory is None:
        places.append(cache_dir() / "music")
    for file in (p / name for p in places):
        if file.exists() and not rebuild:
            try:
                return read_chorales(file)
            except CacheError as err:
                warnings.warn(f"{err}; parsing the chorales again", stacklevel=2)
    files = corpus_paths() if paths is None else [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"no chorale file at {f}")
    chorales = [c for c in map(_parse_or_explain, _progress(files)) if c is not None]
    if not chorales:
        raise ValueError(f"none of the {len(files)} files is a four-part chorale")
    for place in places:
        if not _meant_writable(place):
            continue
        try:
            save_chorales(chorales, place / name)
            break
        except OSError as err:
            warnings.warn(f"cannot cache chorales in {place} ({err})", stacklevel=2)
    return chorales


def _meant_writable(place: Path) -> bool:
    """False when ``place`` (or the nearest folder above it that exists) has no
    owner write permission: a data folder shared read-only. The file system
    would let ``root`` write there anyway, so the mode bits are asked instead."""
    folder = place
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return bool(folder.stat().st_mode & stat.S_IWUSR)


def _parse_or_explain(path: Path) -> Chorale | None:
    try:
        return parse_chorale(path)
    except ImportError:
        raise
    except Exception as err:  # music21 raises many kinds; name the file
        raise ValueError(f"could not parse {path}: {err}") from err


def _progress(files: list[Path]) -> Sequence[Path]:
    if len(files) < 20:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc="parsing chorales")  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# a token vocabulary and the train/validation split


class TokenVocab:
    """Tokens <-> ids: ``"|"`` (end of piece), ``"R"``, ``"_"``, then the pitches
    from low to high."""

    def __init__(self, tokens: Sequence[str]) -> None:
        special = (END_TOKEN, REST_TOKEN, HOLD_TOKEN)
        pitches = sorted({t for t in tokens if t not in special}, key=pitch_of)
        self.tokens: list[str] = [*special, *pitches]
        self._index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str]) -> torch.Tensor:
        """Tokens -> ids ``(N,)`` int64.

        Raises:
            ValueError: a token not in the vocabulary.
        """
        unknown = [t for t in tokens if t not in self._index]
        if unknown:
            raise ValueError(
                f"tokens {unknown[:5]} are not in the vocabulary of {len(self)} "
                f"tokens ({self.tokens[3]}..{self.tokens[-1]} and specials)"
            )
        return torch.tensor([self._index[t] for t in tokens], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Ids (any shape, flattened) -> tokens.

        Raises:
            ValueError: an id outside ``0..len(vocab)-1``.
        """
        return [self.tokens[i] for i in flat_ids(ids, len(self))]


def corpus_tokens(
    chorales: Sequence[Chorale], voices: int = 1, steps_per_quarter: int = 2
) -> list[str]:
    """All chorales as one token stream, each followed by one step of ``"|"``."""
    out: list[str] = []
    for c in chorales:
        out += c.tokens(voices, steps_per_quarter) + [END_TOKEN] * voices
    return out


def split_chorales(
    chorales: Sequence[Chorale], val_percent: int = 10
) -> tuple[list[Chorale], list[Chorale]]:
    """(train, validation) by :meth:`Chorale.is_validation`, order kept."""
    val = [c.is_validation(val_percent) for c in chorales]
    return (
        [c for c, v in zip(chorales, val) if not v],
        [c for c, v in zip(chorales, val) if v],
    )


def chorale_splits(
    chorales: Sequence[Chorale],
    voices: int = 1,
    steps_per_quarter: int = 2,
    in_c: bool = True,
    val_percent: int = 10,
) -> tuple[torch.Tensor, torch.Tensor, TokenVocab]:
    """Training and validation ids ``(N_train,)``, ``(N_val,)`` int64, split by
    melody, and the vocabulary of both (so validation has no unknown token)."""
    if in_c:
        chorales = [c.in_c() for c in chorales]
    train, val = split_chorales(chorales, val_percent)
    train_tok = corpus_tokens(train, voices, steps_per_quarter)
    val_tok = corpus_tokens(val, voices, steps_per_quarter)
    vocab = TokenVocab(train_tok + val_tok)
    return vocab.encode(train_tok), vocab.encode(val_tok), vocab


def pieces(tokens: Sequence[str], voices: int = 1) -> list[list[str]]:
    """Split a stream at ``"|"`` into pieces, each cut to a multiple of
    ``voices`` tokens (a sample may end mid-step); empty pieces are dropped."""
    out, cur = [], []
    for t in [*tokens, END_TOKEN]:
        if t != END_TOKEN:
            cur.append(t)
        elif len(cur) >= voices:
            out.append(cur[: len(cur) - len(cur) % voices])
            cur = []
        else:
            cur = []
    return out


# ---------------------------------------------------------------------------
# listening: MIDI files and a waveform


def to_score(
    tokens: Sequence[str], voices: int = 1, steps_per_quarter: int = 2, bpm: int = 80
) -> Any:
    """Tokens -> a ``music21.stream.Score`` with one part per voice.

    Raises:
        ImportError: no ``music21`` (with a hint). ValueError: bad tokens.
    """
    m21 = _music21()
    grid = tokens_to_grid(tokens, voices)
    score = m21.stream.Score()
    for v, notes in enumerate(grid_to_notes(grid)):
        part = m21.stream.Part(id=VOICES[v] if v < 4 else f"voice{v}")
        if v == 0:
            part.insert(0, m21.tempo.MetronomeMark(number=bpm))
        for n in notes:
            note = m21.note.Note(n.pitch)
            note.quarterLength = n.duration / steps_per_quarter
            part.insert(n.start / steps_per_quarter, note)
        score.insert(0, part)
    return score


def write_midi(
    tokens: Sequence[str],
    path: str | Path,
    voices: int = 1,
    steps_per_quarter: int = 2,
    bpm: int = 80,
) -> Path:
    """Write tokens as a standard MIDI file any music player opens; returns the
    path. Raises as :func:`to_score`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_score(tokens, voices, steps_per_quarter, bpm).write("midi", fp=str(path))
    return path


def synthesize(
    tokens: Sequence[str],
    voices: int = 1,
    steps_per_quarter: int = 2,
    bpm: int = 80,
    sample_rate: int = 8000,
) -> np.ndarray:
    """Tokens -> a mono waveform ``(N,)`` float32 in [-1, 1] by additive synthesis:
    each note is a sum of three harmonics under a decaying envelope (an organ-ish
    tone), so a notebook can play it with ``IPython.display.Audio``.

    Raises:
        ValueError: bad tokens, ``bpm`` or ``sample_rate``.
    """
    if bpm <= 0 or sample_rate < 1000:
        raise ValueError(
            f"need bpm > 0 and sample_rate >= 1000, got {bpm}, {sample_rate}"
        )
    grid = tokens_to_grid(tokens, voices)
    step = 60.0 / bpm / steps_per_quarter  # seconds per grid step
    out = np.zeros(int(len(grid) * step * sample_rate) + 1, dtype=np.float64)
    for notes in grid_to_notes(grid):
        for n in notes:
            start = int(n.start * step * sample_rate)
            t = np.arange(int(n.duration * step * sample_rate)) / sample_rate
            if len(t) < 2:
                continue
            freq = 440.0 * 2 ** ((n.pitch - 69) / 12)
            tone = sum(
                a * np.sin(2 * np.pi * k * freq * t)
                for k, a in ((1, 1.0), (2, 0.4), (3, 0.2))
                if k * freq < sample_rate / 2
            )
            # 10 ms attack and release avoid clicks; the decay sounds plucked
            ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
            out[start : start + len(t)] += tone * ramp * np.exp(-1.5 * t)
    peak = np.abs(out).max()
    return (out / peak if peak > 0 else out).astype(np.float32)


# ---------------------------------------------------------------------------
# musical statistics of a grid


def onsets(grid: np.ndarray, voice: int | None = None) -> np.ndarray:
    """Pitches of the notes that start in ``grid (T, V)`` (one voice, or all)."""
    grid = _check_grid(grid)
    g = grid if voice is None else grid[:, voice : voice + 1]
    return g[(g >= 0) & (g < HOLD)].astype(np.int64)


def pitch_class_histogram(grid: np.ndarray) -> np.ndarray:
    """Share of note onsets per pitch class C, C#, ..., B: ``(12,)``, sums to 1
    (all zeros when there is no note)."""
    counts = np.bincount(onsets(grid) % 12, minlength=12).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def intervals(grid: np.ndarray, voice: int = 0) -> np.ndarray:
    """Melodic intervals in semitones between successive notes of one voice."""
    return np.diff(onsets(grid, voice))


def in_key_share(grid: np.ndarray) -> float:
    """Share of note onsets on the white keys (the C major / A natural minor
    scale): for chorales in C, how often a note is in the key."""
    pcs = onsets(grid) % 12
    return float(np.isin(pcs, (0, 2, 4, 5, 7, 9, 11)).mean()) if len(pcs) else 0.0
