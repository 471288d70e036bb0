"""scikit-learn vectorizers that fit faster on Chinese text, with the same result.

Kept apart from :mod:`cityhub.nlp.classifier` because a subclass needs scikit-learn at import time, and the
classifier module imports it only when a model is trained or loaded (the CLI starts without it).
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer

from cityhub.nlp.text import char_ngrams


class CharTfidfVectorizer(TfidfVectorizer):
    """``TfidfVectorizer`` whose fit counts char n-grams in NumPy (:func:`cityhub.nlp.text.char_ngrams`) instead of
    building every n-gram of every text as a Python string: the same vocabulary, idf and matrix (a test compares them
    with scikit-learn's own), in about a fifth of the time on the board's messages. It applies only where the result
    cannot differ — char analyzer, texts given as strings, no preprocessing or lower-casing — and n-grams in fewer
    texts than ``min_df`` are dropped while counting, which scikit-learn's pruning would do next. Anything else, and
    ``transform``, is scikit-learn's own code."""

    def _count_vocab(self, raw_documents: Iterable[Any], fixed_vocab: bool) -> tuple[dict[str, int], Any]:
        docs = list(raw_documents)
        plain = (
            not fixed_vocab
            and self.analyzer == "char"
            and self.input == "content"
            and self.preprocessor is None
            and self.strip_accents is None
            and not self.lowercase
            and all(type(d) is str for d in docs)
        )
        if plain:
            low = float(self.min_df if isinstance(self.min_df, Integral) else self.min_df * len(docs))
            try:
                grams = char_ngrams(docs, *self.ngram_range, min_df=low)
                names = grams.strings()
            except ValueError:  # a character set too large for the numbering, or U+0000: the strings' way
                names = []
            if names:
                return dict(zip(names, range(len(names)), strict=True)), grams.matrix.astype(self.dtype)
        # Nothing left after the minimum: scikit-learn's own count, so that its pruning says so as it always has.
        return super()._count_vocab(docs, fixed_vocab)
