"""aigc_utils.music: tokens, notes, transposition, the cache, MIDI and audio."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aigc_utils import music
from aigc_utils.music import (
    HOLD,
    REST,
    CacheError,
    Chorale,
    Note,
    TokenVocab,
    grid_to_notes,
    grid_to_tokens,
    notes_to_grid,
    tokens_to_grid,
)

# two voices, four steps: S = C4 held, E4; A = rest, G3 held 3 steps
TOKENS = ["C4", "R", "_", "G3", "E4", "_", "R", "_"]
GRID = np.array([[60, REST], [HOLD + 60, 55], [64, HOLD + 55], [REST, HOLD + 55]])


def toy_chorale(name: str = "toy", sharps: int = 2, minor: bool = False) -> Chorale:
    """A four-voice chorale in D major (two sharps) with a rest and a hold."""
    s = [62, HOLD + 62, 66, 69, REST, 74, HOLD + 74, 73]
    a = [57, HOLD + 57, HOLD + 57, 62, REST, 66, 64, HOLD + 64]
    t = [54, 55, 57, HOLD + 57, REST, 59, 57, HOLD + 57]
    b = [50, HOLD + 50, 50, 47, REST, 43, 45, HOLD + 45]
    return Chorale(name, np.array([s, a, t, b], dtype=np.int16).T, sharps, minor)


# ------------------------------------------------------------ tokens and notes


def test_pitch_names_round_trip() -> None:
    names = [music.pitch_name(p) for p in range(128)]
    assert names[60] == "C4" and names[70] == "A#4" and names[0] == "C-1"
    assert [music.pitch_of(n) for n in names] == list(range(128))


@pytest.mark.parametrize("token", ["H4", "Cb4", "c4", "C#", "|", "G#9", 60, ""])
def test_unknown_token(token: object) -> None:
    with pytest.raises(ValueError, match="unknown token"):
        music.pitch_of(token)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown token"):
        tokens_to_grid(["C4", token], voices=1)  # type: ignore[list-item]


def test_tokens_grid_notes_round_trip() -> None:
    grid = tokens_to_grid(TOKENS, voices=2)
    np.testing.assert_array_equal(grid, GRID)
    notes = grid_to_notes(grid)
    assert notes == [[Note(60, 0, 2), Note(64, 2, 1)], [Note(55, 1, 3)]]
    assert grid_to_tokens(notes_to_grid(notes, steps=4)) == TOKENS
    c = toy_chorale()
    tokens = c.tokens(voices=4)
    assert len(tokens) == 4 * len(c.grid)
    back = notes_to_grid(grid_to_notes(tokens_to_grid(tokens, 4)), len(c.grid))
    assert grid_to_tokens(back) == tokens


def test_orphan_hold_reads_as_rest() -> None:
    grid = tokens_to_grid(["_", "C4", "R", "_"], voices=1)
    assert grid[:, 0].tolist() == [REST, 60, REST, REST]


def test_bad_shapes_and_notes() -> None:
    with pytest.raises(ValueError, match="multiple of voices=2"):
        tokens_to_grid(["C4", "_", "R"], voices=2)
    with pytest.raises(ValueError, match="sequence of tokens"):
        tokens_to_grid("C4", voices=1)
    with pytest.raises(ValueError, match="positive int"):
        tokens_to_grid(["C4"], voices=0)
    with pytest.raises(ValueError, match="overlaps"):
        notes_to_grid([[Note(60, 0, 3), Note(62, 2, 1)]])
    with pytest.raises(ValueError, match="after steps"):
        notes_to_grid([[Note(60, 0, 3)]], steps=2)
    with pytest.raises(ValueError, match="0..127"):
        notes_to_grid([[Note(128, 0, 1)]])
    with pytest.raises(ValueError, match="codes must be in"):
        grid_to_tokens(np.array([[300]]))


def test_coarsen_keeps_off_grid_notes() -> None:
    # a sixteenth-note upbeat: G4 starts at step 1 and holds through step 3
    grid = np.array([[60], [67], [HOLD + 67], [HOLD + 67]], dtype=np.int16)
    assert music.coarsen(grid, 2)[:, 0].tolist() == [60, 67]
    c = toy_chorale()
    assert c.grid_at(4).shape == (8, 4) and c.grid_at(2).shape == (4, 4)
    with pytest.raises(ValueError, match="1, 2 or 4"):
        c.grid_at(3)


# ------------------------------------------------------------ transposition


def test_transposition_keeps_intervals_and_rhythm() -> None:
    c = toy_chorale()
    for shift in (-7, -1, 3, 5):
        moved = c.transposed(shift)
        for v in range(4):
            np.testing.assert_array_equal(
                music.intervals(moved.grid, v), music.intervals(c.grid, v)
            )
        np.testing.assert_array_equal(moved.grid < 0, c.grid < 0)
        np.testing.assert_array_equal(moved.grid >= HOLD, c.grid >= HOLD)
    with pytest.raises(ValueError, match="leaves 0..127"):
        c.transposed(60)


@pytest.mark.parametrize(
    ("sharps", "minor", "key"),
    [
        (2, False, "D major"),
        (-1, True, "d minor"),
        (-3, False, "Eb major"),
        (4, True, "c# minor"),
        (0, True, "a minor"),
    ],
)
def test_in_c(sharps: int, minor: bool, key: str) -> None:
    c = toy_chorale(sharps=sharps, minor=minor)
    assert c.key == key
    in_c = c.in_c()
    assert in_c.sharps == 0 and in_c.key == ("a minor" if minor else "C major")
    shift = int(in_c.grid[0, 0]) - int(c.grid[0, 0])
    assert -6 <= shift <= 5 and (7 * sharps + shift) % 12 == 0


def test_statistics() -> None:
    c = toy_chorale().in_c()  # D major -> C major: the toy uses only scale notes
    assert music.in_key_share(c.grid) == 1.0
    hist = music.pitch_class_histogram(c.grid)
    assert hist.shape == (12,) and hist.sum() == pytest.approx(1.0)
    assert hist[[1, 3, 6, 8, 10]].sum() == 0.0
    assert music.intervals(c.grid, 0).tolist() == [4, 3, 5, -1]


# ------------------------------------------------------------ vocabulary, splits


def test_vocab_and_splits() -> None:
    chorales = [toy_chorale(f"toy{i}").transposed(i - 3) for i in range(6)]
    train, val, vocab = music.chorale_splits(chorales, voices=4, steps_per_quarter=4)
    assert vocab.tokens[:3] == ["|", "R", "_"]
    pitches = [music.pitch_of(t) for t in vocab.tokens[3:]]
    assert pitches == sorted(pitches)
    # all six are one tune in C: one split gets them all (split by melody)
    assert len(train) * len(val) == 0 and len(train) + len(val) == 6 * (8 + 1) * 4
    ids = vocab.encode(["C4", "_", "|"])
    assert vocab.decode(ids) == ["C4", "_", "|"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(["C9"])
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([len(vocab)])
    assert len(TokenVocab(["|"])) == 3


def test_split_is_deterministic_and_by_melody() -> None:
    c = toy_chorale()
    assert c.is_validation(100) and not c.is_validation(0)
    assert c.is_validation() == c.transposed(4).is_validation()


def test_pieces() -> None:
    stream = ["C4", "_", "|", "|", "D4", "E4", "F4", "|", "|", "G4"]
    assert music.pieces(stream, voices=2) == [["C4", "_"], ["D4", "E4"]]
    assert music.pieces(stream, voices=1)[-1] == ["G4"]


# ------------------------------------------------------------ audio


def test_synthesize() -> None:
    wave = music.synthesize(TOKENS, voices=2, steps_per_quarter=2, bpm=120)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == pytest.approx(4 * 0.25 * 8000, abs=2)
    assert np.abs(wave).max() == pytest.approx(1.0)
    # the rest at the end of voice 2 after step 4... and silence for an all-rest
    assert not music.synthesize(["R", "R"]).any()
    with pytest.raises(ValueError, match="bpm"):
        music.synthesize(TOKENS, voices=2, bpm=0)


# ------------------------------------------------------------ the cache


def test_save_read_round_trip(tmp_path: Path) -> None:
    chorales = [toy_chorale("a"), toy_chorale("b", sharps=-2, minor=True)]
    path = music.save_chorales(chorales, tmp_path / "c.npz")
    back = music.read_chorales(path)
    assert [(c.name, c.sharps, c.minor) for c in back] == [
        ("a", 2, False),
        ("b", -2, True),
    ]
    for c, d in zip(chorales, back):
        np.testing.assert_array_equal(c.grid, d.grid)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "inconsistent"])
def test_corrupt_cache_is_reported(tmp_path: Path, damage: str) -> None:
    path = music.save_chorales([toy_chorale()], tmp_path / "c.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        bad = toy_chorale()
        np.savez(
            path,
            grid=bad.grid,
            lengths=np.array([99]),
            names=np.array(["x"]),
            sharps=np.array([0]),
            minor=np.array([False]),
            meta=np.array('{"format": 1, "spq": 4}'),
        )
    with pytest.raises(CacheError, match=str(path.name)):
        music.read_chorales(path)


@pytest.fixture
def fake_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Path], list[Path]]:
    """Two existing files, and the list of calls to a fake parser that needs no
    music21."""
    calls: list[Path] = []

    def parse(path: Path) -> Chorale:
        calls.append(path)
        return toy_chorale(Path(path).stem)

    monkeypatch.setattr(music, "parse_chorale", parse)
    files = [tmp_path / "one.mxl", tmp_path / "two.mxl"]
    for f in files:
        f.write_text("fake")
    return files, calls


def test_second_load_reads_the_cache(tmp_path: Path, fake_parser) -> None:
    files, calls = fake_parser
    first = music.load_chorales(files, directory=tmp_path / "cache")
    assert len(calls) == 2 and [c.name for c in first] == ["one", "two"]
    second = music.load_chorales(files, directory=tmp_path / "cache")
    assert len(calls) == 2  # nothing parsed again
    np.testing.assert_array_equal(first[1].grid, second[1].grid)
    music.load_chorales(files, directory=tmp_path / "cache", rebuild=True)
    assert len(calls) == 4


def test_corrupt_cache_is_rebuilt(tmp_path: Path, fake_parser) -> None:
    files, calls = fake_parser
    cache = tmp_path / "cache"
    music.load_chorales(files, directory=cache)
    (cached,) = cache.iterdir()
    cached.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="not a readable chorale cache"):
        again = music.load_chorales(files, directory=cache)
    assert len(calls) == 4 and len(again) == 2
    assert len(music.read_chorales(cached)) == 2  # the cache is good again


def test_cache_dir_follows_data_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "data"))
    assert music.chorale_cache_dir() == tmp_path / "data" / "music"
    monkeypatch.delenv("AIGC_DATA_DIR")
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path / "cache"))
    assert music.chorale_cache_dir() == tmp_path / "cache" / "music"


def test_read_only_data_dir_is_left_alone(
    tmp_path: Path, fake_parser, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, _ = fake_parser
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    data.chmod(0o555)  # shared read-only (root could still write: the mode decides)
    monkeypatch.setenv("AIGC_DATA_DIR", str(data))
    monkeypatch.setenv("AIGC_CACHE_DIR", str(cache))
    try:
        music.load_chorales(files)
    finally:
        data.chmod(0o755)
    assert not (data / "music").exists()
    assert len(list((cache / "music").iterdir())) == 1


def test_missing_inputs(tmp_path: Path, fake_parser) -> None:
    with pytest.raises(FileNotFoundError, match="no chorale file"):
        music.load_chorales([tmp_path / "absent.mxl"], directory=tmp_path)


def test_music21_missing_gives_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "music21", None)  # import music21 now fails
    with pytest.raises(ImportError, match="pip install music21"):
        music.corpus_paths()
    with pytest.raises(ImportError, match="pip install music21"):
        music.write_midi(TOKENS, tmp_path / "x.mid", voices=2)
    # a cache needs no music21
    path = music.save_chorales([toy_chorale()], tmp_path / "c.npz")
    assert len(music.read_chorales(path)) == 1


# ------------------------------------------------------------ real chorales


@pytest.fixture(scope="module")
def real_chorales(tmp_path_factory: pytest.TempPathFactory) -> list[Chorale]:
    """Two chorales of the music21 corpus, parsed (about a second)."""
    pytest.importorskip("music21")
    paths = [p for p in music.corpus_paths() if p.name in ("bwv1.6.mxl", "bwv269.mxl")]
    assert len(paths) == 2
    return music.load_chorales(paths, directory=tmp_path_factory.mktemp("m21"))


def test_parse_real_chorales(real_chorales: list[Chorale]) -> None:
    by_name = {c.name: c for c in real_chorales}
    c = by_name["bwv1.6"]  # F major, with a horn part besides S, A, T, B
    assert c.key == "F major" and c.grid.shape[1] == 4
    assert len(c.grid) == 80 * 4  # 80 quarter notes on a sixteenth-note grid
    assert music.onsets(c.grid, 0)[0] == 65  # the melody starts on F4
    for chorale in real_chorales:
        in_c = chorale.in_c()
        assert in_c.sharps == 0 and music.in_key_share(in_c.grid) > 0.8
        for v in range(4):  # transposition keeps every voice's intervals
            np.testing.assert_array_equal(
                music.intervals(in_c.grid, v), music.intervals(chorale.grid, v)
            )
        tokens = chorale.tokens(voices=4)
        np.testing.assert_array_equal(tokens_to_grid(tokens, 4), chorale.grid)


def test_midi_round_trip(real_chorales: list[Chorale], tmp_path: Path) -> None:
    from music21 import converter

    tokens = real_chorales[0].in_c().tokens(voices=1, steps_per_quarter=2)
    path = music.write_midi(tokens, tmp_path / "melody.mid", steps_per_quarter=2)
    # music21 splits notes at bar lines on reading: merge the ties back
    notes = list(converter.parse(str(path)).stripTies().flatten().notes)
    (expected,) = grid_to_notes(tokens_to_grid(tokens))
    assert [n.pitch.midi for n in notes] == [n.pitch for n in expected]
    assert [float(n.offset) * 2 for n in notes] == [n.start for n in expected]
    assert [float(n.quarterLength) * 2 for n in notes] == [n.duration for n in expected]
