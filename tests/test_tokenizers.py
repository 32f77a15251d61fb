"""aigc_utils.tokenizers: byte-level BPE against hand-computed and naive merges."""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from aigc_utils.tokenizers import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    compression_ratio,
    count_pairs,
    merge,
    nats_per_char,
)

ENGLISH = (
    "A generative model learns the distribution of its training data and then "
    "draws new samples from it. An autoencoder compresses an image into a few "
    "numbers and decodes it again; a variational autoencoder makes those numbers "
    "a distribution, so that the decoder can generate. A diffusion model adds "
    "noise step by step and learns to remove it, step by step, until a sample "
    "appears. The tokenizer of a language model decides what a step of text is: "
    "a byte, a character, a word, or something in between."
)
CHINESE = (
    "生成模型学习训练数据的分布，然后从中抽取新的样本。自编码器把一张图像压缩成几个数，"
    "再把它解码回来；变分自编码器让这些数成为一个分布，于是解码器可以生成。"
    "扩散模型一步一步地加噪声，再学习一步一步地去掉噪声，直到样本出现。"
    "语言模型的分词器决定一步文本是什么：一个字节、一个字、一个词，或者介于两者之间。"
)
CORPUS = ENGLISH + "\n\n" + CHINESE
PATTERNS = [None, GPT2_SPLIT_PATTERN]


def naive_bpe(text: str, vocab_size: int, pattern: str | None) -> tuple[list, list]:
    """Textbook BPE: recount every pair before each merge, plain loops. Returns
    the merges and the training text's final token ids."""
    chunks = [c for c in re.findall(pattern, text) if c] if pattern else [text]
    seqs = [list(c.encode("utf-8")) for c in chunks]
    merges = []
    for new_id in range(256, vocab_size):
        counts: dict = {}
        for seq in seqs:
            for i in range(len(seq) - 1):
                pair = (seq[i], seq[i + 1])
                counts[pair] = counts.get(pair, 0) + 1
        best = None
        for pair, c in counts.items():  # the highest count, then the smallest pair
            if best is None or c > counts[best] or (c == counts[best] and pair < best):
                best = pair
        new_seqs = []
        for seq in seqs:
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            new_seqs.append(out)
        seqs = new_seqs
        merges.append((best, new_id))
    return merges, [t for seq in seqs for t in seq]


@pytest.fixture(scope="module", params=PATTERNS, ids=["no-split", "gpt2-split"])
def tok(request: pytest.FixtureRequest) -> BPETokenizer:
    return BPETokenizer.train(CORPUS, 256 + 100, pattern=request.param)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize(
    "text",
    [
        "",
        "生成对抗网络 变分自编码器 扩散模型",
        "emoji 😀🚀 family 👨‍👩‍👧 flags 🇨🇳🇫🇷 skin 👍🏽",
        "mixed: Ελληνικά, русский, العربية, हिन्दी, 日本語のテキスト, 한국어",
        "combining e\u0301 and n\u0303, ligature ﬁ, math ∑x² ≤ ½",
        "  leading and trailing spaces \t\r\n\n  ",
        "it's we'll they've I'm _under_score_ 12345 3.14 $100!!!",
        "\x00\x01 control \x7f and \ufeff BOM \U0010ffff",
    ],
)
def test_round_trip_unicode(tok: BPETokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_round_trip_random_strings(tok: BPETokenizer) -> None:
    rng = random.Random(0)
    # ASCII, Latin, Greek/Cyrillic, combining marks, CJK, emoji, anywhere else
    ranges = [(0, 127), (128, 0x24F), (0x370, 0x4FF), (0x300, 0x36F)]
    ranges += [(0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0, 0x10FFFF)]
    for _ in range(300):
        chars = []
        for _ in range(rng.randint(0, 30)):
            lo, hi = rng.choice(ranges)
            c = rng.randint(lo, hi)
            chars.append(chr(c if not 0xD800 <= c <= 0xDFFF else 0x20))
        text = "".join(chars)
        assert tok.decode(tok.encode(text)) == text


def test_gpt2_pattern_splits_like_gpt2_and_covers_everything() -> None:
    text = "Hello world's  123 items!! 生成 模型\n\nx_y"
    chunks = re.findall(GPT2_SPLIT_PATTERN, text)
    assert chunks == [
        "Hello", " world", "'s", " ", " 123", " items", "!!", " 生成", " 模型",
        "\n", "\n", "x", "_", "y",
    ]  # fmt: skip
    assert "".join(re.findall(GPT2_SPLIT_PATTERN, CORPUS)) == CORPUS


# ------------------------------------------------------------------ merges


def test_wikipedia_example_by_hand() -> None:
    # aaabdaaabac: (a, a) occurs 4 times (overlaps counted), so aa -> 256.
    # 256 a b d 256 a b a c: (256, a) and (a, b) tie at 2; the smaller pair wins.
    # 256 257 d 256 257 a c: (256, 257) -> 258, leaving 258 d 258 a c.
    tok = BPETokenizer.train("aaabdaaabac", 259)
    a, b = ord("a"), ord("b")
    assert tok.merges == (((a, a), 256), ((a, b), 257), ((256, 257), 258))
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, a, ord("c")]
    assert tok.vocab[258] == b"aaab"
    assert tok.decode([258, 257, 256]) == "aaababaa"


