"""Text helpers for Chinese work-order messages: normalisation, word segmentation, near-duplicate groups.

Messages reach the classifier in two forms: raw text as citizens typed it, and text that an earlier
pipeline word-segmented (tokens separated by spaces, stop words dropped). Both are mapped to one
"joined" form so that training and inference see the same kind of string: :func:`normalize` removes the
segmentation spaces, and :class:`JoinedForm` drops from raw texts the words the segmenter dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Whitespace touching a CJK character only exists because a segmenter put it there.
_SEGMENT_SPACE = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_WORD = re.compile(r"[\W_]+")
_CJK_TOKEN = re.compile(rf"^[{_CJK}]+$")


def order_text(title: str | None, content: str | None) -> str:
    """Join an order's title and content the way the classifier expects them."""
    title = (title or "").strip()
    content = (content or "").strip()
    if title and content:
        return f"{title}\n{content}"
    return title or content


def looks_segmented(text: str) -> bool:
    """Tell whether ``text`` was word-segmented (most CJK tokens separated by spaces)."""
    tokens = text.split()
    if len(tokens) < 4:
        return False
    cjk = sum(1 for t in tokens if _CJK_TOKEN.match(t))
    return cjk / len(tokens) > 0.6 and len(tokens) / max(len(text), 1) > 0.2


