"""scikit-learn vectorizers that fit faster on Chinese text, with the same result.

Kept apart from :mod:`cityhub.nlp.classifier` because a subclass needs scikit-learn at import time, and the
classifier module imports it only when a model is trained or loaded (the CLI starts without it).
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer

from cityhub.nlp.text import Ngrams, char_ngrams, word_ngrams


class _NumpyCountFit(TfidfVectorizer):
    """``TfidfVectorizer`` whose fit counts the n-grams in NumPy (:func:`cityhub.nlp.text.char_ngrams`,
    :func:`~cityhub.nlp.text.word_ngrams`) instead of building every n-gram of every text as a Python string: the
    same vocabulary, idf and matrix, down to the order of each row's entries (tests compare them with scikit-learn's
    own), in a fraction of the time. It applies only where the result cannot differ — texts given as strings, no
    preprocessing, lower-casing or stop words — and n-grams in fewer texts than ``min_df`` are dropped while
    counting, which scikit-learn's pruning would do next. Anything else, and ``transform``, is scikit-learn's code."""

    def _numpy_count(self, docs: list[str], min_df: float) -> Ngrams | None:
        """The n-gram counts of ``docs``, or None where scikit-learn's own count must run."""
        raise NotImplementedError

    def _count_vocab(self, raw_documents: Iterable[Any], fixed_vocab: bool) -> tuple[dict[str, int], Any]:
        docs = list(raw_documents)
        plain = (
            not fixed_vocab
            and self.input == "content"
            and self.preprocessor is None
            and self.strip_accents is None
            and not self.lowercase
            and self.stop_words is None
            and all(type(d) is str for d in docs)
        )
        if plain:
            low = float(self.min_df if isinstance(self.min_df, Integral) else self.min_df * len(docs))
            try:
                grams = self._numpy_count(docs, low)
            except ValueError:  # more distinct units than 64-bit numbers hold, or a word with a space in it
                grams = None
            names = grams.strings() if grams is not None else []
            if grams is not None and names:
                return dict(zip(names, range(len(names)), strict=True)), grams.matrix.astype(self.dtype)
        # Nothing left after the minimum: scikit-learn's own count, so that its pruning says so as it always has.
        return super()._count_vocab(docs, fixed_vocab)


class CharTfidfVectorizer(_NumpyCountFit):
    """The char n-gram ``TfidfVectorizer`` with the NumPy count (``analyzer="char"``)."""

    def _numpy_count(self, docs: list[str], min_df: float) -> Ngrams | None:
        if self.analyzer != "char":
            return None
        return char_ngrams(docs, *self.ngram_range, min_df=min_df)


class WordTfidfVectorizer(_NumpyCountFit):
    """The word n-gram ``TfidfVectorizer`` with the NumPy count (``analyzer="word"`` with a ``tokenizer``); the
    tokenizer runs once per text, as in scikit-learn."""

    def _numpy_count(self, docs: list[str], min_df: float) -> Ngrams | None:
        if self.analyzer != "word" or self.tokenizer is None:
            return None
        return word_ngrams([list(self.tokenizer(d)) for d in docs], *self.ngram_range, min_df=min_df)