def test_count_pairs_and_merge_by_hand() -> None:
    a, b, c, d = (ord(x) for x in "abcd")
    ids = list(b"aaabdaaabac")
    assert count_pairs(ids) == {
        (a, a): 4, (a, b): 2, (b, d): 1, (d, a): 1, (b, a): 1, (a, c): 1
    }  # fmt: skip
    assert count_pairs([]) == {} and count_pairs((7,)) == {}
    # overlapping occurrences: the left one wins, scanning left to right
    assert merge([a, a, a], (a, a), 256) == [256, a]
    assert merge([a, a, a, a], (a, a), 256) == [256, 256]
    assert merge(ids, (a, a), 256) == [256, a, b, d, 256, a, b, a, c]
    assert merge(ids, (c, d), 256) == ids  # no occurrence: unchanged copy
    assert merge((a, b), (a, b), 300) == [300]  # any sequence, any new id
    assert ids == list(b"aaabdaaabac")  # the input is not modified


def test_merge_matches_a_plain_loop() -> None:
    rng = random.Random(2)
    for _ in range(300):
        ids = [rng.randint(0, 3) for _ in range(rng.randint(0, 30))]
        pair = (rng.randint(0, 3), rng.randint(0, 3))
        expected, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                expected.append(9)
                i += 2
            else:
                expected.append(ids[i])
                i += 1
        assert merge(ids, pair, 9) == expected


@pytest.mark.parametrize("pattern", PATTERNS, ids=["no-split", "gpt2-split"])
def test_truncate_equals_training_a_smaller_vocabulary(pattern: str | None) -> None:
    big = BPETokenizer.train(CORPUS, 256 + 100, pattern=pattern)
    for vocab_size in (256, 257, 300, 356):
        small = BPETokenizer.train(CORPUS, vocab_size, pattern=pattern)
        assert big.truncate(vocab_size) == small
        assert big.truncate(vocab_size).encode(CORPUS) == small.encode(CORPUS)


@pytest.mark.parametrize("pattern", PATTERNS, ids=["no-split", "gpt2-split"])
def test_merges_match_naive_reference(pattern: str | None) -> None:
    for text in (ENGLISH, CHINESE, CORPUS):
        expected_merges, expected_ids = naive_bpe(text, 256 + 60, pattern)
        tok = BPETokenizer.train(text, 256 + 60, pattern=pattern)
        assert list(tok.merges) == expected_merges
        # encoding the training text reproduces training's segmentation
        assert tok.encode(text) == expected_ids


def test_merges_never_cross_chunks() -> None:
    text = "ab ab ab ab"
    joined = BPETokenizer.train(text, 259)  # one chunk: " ab ab" becomes a token
    assert joined.vocab[258] == b" ab ab"
    split = BPETokenizer.train(text, 258, pattern=GPT2_SPLIT_PATTERN)
    assert [split.vocab[i] for i in split.encode(text)] == [b"ab"] + [b" ab"] * 3
    with pytest.raises(ValueError, match="ran out of adjacent pairs after 2 merges"):
        BPETokenizer.train(text, 259, pattern=GPT2_SPLIT_PATTERN)
    # on the corpus, every chunk boundary is also a token boundary
    tok = BPETokenizer.train(CORPUS, 256 + 100, pattern=GPT2_SPLIT_PATTERN)
    chunk_ends, token_ends, pos = set(), set(), 0
    for chunk in re.findall(GPT2_SPLIT_PATTERN, CORPUS):
        pos += len(chunk.encode("utf-8"))
        chunk_ends.add(pos)
    pos = 0
    for i in tok.encode(CORPUS):
        pos += len(tok.vocab[i])
        token_ends.add(pos)
    assert chunk_ends <= token_ends