@lru_cache(maxsize=1)
def _compatibility_forms() -> tuple[re.Pattern[str], dict[str, str]]:
    """Every BMP character that NFKC changes (full-width letters and punctuation, circled digits, …), its NFKC form,
    and a pattern that finds runs of them (built once, ~30 ms)."""
    table: dict[str, str] = {}
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if (form := unicodedata.normalize("NFKC", ch)) != ch:
            table[ch] = form
    return re.compile("[" + "".join(re.escape(ch) for ch in table) + "]+"), table


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, about three times faster on citizens' messages.

    Chinese text is mostly characters NFKC keeps, with full-width punctuation it changes; the standard function then
    re-composes the whole string. Here each character NFKC changes is replaced by its own NFKC form, and the
    standard function runs only when the result is still not normalised (combining marks, characters beyond the
    BMP). The result is the same: replacing a character by a compatibility-equivalent one leaves the string's NFKD,
    and so its NFKC, unchanged.
    """
    if text.isascii():
        return text
    pattern, table = _compatibility_forms()
    text = pattern.sub(lambda m: "".join(table[ch] for ch in m.group()), text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def squeeze(text: str) -> str:
    """NFKC without any whitespace: the form in which names and keywords are matched (dispatch rules' keywords, the
    gazetteer's aliases), across spacing and full-width forms."""
    return _SPACES.sub("", nfkc(text))


def normalize(text: str) -> str:
    """NFKC, lower case, segmentation spaces removed, other whitespace collapsed to one space."""
    text = nfkc(text).lower()
    text = _SEGMENT_SPACE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def fingerprint_text(text: str) -> str:
    """Letters and digits only: what is left when spacing and punctuation are ignored (the NFKC, lower-cased text
    without any non-word character, which :func:`normalize`'s spacing rules would not change)."""
    return _NON_WORD.sub("", nfkc(text).lower())


@lru_cache(maxsize=1)
def _rjieba() -> Any:
    import rjieba

    return rjieba


def _segmented(how: str, text: str) -> Any:
    """rjieba's ``how`` (``cut``, ``tag``) of ``text``. A lone surrogate (text decoded with ``surrogateescape``)
    becomes U+FFFD: rjieba takes only what encodes as UTF-8."""
    segment = getattr(_rjieba(), how)
    try:
        return segment(text)
    except UnicodeEncodeError:
        return segment(_SURROGATE.sub("\ufffd", text))


def cut(text: str) -> list[str]:
    """rjieba's segmentation of ``text``, every piece kept (punctuation and spaces too)."""
    pieces: list[str] = _segmented("cut", text)
    return pieces


def tag(text: str) -> list[tuple[str, str]]:
    """rjieba's segmentation of ``text`` with each piece's part of speech (jieba's tags: ``nr`` a person's name,
    ``n`` a noun, ``c`` a conjunction, ``p`` a preposition, ``u…`` a particle …)."""
    pieces: list[tuple[str, str]] = _segmented("tag", text)
    return pieces


def words(text: str) -> list[str]:
    """Word tokens of a normalised text (rjieba), punctuation and whitespace dropped."""
    return [w for w in cut(text) if not _NON_WORD.fullmatch(w)]


@dataclass(frozen=True)
class JoinedForm:
    """Brings raw texts to the joined form of the segmented texts they are trained beside.

    :func:`normalize` removes a segmented text's spaces, but the pipeline that segmented it also dropped its
    punctuation and stop words, so a raw message and its own segmented copy still differ by every 的, 了, 我们 and
    comma — and so do their character n-grams. When training data mixes both forms, :meth:`learn` finds the words
    that pipeline dropped: frequent in the raw texts' rjieba segmentation, (nearly) absent from the segmented texts.
    Calling the form on a raw text then drops those words and the punctuation, as the pipeline would have; a
    segmented text is only normalised. Learned from the texts' form alone, never from labels; with no segmented
    texts in the training data (a district's own orders) nothing is learned and the form is plain :func:`normalize`.
    """

    dropped: frozenset[str] = frozenset()

    @classmethod
    def learn(
        cls, texts: Sequence[str], *, min_share: float = 0.003, max_ratio: float = 0.05, min_texts: int = 50
    ) -> JoinedForm:
        """The words segmented ``texts`` lack: in at least ``min_share`` of the raw texts, and in a share of the
        segmented ones at most ``max_ratio`` of that. Needs ``min_texts`` texts of each form, else learns nothing."""
        segmented = [looks_segmented(t) for t in texts]
        n_seg = sum(segmented)
        n_raw = len(texts) - n_seg
        if n_seg < min_texts or n_raw < min_texts:
            return cls()
        in_raw: Counter[str] = Counter()
        in_seg: Counter[str] = Counter()
        joined = []
        for text, seg in zip(texts, segmented, strict=True):
            if seg:
                in_seg.update(set(nfkc(text).lower().split()))
                joined.append(normalize(text))
            else:
                in_raw.update(set(words(normalize(text))))

        def rare(count: int, share_raw: float) -> bool:
            return count / n_seg <= max_ratio * share_raw

        candidates = [w for w, c in in_raw.items() if c >= min_share * n_raw and rare(in_seg[w], c / n_raw)]
        # A word of several characters that the segmented texts hold inside other words (保险 in 养老保险) was cut
        # differently, not dropped: keep it. (A single character is inside too many words for that test.)
        return cls(
            frozenset(w for w in candidates if len(w) == 1 or rare(sum(w in t for t in joined), in_raw[w] / n_raw))
        )

    def __call__(self, text: str) -> str:
        norm = normalize(text)
        if not self.dropped or looks_segmented(text):
            return norm
        return "".join(w for w in words(norm) if w not in self.dropped)


def near_duplicate_groups(texts: Sequence[str], *, threshold: float = 0.5, chunk: int = 1000) -> np.ndarray:
    """Group ids such that near-duplicate texts share a group (union of linked pairs).

    Two texts are linked when the share of character bigrams of the shorter one that also occur in the
    longer one reaches ``threshold``. Bigrams common to more than 5% of the texts are ignored: they say
    nothing about identity. Containment (rather than Jaccard) links a segmented, stop-word-stripped copy
    of a message to its raw original, and a re-posting that adds or drops a sentence.
    """
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(texts)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    prints = [fingerprint_text(t) for t in texts]
    # Exact fingerprints first: cheap, and covers texts too short for bigram statistics.
    first: dict[str, int] = {}
    for i, p in enumerate(prints):
        j = first.setdefault(p, i)
        if j != i:
            parent[find(i)] = find(j)
    if n > 1:
        max_df = 0.05 if n >= 200 else 1.0
        vec = CountVectorizer(analyzer="char", ngram_range=(2, 2), binary=True, max_df=max_df, dtype=np.float32)
        x: csr_matrix | None
        try:
            x = vec.fit_transform(prints).tocsr()
        except ValueError:  # every text empty or every bigram too common
            x = None
        if x is not None:
            sizes = np.asarray(x.sum(axis=1)).ravel()
            xt = x.T.tocsc()
            for start in range(0, n, chunk):
                inter = (x[start : start + chunk] @ xt).toarray()
                shorter = np.minimum(sizes[start : start + chunk, None], sizes[None, :])
                share = inter / np.maximum(shorter, 1)
                # Fewer than 3 distinctive bigrams is not enough evidence to link two texts.
                share[shorter < 3] = 0.0
                rows, cols = np.nonzero(share >= threshold)
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                    i = start + r
                    if c > i:
                        a, b = find(i), find(c)
                        if a != b:
                            parent[a] = b
    roots = np.array([find(i) for i in range(n)])
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)
