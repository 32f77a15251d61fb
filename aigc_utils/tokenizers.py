"""Byte-level byte-pair encoding (BPE), built from scratch.

**Byte-pair encoding** (字节对编码) starts from a small alphabet and repeatedly
replaces the most frequent adjacent pair of symbols by a new symbol (Sennrich et
al. 2016, after Gage's 1994 compressor). GPT-2 runs it on the UTF-8 *bytes* of
the text (Radford et al. 2019), so the base vocabulary is the 256 byte values,
every string can be encoded and nothing is ever "unknown"::

    text --UTF-8--> bytes (ids 0..255) --merges, in order--> token ids

Training learns an ordered list of merges ``((a, b), new_id)`` with new ids 256,
257, ... Encoding replays them; decoding concatenates the bytes of each token.

Before counting pairs, GPT-2 cuts the text into chunks with a regular expression
(words with their leading space, numbers, punctuation, whitespace), so that no
merge crosses a chunk boundary and "dog." and "dog!" share the token " dog".
``pattern=None`` skips that step and treats the whole text as one chunk.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from types import MappingProxyType

#: GPT-2's pre-split pattern rewritten for Python's ``re`` (no ``\p{..}`` classes):
#: ``\p{L}`` (a letter) becomes ``[^\W\d_]`` and ``\p{N}`` (a number) becomes
#: ``\d``. One difference: numbers that are not decimal digits ("²", "½", "Ⅻ")
#: count as letters here. Every character falls in exactly one class, so the
#: chunks always join back to the text.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)

_FORMAT = "aigc_utils.bpe"
_VERSION = 1

Pair = tuple[int, int]


# ------------------------------------------------------------------ checks


def _check_text(text: object, name: str = "text") -> str:
    if not isinstance(text, str):
        raise ValueError(
            f"{name} must be a str, got {type(text).__name__}; decode bytes first "
            "(e.g. data.decode('utf-8'))"
        )
    return text


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _check_pattern(pattern: object) -> str | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise ValueError(
            f"pattern must be a regular expression (str) or None, "
            f"got {type(pattern).__name__}"
        )
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"pattern is not a valid regular expression: {e}") from e
    return pattern


def _split(text: str, pattern: str | None) -> list[str]:
    """The chunks that merges may not cross: ``[text]`` when ``pattern`` is None."""
    if pattern is None:
        return [text] if text else []
    chunks = [c for c in re.findall(pattern, text) if c]
    if sum(map(len, chunks)) != len(text):
        # findall skips what the pattern does not match: those characters would
        # silently vanish from the encoding.
        raise ValueError(
            "pattern does not match every character of the text, so encoding would "
            "drop characters; add a catch-all alternative such as |\\s+|."
        )
    return chunks


def _utf8(chunk: str) -> list[int]:
    try:
        return list(chunk.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(
            f"text is not valid Unicode: {chunk[e.start : e.end]!r} is a lone "
            "surrogate, which has no UTF-8 bytes; repair the text first "
            "(e.g. text.encode('utf-8', 'replace').decode())"
        ) from e


# ------------------------------------------------------------------ merging


def _merge(
    ids: list[int],
    pair: Pair,
    new_id: int,
    counts: Counter[Pair] | None = None,
    weight: int = 1,
) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids``, left to right, by ``new_id``.

    When ``counts`` is given, it is updated in place to the pair counts of the
    result, each pair of this sequence counting ``weight`` times: only the
    neighbours of a merged pair change, (x, a) (a, b) (b, y) -> (x, new) (new, y).
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while True:
        try:
            j = ids.index(a, i)  # a C-speed scan to the next candidate
        except ValueError:
            break
        if j + 1 < n and ids[j + 1] == b:
            out.extend(ids[i:j])
            if counts is not None:
                counts[pair] -= weight
                if out:  # out[-1] may be new_id from a merge just before
                    counts[out[-1], a] -= weight
                    counts[out[-1], new_id] += weight
                if j + 2 < n:
                    counts[b, ids[j + 2]] -= weight
                    counts[new_id, ids[j + 2]] += weight
            out.append(new_id)
            i = j + 2
        else:
            out.extend(ids[i : j + 1])
            i = j + 1
    out.extend(ids[i:])
    return out


def _check_ids(ids: object, name: str = "ids") -> list[int]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise ValueError(
            f"{name} must be a sequence of ints, got {type(ids).__name__}; "
            "convert a tensor with .tolist()"
        )
    for i in ids:
        if not _is_int(i):
            raise ValueError(f"token ids must be ints, got {i!r}")
    return [int(i) for i in ids]


def count_pairs(ids: Sequence[int]) -> Counter[Pair]:
    """How often each adjacent pair of ``ids`` occurs; overlapping pairs count, so
    ``[a, a, a]`` holds ``(a, a)`` twice.

    Raises:
        ValueError: ``ids`` is not a sequence of ints.
    """
    ids = _check_ids(ids)
    return Counter(zip(ids, ids[1:]))


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """One BPE merge step: ``ids`` with every occurrence of ``pair``, scanned left
    to right, replaced by ``new_id``, so ``[a, a, a]`` with ``(a, a)`` becomes
    ``[new_id, a]``. The input is not changed.

    Raises:
        ValueError: ``ids`` not a sequence of ints, ``pair`` not two ints, or
            ``new_id`` not an int >= 0.
    """
    ids = _check_ids(ids)
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or not all(_is_int(x) for x in pair)
    ):
        raise ValueError(f"pair must be a tuple of two ints, got {pair!r}")
    if not _is_int(new_id) or new_id < 0:
        raise ValueError(f"new_id must be an int >= 0, got {new_id!r}")
    return _merge(ids, (int(pair[0]), int(pair[1])), int(new_id))


def _most_frequent(counts: Counter[Pair]) -> Pair:
    """The pair with the highest count; ties go to the smallest pair, so training
    is reproducible."""
    top = max(counts.values())
    return min(p for p, c in counts.items() if c == top)


# ------------------------------------------------------------------ tokenizer


@dataclass(frozen=True)
class BPETokenizer:
    """Learned merges ``((a, b), new_id)``, in training order, plus the pre-split
    ``pattern`` (None: no pre-split). Build one with :meth:`train` or :meth:`load`.

    Raises:
        ValueError: when a merge is malformed: new ids must be 256, 257, ... in
            order, and a pair may only use ids that exist before it.
    """

    merges: tuple[tuple[Pair, int], ...] = ()
    pattern: str | None = None
    _ranks: dict[Pair, int] = field(init=False, repr=False, compare=False)
    _vocab: dict[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_pattern(self.pattern)
        merges = tuple(_check_merge(k, m) for k, m in enumerate(self.merges))
        vocab = {i: bytes([i]) for i in range(256)}
        ranks: dict[Pair, int] = {}
        for (a, b), new_id in merges:
            if (a, b) in ranks:
                raise ValueError(f"merge {new_id}: pair {(a, b)} is merged twice")
            ranks[a, b] = new_id
            vocab[new_id] = vocab[a] + vocab[b]
        object.__setattr__(self, "merges", merges)
        object.__setattr__(self, "_ranks", ranks)
        object.__setattr__(self, "_vocab", vocab)

    @property
    def vocab(self) -> Mapping[int, bytes]:
        """Read-only map from token id to the bytes it stands for."""
        return MappingProxyType(self._vocab)

    @property
    def vocab_size(self) -> int:
        """256 byte tokens plus one token per merge."""
        return 256 + len(self.merges)

    # -------------------------------------------------------------- training

    @classmethod
    def train(
        cls, text: str, vocab_size: int, *, pattern: str | None = None
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``.

        Each step merges the most frequent adjacent pair (ties: the smallest pair)
        everywhere. Identical chunks are counted once with their frequency, and
        pair counts are updated incrementally around each merge instead of being
        recounted, so a step costs one scan of the chunks that contain the pair.

        Args:
            text: the training text.
            vocab_size: 256 (bytes only) or more.
            pattern: pre-split regex such as :data:`GPT2_SPLIT_PATTERN`; merges
                never cross its chunks. None: the whole text is one chunk.

        Raises:
            ValueError: text not a str, vocab_size not an int >= 256, empty text
                when merges are requested, an invalid pattern, or a text too short
                to supply ``vocab_size - 256`` merges.
        """
        _check_text(text)
        pattern = _check_pattern(pattern)
        if not _is_int(vocab_size) or vocab_size < 256:
            raise ValueError(
                f"vocab_size must be an int >= 256 (the byte alphabet), "
                f"got {vocab_size!r}"
            )
        n_merges = int(vocab_size) - 256
        if n_merges > 0 and not text:
            raise ValueError(f"cannot learn {n_merges} merges from an empty text")
        chunk_freq = Counter(_split(text, pattern))
        words = [_utf8(chunk) for chunk in chunk_freq]
        weights = list(chunk_freq.values())
        counts: Counter[Pair] = Counter()
        for ids, w in zip(words, weights):
            for pair in zip(ids, ids[1:]):
                counts[pair] += w

        merges: list[tuple[Pair, int]] = []
        for new_id in range(256, 256 + n_merges):
            counts = +counts  # drop pairs whose count fell to zero
            if not counts:
                raise ValueError(
                    f"the text ran out of adjacent pairs after {len(merges)} merges; "
                    f"use vocab_size <= {new_id} or a longer text"
                )
            pair = _most_frequent(counts)
            for k, ids in enumerate(words):
                if pair[0] in ids:
                    words[k] = _merge(ids, pair, new_id, counts, weights[k])
            merges.append((pair, new_id))
        return cls(tuple(merges), pattern)

    def truncate(self, vocab_size: int) -> BPETokenizer:
        """This tokenizer with only its first ``vocab_size - 256`` merges.

        Each merge depends only on the text and the merges before it, so the
        result equals what :meth:`train` learns with ``vocab_size`` on the same
        text and pattern: one training run gives every smaller vocabulary.

        Raises:
            ValueError: ``vocab_size`` not an int in ``[256, self.vocab_size]``.
        """
        if not _is_int(vocab_size) or not 256 <= vocab_size <= self.vocab_size:
            raise ValueError(
                f"vocab_size must be an int in [256, {self.vocab_size}], "
                f"got {vocab_size!r}"
            )
        return BPETokenizer(self.merges[: int(vocab_size) - 256], self.pattern)

    # -------------------------------------------------------------- encoding

    def _encode_by_rank(self, ids: list[int]) -> list[int]:
        # Merge the present pair learned earliest, until no learned pair is left.
        ranks = self._ranks
        while len(ids) >= 2:
            pairs = set(zip(ids, ids[1:]))
            pair = min(pairs, key=lambda p: ranks.get(p, math.inf))
            if pair not in ranks:
                break
            ids = _merge(ids, pair, ranks[pair])
        return ids

    def _encode_by_replay(self, ids: list[int]) -> list[int]:
        # Apply every merge in training order. The same result as _encode_by_rank:
        # a pair that merge k creates contains k's new id, so its rank is above k
        # and the earliest present pair never goes back in training order.
        for pair, new_id in self.merges:
            if pair[0] in ids:
                ids = _merge(ids, pair, new_id)
        return ids

    def _encode_chunk(self, ids: list[int]) -> list[int]:
        # By rank costs a pass over the chunk per merge it makes, in Python; by
        # replay a C-speed scan per learned merge, which wins on long chunks.
        if len(ids) > len(self.merges):
            return self._encode_by_replay(ids)
        return self._encode_by_rank(ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (a list of ints in ``[0, vocab_size)``).

        Raises:
            ValueError: text not a str, or containing a lone surrogate.
        """
        _check_text(text)
        cache: dict[str, list[int]] = {}
        out: list[int] = []
        for chunk in _split(text, self.pattern):
            if chunk not in cache:
                cache[chunk] = self._encode_chunk(_utf8(chunk))
            out.extend(cache[chunk])
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids ``ids``. Bytes that are not valid UTF-8 (a token
        sequence cut inside a character) decode to U+FFFD, as in GPT-2.

        Raises:
            ValueError: an id that is not an int or not in ``[0, vocab_size)``.
        """
        ids = _check_ids(ids)
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"token id {i} is out of range [0, {self.vocab_size}) "
                    "for this tokenizer"
                )
        return b"".join(self._vocab[i] for i in ids).decode("utf-8", "replace")

    # -------------------------------------------------------------- files

    def save(self, path: str | Path) -> None:
        """Write the merges and the pattern to a small JSON file at ``path``; the
        vocabulary is rebuilt from them on :meth:`load`."""
        content = {
            "format": _FORMAT,
            "version": _VERSION,
            "pattern": self.pattern,
            "merges": [list(pair) for pair, _ in self.merges],
        }
        Path(path).write_text(json.dumps(content) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not such a tokenizer, or its merges are
                corrupted (the message names the file and the problem).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path}")
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(content, dict) or content.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} file (no 'format': '{_FORMAT}')")
            if content.get("version") != _VERSION:
                raise ValueError(f"unsupported version {content.get('version')!r}")
            merges = content.get("merges")
            if not isinstance(merges, list) or "pattern" not in content:
                raise ValueError("'merges' must be a list and 'pattern' present")
            return cls(
                tuple((pair, 256 + k) for k, pair in enumerate(merges)),
                content["pattern"],
            )
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError included
            raise ValueError(
                f"corrupted tokenizer file {path}: {e}; save it again"
            ) from e


