"""Counting char and word n-grams in NumPy must give scikit-learn's counts, vocabulary and column order exactly, and
the classifier's vectorizers built on it the same TF-IDF matrices, down to the order of each row's entries."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from cityhub.nlp.classifier import _word_analyzer_tokens
from cityhub.nlp.text import char_ngrams, word_ngrams
from cityhub.nlp.vectorizers import CharTfidfVectorizer, WordTfidfVectorizer

DEV_RAW = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "teddycup2020_c" / "dev"
DEV_RAW /= "messages_labeled_raw.csv"

EDGE = [
    "",
    " ",
    "a",
    "ab",
    " \t\u3000\n  \r\n",  # white space only, mixed runs
    "路灯  不亮\t\t了 \n\n 请 处理 a  b\u00a0c",  # runs inside a text
    "🚧🚧🚧路灯",  # beyond the Basic Multilingual Plane
    "路灯\udc80坏了，\ud800请维修",  # lone surrogates (bytes read with surrogateescape)
    "\U0010ffff路灯",  # the last code point
    "ＡＢＣ１２３，。（全角）路灯不亮",
    "Aa aA",  # case kept as given
]


def _texts() -> list[str]:
    """Edge cases and made-up messages, with the board's real ones when the shared data is there."""
    rng = random.Random(7)
    words = ["路灯", "不亮", "小区", "噪音", "施工", "扰民", "垃圾", "清运", "学校", "收费", "，", "。", " ", "了"]
    texts = EDGE + ["".join(rng.choice(words) for _ in range(rng.randint(0, 30))) for _ in range(300)]
    if DEV_RAW.exists():
        with DEV_RAW.open(encoding="utf-8") as fh:
            texts += [f"{r['title']}\n{r['content']}" for r in list(csv.DictReader(fh))[:400]]
    return texts


def _insertion_order(vec: CountVectorizer, texts: list[str]) -> list[str]:
    """scikit-learn's n-grams in the order its count numbers them (before sorting them by name)."""
    vocabulary, _ = vec._count_vocab(texts, False)
    return sorted(vocabulary, key=vocabulary.__getitem__)


@pytest.mark.parametrize(("ngrams", "min_df"), [((1, 3), 1), ((1, 3), 2), ((2, 2), 1), ((1, 1), 3), ((2, 4), 2)])
def test_char_ngrams_count_as_scikit_learn(ngrams: tuple[int, int], min_df: int) -> None:
    texts = _texts()
    vec = CountVectorizer(analyzer="char", ngram_range=ngrams, lowercase=False, min_df=min_df, dtype=np.float32)
    reference = vec.fit_transform(texts).tocsc()
    grams = char_ngrams(texts, *ngrams, min_df=min_df)
    names = grams.strings()
    assert sorted(names) == sorted(vec.vocabulary_)
    # The same column order as scikit-learn's own numbering, minus what the minimum leaves out.
    assert names == [g for g in _insertion_order(vec, texts) if g in vec.vocabulary_]
    columns = [vec.vocabulary_[g] for g in names]
    assert (reference[:, columns].tocsr() != grams.matrix).nnz == 0
    assert grams.matrix.has_sorted_indices and grams.matrix.shape == (len(texts), len(names))


def test_char_ngrams_keep_only_n_grams_in_few_enough_texts() -> None:
    texts = ["路灯不亮", "路灯坏了", "路灯闪烁", "噪音扰民"]
    names = set(char_ngrams(texts, 2, 2, max_df=2).strings())
    assert "路灯" not in names and {"不亮", "噪音"} <= names


def test_char_ngrams_of_texts_shorter_than_an_n_gram() -> None:
    grams = char_ngrams(["", "a", "ab"], 3, 3)
    assert grams.matrix.shape == (3, 0) and grams.strings() == []


KWARGS = [
    {"ngram_range": (1, 3), "min_df": 2, "max_features": 5_000},  # the classifier's char block, smaller
    {"ngram_range": (1, 3), "min_df": 2},
    {"ngram_range": (2, 3), "min_df": 0.01},
    {"ngram_range": (1, 2), "min_df": 1, "max_df": 0.5},
]


@pytest.mark.parametrize("kwargs", KWARGS)
def test_char_tfidf_vectorizer_fits_as_scikit_learn(kwargs: dict[str, object]) -> None:
    texts = _texts()
    common = {"analyzer": "char", "sublinear_tf": True, "lowercase": False, "dtype": np.float32, **kwargs}
    reference, fast = TfidfVectorizer(**common), CharTfidfVectorizer(**common)
    x_ref, x_fast = reference.fit_transform(texts), fast.fit_transform(texts)
    assert fast.vocabulary_ == reference.vocabulary_
    assert np.array_equal(fast.idf_, reference.idf_)
    # Bit for bit, each row's entries in the same order: the order of a sum changes a model's last digits.
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(x_fast, part), getattr(x_ref, part)), part
    held_out = ["路灯坏了一个星期", "", "🚧"]
    assert (fast.transform(held_out) != reference.transform(held_out)).nnz == 0


