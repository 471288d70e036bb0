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


# scikit-learn's char analyzer squeezes each run of two or more white-space characters to one space.
_SQUEEZE = re.compile(r"\s\s+")


@dataclass(frozen=True)
class Ngrams:
    """Texts' n-gram counts: ``matrix`` (texts × n-grams, CSR with sorted indices, float32 counts), its columns the
    n-grams in the order scikit-learn's count meets them (by the text of their first occurrence, then length, then
    position), each named by its number in ``keys``: an n-gram of units u₁…uₙ (characters or words, numbered from 1
    in the order of ``units``) is Σ uᵢ·base^(n-i), base = len(units) + 1, so that n-grams of different lengths never
    share a number. ``sep`` joins an n-gram's units into its name ("" for characters, " " for words)."""

    matrix: Any
    keys: np.ndarray
    units: Sequence[str]
    max_n: int
    sep: str

    def strings(self) -> list[str]:
        """Each column's n-gram as a string (scikit-learn's name for it)."""
        base = len(self.units) + 1
        length = np.ones(len(self.keys), dtype=np.int64)
        for n in range(1, self.max_n):
            length += self.keys >= base**n
        digits = np.zeros((len(self.keys), self.max_n), dtype=np.int64)  # unit numbers, left-aligned, 0 after
        for n in range(1, self.max_n + 1):
            rows = np.flatnonzero(length == n)
            rest = self.keys[rows]
            for pos in range(n - 1, -1, -1):
                digits[rows, pos] = rest % base
                rest = rest // base
        if self.sep == "" and all(len(u) == 1 and u != "\x00" for u in self.units):
            # Characters: the code points as one NumPy string per row (NumPy drops the trailing zeros of padding).
            points = np.zeros(len(self.units) + 1, dtype=np.uint32)
            points[1:] = [ord(u) for u in self.units]
            return [str(g) for g in points[digits].view(f"<U{self.max_n}").ravel().tolist()]
        units = ["", *self.units]
        named = zip(digits.tolist(), length.tolist(), strict=True)
        return [self.sep.join(units[d] for d in row[:k]) for row, k in named]


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of equal values of a sorted array starts, and how long it is."""
    if not len(sorted_values):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    return starts, np.diff(np.append(starts, len(sorted_values)))


def ngram_numbers(ids: np.ndarray, n: int, base: int) -> np.ndarray:
    """The number Σ uᵢ·base^(n-i) of the n-gram of unit numbers starting at each position of ``ids`` that has n
    units from it on (``len(ids) - n + 1`` numbers; none when ``ids`` is shorter than n)."""
    width = len(ids) - n + 1
    if width <= 0:
        return np.zeros(0, dtype=np.int64)
    key = ids[:width].astype(np.int64)
    for k in range(1, n):
        key *= base
        key += ids[k : k + width]
    return key


def _count_ngrams(
    ids: np.ndarray, lengths: np.ndarray, base: int, min_n: int, max_n: int, min_df: float, max_df: float | None
) -> tuple[Any, np.ndarray]:
    """The counts of the n-grams of texts given as one array of unit numbers (1 … base - 1, the texts one after the
    other, ``lengths`` units each): the matrix and keys of :class:`Ngrams`. ``ValueError`` when the numbers could
    overflow 64 bits."""
    from scipy.sparse import coo_matrix

    n_texts = len(lengths)
    if float(base) ** max_n * max(n_texts, 1) >= 2**62:
        raise ValueError("too many distinct units for integer n-gram numbers")
    text_of = np.repeat(np.arange(n_texts, dtype=np.int64), lengths)
    left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(ids))  # units from here to the text's end
    pairs, firsts = [], []
    for n in range(min_n, max_n + 1):
        key = ngram_numbers(ids, n, base)
        if not len(key):
            break
        at = np.flatnonzero(left[: len(key)] >= n)  # where an n-gram starts inside one text
        key = key[at]
        # Where each n-gram is first met; the texts run in order, so the earliest start is the first text's.
        grams, first = np.unique(key, return_index=True)
        firsts.append((grams, at[first], n))
        # One number per (n-gram, text): sorted, a run of equal numbers is the text's count of the n-gram.
        key *= n_texts
        key += text_of[at]
        pairs.append(key)
    pair = np.sort(np.concatenate(pairs)) if pairs else np.zeros(0, dtype=np.int64)
    starts, counts = _runs(pair)
    key, text = np.divmod(pair[starts], max(n_texts, 1))
    gram_starts, df = _runs(key)  # df: texts per n-gram
    keep = df >= min_df
    if max_df is not None:
        keep &= df <= max_df
    gram_keys = key[gram_starts][keep]
    # Each kept n-gram's first occurrence: its text, its length, its start (scikit-learn's numbering order).
    first_start = np.zeros(len(gram_keys), dtype=np.int64)
    length = np.zeros(len(gram_keys), dtype=np.int64)
    for grams, start, n in firsts:  # the n-grams of length n have the numbers base^(n-1) … base^n - 1
        lo, hi = np.searchsorted(gram_keys, [base ** (n - 1), base**n])
        first_start[lo:hi], length[lo:hi] = start[np.searchsorted(grams, gram_keys[lo:hi])], n
    order = np.lexsort((first_start, length, text_of[first_start]))
    column = np.empty(len(gram_keys), dtype=np.int64)
    column[order] = np.arange(len(gram_keys))
    kept = np.repeat(keep, df)
    gram_of_pair = np.repeat(np.cumsum(keep) - 1, df)
    matrix = coo_matrix(
        (counts[kept].astype(np.float32), (text[kept], column[gram_of_pair[kept]])), shape=(n_texts, len(gram_keys))
    ).tocsr()
    matrix.sort_indices()
    return matrix, gram_keys[order]


def char_ngrams(
    texts: Sequence[str], min_n: int, max_n: int, *, min_df: float = 1, max_df: float | None = None
) -> Ngrams:
    """Count the char n-grams (``min_n`` … ``max_n`` characters) of ``texts`` as scikit-learn's char analyzer cuts
    them (white-space runs squeezed to one space, n-grams within one text), keeping those in at least ``min_df`` and
    at most ``max_df`` texts: the same counts as ``CountVectorizer(analyzer="char")`` in the same column order, several
    times faster, since the n-grams are numbered and counted by sorting the numbers in NumPy, never made Python strings
    but for the vocabulary. ``ValueError`` when the texts hold too many distinct characters for 64-bit numbers."""
    squeezed = [_SQUEEZE.sub(" ", t) for t in texts]
    lengths = np.fromiter(map(len, squeezed), dtype=np.int64, count=len(squeezed))
    points = np.frombuffer("".join(squeezed).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.zeros(int(points.max()) + 1 if len(points) else 1, dtype=bool)
    present[points] = True
    ids = np.cumsum(present, dtype=np.int64)[points]  # each character's unit number, 1 … distinct characters
    units = [chr(c) for c in np.flatnonzero(present).tolist()]
    matrix, keys = _count_ngrams(ids, lengths, len(units) + 1, min_n, max_n, min_df, max_df)
    return Ngrams(matrix=matrix, keys=keys, units=units, max_n=max_n, sep="")


def word_ngrams(
    token_lists: Sequence[Sequence[str]], min_n: int, max_n: int, *, min_df: float = 1, max_df: float | None = None
) -> Ngrams:
    """:func:`char_ngrams` for texts given as their words: the n-grams scikit-learn's word analyzer makes of them
    (words joined by a space). ``ValueError`` for a word holding a space (its name could be an n-gram's)."""
    number: dict[str, int] = {}
    flat = [number.setdefault(w, len(number) + 1) for tokens in token_lists for w in tokens]
    if any(" " in w for w in number):
        raise ValueError("a word holds a space")
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    ids = np.asarray(flat, dtype=np.int64)
    matrix, keys = _count_ngrams(ids, lengths, len(number) + 1, min_n, max_n, min_df, max_df)
    return Ngrams(matrix=matrix, keys=keys, units=list(number), max_n=max_n, sep=" ")


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
    return [w for w in cut(text) if w.isalnum() or not _NON_WORD.fullmatch(w)]  # isalnum: the common case, sooner


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
        inside = _texts_containing([w for w in candidates if len(w) > 1], joined)
        return cls(frozenset(w for w in candidates if len(w) == 1 or rare(inside[w], in_raw[w] / n_raw)))

    def __call__(self, text: str) -> str:
        norm = normalize(text)
        if not self.dropped or looks_segmented(text):
            return norm
        return "".join(w for w in words(norm) if w not in self.dropped)


def _texts_containing(needles: Sequence[str], texts: Sequence[str]) -> Counter[str]:
    """For each needle, in how many of ``texts`` it occurs (as ``needle in text``), in one Aho-Corasick pass."""
    import ahocorasick

    found: Counter[str] = Counter()
    if not needles:
        return found
    automaton = ahocorasick.Automaton()
    for needle in needles:
        automaton.add_word(needle, needle)
    automaton.make_automaton()
    for text in texts:
        found.update({needle for _, needle in automaton.iter(text)})
    return found


def near_duplicate_groups(texts: Sequence[str], *, threshold: float = 0.5, chunk: int = 1000) -> np.ndarray:
    """Group ids such that near-duplicate texts share a group (union of linked pairs).

    Two texts are linked when the share of character bigrams of the shorter one that also occur in the
    longer one reaches ``threshold``. Bigrams common to more than 5% of the texts are ignored: they say
    nothing about identity. Containment (rather than Jaccard) links a segmented, stop-word-stripped copy
    of a message to its raw original, and a re-posting that adds or drops a sentence. ``threshold`` in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"near-duplicate threshold {threshold} is not in (0, 1]")
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
        x = char_ngrams(prints, 2, 2, max_df=0.05 * n if n >= 200 else None).matrix
        x.data[:] = 1.0  # which bigrams a text has, not how often
        sizes = np.asarray(x.sum(axis=1)).ravel()
        xt = x.T.tocsc()
        for start in range(0, n, chunk):
            inter = (x[start : start + chunk] @ xt).tocoo()
            rows, cols = inter.row + start, inter.col
            later = cols > rows
            rows, cols, shared = rows[later], cols[later], inter.data[later]
            shorter = np.minimum(sizes[rows], sizes[cols])
            # Fewer than 3 distinctive bigrams is not enough evidence to link two texts.
            linked = (shorter >= 3) & (shared / np.maximum(shorter, 1) >= threshold)
            rows, cols = rows[linked], cols[linked]
            order = np.lexsort((cols, rows))  # row by row: the groups' numbers follow the union's order
            for i, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
                a, b = find(i), find(c)
                if a != b:
                    parent[a] = b
    roots = np.array([find(i) for i in range(n)])
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)