def test_encoding_by_rank_equals_encoding_by_replay(tok: BPETokenizer) -> None:
    # encode() picks one of the two strategies by chunk length; both must agree
    rng = random.Random(1)
    texts = [CORPUS, ENGLISH[::-1], "aaaa" * 50]
    texts += ["".join(rng.choice(CORPUS) for _ in range(40)) for _ in range(50)]
    for text in texts:
        ids = list(text.encode("utf-8"))
        assert tok._encode_by_rank(ids) == tok._encode_by_replay(ids)


@pytest.mark.parametrize("pattern", PATTERNS, ids=["no-split", "gpt2-split"])
def test_training_is_deterministic(pattern: str | None) -> None:
    first = BPETokenizer.train(CORPUS, 256 + 80, pattern=pattern)
    second = BPETokenizer.train(CORPUS, 256 + 80, pattern=pattern)
    assert first == second
    assert first.encode(CORPUS) == second.encode(CORPUS)


def test_vocab_size_256_gives_plain_bytes() -> None:
    for text in (CORPUS, ""):
        tok = BPETokenizer.train(text, 256)
        assert tok.merges == () and tok.vocab_size == 256
        assert tok.encode(CORPUS) == list(CORPUS.encode("utf-8"))
        assert dict(tok.vocab) == {i: bytes([i]) for i in range(256)}


def test_vocab_is_the_concatenation_of_merged_tokens(tok: BPETokenizer) -> None:
    assert len(tok.vocab) == tok.vocab_size == 356
    for (a, b), new_id in tok.merges:
        assert tok.vocab[new_id] == tok.vocab[a] + tok.vocab[b]
    with pytest.raises(TypeError):
        tok.vocab[0] = b"x"  # type: ignore[index]


# ------------------------------------------------------------------ measures


@pytest.mark.parametrize("pattern", PATTERNS, ids=["no-split", "gpt2-split"])
def test_compression_ratio_rises_with_vocab_size(pattern: str | None) -> None:
    ratios = [
        compression_ratio(BPETokenizer.train(CORPUS, v, pattern=pattern), CORPUS)
        for v in (256, 280, 320, 400)
    ]
    assert ratios[0] == 1.0
    assert all(x < y for x, y in zip(ratios, ratios[1:])), ratios


def test_nats_per_char_closed_form(tok: BPETokenizer) -> None:
    assert nats_per_char(2.0, n_tokens=50, n_chars=100) == 1.0
    assert nats_per_char(0.0, 1, 7) == 0.0
    # A model giving each token the probability of its bytes under a uniform
    # byte model assigns the text the same total log-likelihood, whatever the
    # tokenizer, so its nats per character is ln 256 * bytes / chars.
    ids = tok.encode(CORPUS)
    loss_per_token = sum(len(tok.vocab[i]) * math.log(256) for i in ids) / len(ids)
    expected = math.log(256) * len(CORPUS.encode("utf-8")) / len(CORPUS)
    assert nats_per_char(loss_per_token, len(ids), len(CORPUS)) == pytest.approx(
        expected
    )


# ------------------------------------------------------------------ files


def test_save_load_round_trip(tok: BPETokenizer, tmp_path) -> None:
    path = tmp_path / "bpe.json"
    tok.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded == tok
    assert loaded.vocab == tok.vocab
    assert loaded.encode(CORPUS) == tok.encode(CORPUS)
    content = json.loads(path.read_text())
    assert sorted(content) == ["format", "merges", "pattern", "version"]
    assert len(content["merges"]) == 100