@pytest.mark.parametrize(
    ("texts", "kwargs"),
    [
        (["Road LIGHT", "road light", "ROAD"], {"lowercase": True}),  # lower-casing: scikit-learn's way
        (["路灯\x00不亮", "路灯坏了", "\x00"], {}),  # U+0000 cannot be a NumPy string
        ([b"bytes", b"bytes too"], {}),
    ],
)
def test_char_tfidf_vectorizer_falls_back_where_its_count_cannot_apply(
    texts: list[object], kwargs: dict[str, object]
) -> None:
    common = {"analyzer": "char", "ngram_range": (1, 2), "lowercase": False, **kwargs}
    reference, fast = TfidfVectorizer(**common), CharTfidfVectorizer(**common)
    assert (fast.fit_transform(texts) != reference.fit_transform(texts)).nnz == 0
    assert fast.vocabulary_ == reference.vocabulary_


@pytest.mark.parametrize(
    ("texts", "min_df", "message"),
    [(["路灯", "噪音", "垃圾"], 2, "no terms remain"), (["", ""], 1, "empty vocabulary")],
)
def test_char_tfidf_vectorizer_refuses_as_scikit_learn(texts: list[str], min_df: int, message: str) -> None:
    for vectorizer in (TfidfVectorizer, CharTfidfVectorizer):
        with pytest.raises(ValueError, match=message):
            vectorizer(analyzer="char", min_df=min_df, lowercase=False).fit(texts)


def _split(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize(("ngrams", "min_df"), [((1, 2), 1), ((1, 2), 2), ((2, 3), 1), ((1, 1), 2)])
def test_word_ngrams_count_as_scikit_learn(ngrams: tuple[int, int], min_df: int) -> None:
    texts = [" ".join(_word_analyzer_tokens(t)) for t in _texts()] + ["", "路灯", "路灯 路灯 路灯"]
    vec = CountVectorizer(tokenizer=_split, token_pattern=None, ngram_range=ngrams, lowercase=False, min_df=min_df)
    reference = vec.fit_transform(texts).tocsc()
    grams = word_ngrams([_split(t) for t in texts], *ngrams, min_df=min_df)
    names = grams.strings()
    assert names == [g for g in _insertion_order(vec, texts) if g in vec.vocabulary_]
    assert (reference[:, [vec.vocabulary_[g] for g in names]].tocsr() != grams.matrix).nnz == 0


def test_word_ngrams_refuse_a_word_with_a_space() -> None:
    with pytest.raises(ValueError, match="space"):
        word_ngrams([["路灯", "a b"]], 1, 2)


@pytest.mark.parametrize("kwargs", [{"ngram_range": (1, 2), "min_df": 2}, {"ngram_range": (1, 3), "min_df": 0.01}])
def test_word_tfidf_vectorizer_fits_as_scikit_learn(kwargs: dict[str, object]) -> None:
    texts = _texts()
    common = {
        "tokenizer": _word_analyzer_tokens,
        "token_pattern": None,
        "sublinear_tf": True,
        "lowercase": False,
        "dtype": np.float32,
        **kwargs,
    }
    reference, fast = TfidfVectorizer(**common), WordTfidfVectorizer(**common)
    x_ref, x_fast = reference.fit_transform(texts), fast.fit_transform(texts)
    assert fast.vocabulary_ == reference.vocabulary_ and np.array_equal(fast.idf_, reference.idf_)
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(x_fast, part), getattr(x_ref, part)), part


def test_word_tfidf_vectorizer_falls_back_for_words_with_spaces() -> None:
    def pairs(text: str) -> list[str]:  # "a b" as one word could be the bigram of "a" and "b"
        return [text[i : i + 3] for i in range(0, len(text), 3)]

    texts = ["a b c a b", "b c a", "c a b c"]
    common = {"tokenizer": pairs, "token_pattern": None, "ngram_range": (1, 2), "lowercase": False}
    reference, fast = TfidfVectorizer(**common), WordTfidfVectorizer(**common)
    assert (fast.fit_transform(texts) != reference.fit_transform(texts)).nnz == 0
    assert fast.vocabulary_ == reference.vocabulary_