def _check_merge(k: int, merge: object) -> tuple[Pair, int]:
    """Merge number ``k`` as ``((a, b), 256 + k)``, or ValueError."""
    new_id = 256 + k
    try:
        pair, given_id = merge  # type: ignore[misc]
        a, b = pair
    except (TypeError, ValueError):
        raise ValueError(f"merge {k} must be ((a, b), new_id), got {merge!r}") from None
    if not (_is_int(given_id) and given_id == new_id):
        raise ValueError(f"merge {k} must create id {new_id}, got {given_id!r}")
    for x in (a, b):
        if not (_is_int(x) and 0 <= x < new_id):
            raise ValueError(
                f"merge {k} pairs {pair!r}, but only ids in [0, {new_id}) exist "
                "before it"
            )
    return (int(a), int(b)), new_id


# ------------------------------------------------------------------ measures


def compression_ratio(tokenizer: BPETokenizer, text: str) -> float:
    """UTF-8 **bytes per token** of ``text``: 1.0 with no merges, higher when the
    tokenizer packs more of the text into each token.

    Raises:
        ValueError: not a BPETokenizer, text not a str, or empty text.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise ValueError(
            f"tokenizer must be a BPETokenizer, got {type(tokenizer).__name__}"
        )
    _check_text(text)
    if not text:
        raise ValueError("the compression ratio of an empty text is undefined")
    return len(text.encode("utf-8")) / len(tokenizer.encode(text))


def nats_per_char(loss_per_token: float, n_tokens: int, n_chars: int) -> float:
    """Convert a mean loss in nats per token into nats per character.

    The total loss of a text, ``loss_per_token * n_tokens``, does not depend on
    how it is cut, so dividing it by the text's ``n_chars`` puts a BPE model and
    a character model on the same scale::

        nats/char = loss_per_token * n_tokens / n_chars

    Raises:
        ValueError: a negative or non-finite loss, or counts that are not
            positive ints.
    """
    loss = float(loss_per_token)
    if not (loss >= 0 and math.isfinite(loss)):
        raise ValueError(f"loss_per_token must be a finite number >= 0, got {loss}")
    for name, n in (("n_tokens", n_tokens), ("n_chars", n_chars)):
        if not _is_int(n) or n <= 0:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    return loss * n_tokens / n_chars