GOOD = {"format": "aigc_utils.bpe", "version": 1, "pattern": None}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "corrupted tokenizer file .*Expecting property name"),
        ("[]", "not a aigc_utils.bpe file"),
        (json.dumps({**GOOD, "format": "x", "merges": []}), "not a aigc_utils.bpe"),
        (json.dumps({**GOOD, "version": 2, "merges": []}), "unsupported version 2"),
        (json.dumps(GOOD), "'merges' must be a list"),
        (json.dumps({**GOOD, "merges": [[97, 97], [97]]}), r"merge 1 must be"),
        (json.dumps({**GOOD, "merges": [[97, 300]]}), r"only ids in \[0, 256\)"),
        (json.dumps({**GOOD, "merges": [[97, -1]]}), r"only ids in \[0, 256\)"),
        (json.dumps({**GOOD, "merges": [[97, 1.5]]}), r"only ids in \[0, 256\)"),
        (json.dumps({**GOOD, "merges": [[97, True]]}), r"only ids in \[0, 256\)"),
        (json.dumps({**GOOD, "merges": [[97, 98], [97, 98]]}), "merged twice"),
        (json.dumps({**GOOD, "pattern": 3, "merges": []}), "pattern must be"),
        (json.dumps({**GOOD, "pattern": "(", "merges": []}), "not a valid regular"),
    ],
)
def test_load_rejects_corrupted_files(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bpe.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        BPETokenizer.load(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no tokenizer file at"):
        BPETokenizer.load(tmp_path / "missing.json")


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: BPETokenizer.train("abc", 255), r"vocab_size must be an int >= 256"),
        (lambda: BPETokenizer.train("abc", 300.0), r"got 300\.0"),
        (lambda: BPETokenizer.train("abc", True), r"got True"),
        (lambda: BPETokenizer.train(b"abc", 300), "text must be a str, got bytes"),
        (lambda: BPETokenizer.train("", 257), "cannot learn 1 merges from an empty"),
        (lambda: BPETokenizer.train("ab", 258), "ran out of adjacent pairs after 1"),
        (lambda: BPETokenizer.train("a", 260, pattern="("), "not a valid regular"),
        (lambda: BPETokenizer.train("a", 260, pattern=b"."), "pattern must be"),
        (lambda: BPETokenizer.train("a b", 257, pattern=r"\w"), "does not match every"),
        (lambda: BPETokenizer().encode(None), "text must be a str, got NoneType"),
        (lambda: BPETokenizer().encode("a\ud800b"), "lone surrogate"),
        (lambda: BPETokenizer().decode([97, 256]), r"256 is out of range \[0, 256\)"),
        (lambda: BPETokenizer().decode([-1]), r"-1 is out of range"),
        (lambda: BPETokenizer().decode([97, 1.0]), "token ids must be ints, got 1.0"),
        (lambda: BPETokenizer().decode(["a"]), "token ids must be ints, got 'a'"),
        (lambda: BPETokenizer().decode([False]), "token ids must be ints, got False"),
        (lambda: BPETokenizer().decode("abc"), "ids must be a sequence of ints"),
        (lambda: BPETokenizer(merges=(((97, 98), 300),)), "must create id 256"),
        (lambda: BPETokenizer(merges=((97, 98),)), r"must be \(\(a, b\), new_id\)"),
        (lambda: count_pairs("abc"), "ids must be a sequence of ints, got str"),
        (lambda: count_pairs([1, 2.0]), "token ids must be ints, got 2.0"),
        (lambda: merge(b"ab", (97, 98), 256), "must be a sequence of ints, got bytes"),
        (lambda: merge([1, 2], [1, 2], 256), r"pair must be a tuple of two ints"),
        (lambda: merge([1, 2], (1, 2, 3), 256), r"pair must be a tuple of two ints"),
        (lambda: merge([1, 2], (1, "2"), 256), r"pair must be a tuple of two ints"),
        (lambda: merge([1, 2], (1, 2), -1), r"new_id must be an int >= 0, got -1"),
        (lambda: merge([1, 2], (1, 2), 2.0), r"new_id must be an int >= 0, got 2.0"),
        (lambda: BPETokenizer().truncate(257), r"int in \[256, 256\], got 257"),
        (lambda: BPETokenizer().truncate(255.0), r"int in \[256, 256\], got 255.0"),
        (lambda: compression_ratio(BPETokenizer(), ""), "empty text is undefined"),
        (lambda: compression_ratio("tok", "abc"), "must be a BPETokenizer, got str"),
        (lambda: nats_per_char(-0.1, 10, 10), "finite number >= 0, got -0.1"),
        (lambda: nats_per_char(math.nan, 10, 10), "finite number >= 0, got nan"),
        (lambda: nats_per_char(1.0, 0, 10), "n_tokens must be a positive int"),
        (lambda: nats_per_char(1.0, 10, 2.5), "n_chars must be a positive int"),
    ],
)
def test_error_messages(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
