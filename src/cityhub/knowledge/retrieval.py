"""Hybrid lexical retrieval over the knowledge base: BM25 over words ⊕ character n-gram TF-IDF, fused by RRF.

Why two views of the text: citizens and knowledge-base authors name the same matter with different words
(公积金提取 / 取公积金), which word BM25 misses and character n-grams catch; word BM25 in turn weighs rare,
decisive terms (a road, a policy name) far above frequent characters. Reciprocal rank fusion needs no score
calibration between the two, so it carries over to new knowledge bases unchanged.

The index is plain in-process data (sparse matrices), rebuilt from the database when the knowledge base's
revision counter moves; validity periods are checked at query time, so an entry expires without a rebuild.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy.sparse import csr_matrix

from cityhub.nlp.text import normalize, words

RRF_K = 60
CANDIDATES = 100  # per ranking, before fusion
BM25_K1 = 1.2
BM25_B = 0.75
ANSWER_CHARS = 0  # characters of the answer indexed with the question (0: question and keywords only)


@dataclass(frozen=True)
class Doc:
    """What the index needs of one entry."""

    id: int
    question: str
    answer: str = ""
    keywords: Sequence[str] = ()
    category_id: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    public: bool = False  # fit for the public: ranked for a citizen too (``search(public_only=True)``)


@dataclass(frozen=True)
class Hit:
    """One ranked entry: fused score in (0, 1], component scores and ranks, and the words that matched."""

    id: int
    score: float
    bm25: float
    cosine: float
    bm25_rank: int | None
    char_rank: int | None
    matched: list[str] = field(default_factory=list)

    def why(self) -> str:
        parts = []
        if self.matched:
            parts.append("词: " + "、".join(self.matched))
        if self.bm25_rank is not None:
            parts.append(f"BM25 {self.bm25:.2f} (#{self.bm25_rank})")
        if self.char_rank is not None:
            parts.append(f"字符相似度 {self.cosine:.2f} (#{self.char_rank})")
        return "; ".join(parts)


# Words that ask, not what about (怎么办, 如何, 请问 …): in a question they say nothing of its matter, and in a small
# knowledge base, where few entries hold them, word BM25 would weigh them like a matter's name — 我想办狗证怎么办 then
# ranked 家里停水了怎么办 first. Left out of the word view; the character view still sees them.
ASKING_WORDS = frozenset(
    [
        "怎么",
        "怎么办",
        "怎么样",
        "怎样",
        "如何",
        "咋办",
        "咋",
        "什么",
        "为什么",
        "什么时候",
        "时候",
        "哪里",
        "哪儿",
        "哪些",
        "哪个",
        "多少",
        "多久",
        "可以",
        "可不可以",
        "能否",
        "能不能",
        "是否",
        "有没有",
        "需要",
        "办理",
        "请问",
        "咨询",
        "问题",
        "我们",
        "你们",
        "他们",
        "现在",
        "一下",
        "谢谢",
        "您好",
        "你好",
        "我想",
        "想问",
        "想要",
        "应该",
        "麻烦",
        "帮忙",
    ]
)

# Parts of an entry's text are joined by a mark that normalisation keeps (spaces between Chinese words it removes),
# so that neither view reads a word across two keywords.
_PART = "；"


def doc_text(doc: Doc, answer_chars: int = ANSWER_CHARS) -> str:
    """The text indexed for an entry: question, keywords twice (they are the author's own emphasis)."""
    keywords = _PART.join(doc.keywords)
    parts = [doc.question, keywords, keywords]
    if answer_chars:
        parts.append(doc.answer[:answer_chars])
    return normalize(_PART.join(p for p in parts if p))


def doc_words(doc: Doc, text: str) -> list[str]:
    """The word view of an entry whose indexed text (:func:`doc_text`) is ``text``: its words, and each keyword whole
    as well (办狗证 is one term to its author, whatever the segmenter makes of it)."""
    whole = [normalize(k) for k in doc.keywords]
    return query_words(text) + [k for k in whole + whole if k and k not in ASKING_WORDS]


def query_words(text: str) -> list[str]:
    """The words of a (normalised) text that can name a matter."""
    return [w for w in words(text) if w not in ASKING_WORDS]


def _ts(value: datetime | None, default: float) -> float:
    return value.timestamp() if value is not None else default


class KnowledgeIndex:
    """BM25 and char n-gram TF-IDF matrices over a fixed set of entries."""

    def __init__(self, docs: Sequence[Doc], *, answer_chars: int = ANSWER_CHARS, char_ngrams: tuple[int, int] = (2, 3)):
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        self.ids = np.array([d.id for d in docs], dtype=np.int64)
        self.category_ids = np.array([d.category_id if d.category_id is not None else -1 for d in docs], dtype=np.int64)
        self.valid_from = np.array([_ts(d.valid_from, -math.inf) for d in docs], dtype=np.float64)
        self.valid_until = np.array([_ts(d.valid_until, math.inf) for d in docs], dtype=np.float64)
        self.public = np.array([d.public for d in docs], dtype=bool)
        self.size = len(docs)
        texts = [doc_text(d, answer_chars) for d in docs]
        self._words: CountVectorizer | None = None
        self._chars: TfidfVectorizer | None = None
        if not docs:
            return
        tokens = [doc_words(d, text) for d, text in zip(docs, texts, strict=True)]
        self._words = CountVectorizer(analyzer=lambda toks: toks, dtype=np.float32)
        try:
            counts: csr_matrix = self._words.fit_transform(tokens).tocsr()
        except ValueError:  # no tokens at all
            self._words = None
        else:
            self._bm25 = self._bm25_weights(counts)
            self._vocab = self._words.vocabulary_
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            self._idf = np.log(1.0 + (self.size - df + 0.5) / (df + 0.5))
        self._chars = TfidfVectorizer(analyzer="char", ngram_range=char_ngrams, sublinear_tf=True, dtype=np.float32)
        try:
            self._char_matrix: csr_matrix = self._chars.fit_transform(texts).tocsr()
        except ValueError:
            self._chars = None

    def _bm25_weights(self, counts: csr_matrix) -> csr_matrix:
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        avgdl = float(lengths.mean()) or 1.0
        weights = counts.copy()
        row_of = np.repeat(np.arange(n), np.diff(counts.indptr))
        tf = weights.data
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[row_of] / avgdl)
        weights.data = (idf[weights.indices] * tf * (BM25_K1 + 1.0) / (tf + norm)).astype(np.float32)
        return weights

    def search(
        self,
        text: str,
        *,
        limit: int = 5,
        now: datetime | None = None,
        categories: set[int] | None = None,
        public_only: bool = False,
    ) -> list[Hit]:
        """Best entries for ``text``: valid at ``now`` and, if given, in ``categories`` (or uncategorised); with
        ``public_only``, of the public entries alone (ranked among them: a private entry takes no public one's
        place)."""
        if self.size == 0 or limit <= 0:
            return []
        query = normalize(text)
        allowed = np.ones(self.size, dtype=bool)
        if now is not None:
            t = now.timestamp()
            allowed &= (self.valid_from <= t) & (self.valid_until > t)
        if public_only:
            allowed &= self.public
        if categories is not None:
            allowed &= np.isin(self.category_ids, np.array(sorted(categories | {-1}), dtype=np.int64))
        if not allowed.any():
            return []

        bm25 = np.zeros(self.size, dtype=np.float32)
        query_terms: list[int] = []
        if self._words is not None:
            query_terms = sorted({self._vocab[w] for w in query_words(query) if w in self._vocab})
            if query_terms:
                q = np.zeros(self._bm25.shape[1], dtype=np.float32)
                q[query_terms] = 1.0
                bm25 = self._bm25 @ q
        cosine = np.zeros(self.size, dtype=np.float32)
        if self._chars is not None:
            qv = self._chars.transform([query])
            if qv.nnz:
                cosine = np.asarray((self._char_matrix @ qv.T).todense()).ravel()

        bm25_ranks = _ranks(bm25, allowed)
        char_ranks = _ranks(cosine, allowed)
        fused: dict[int, float] = {}
        for ranks in (bm25_ranks, char_ranks):
            for row, rank in ranks.items():
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
        best = 2.0 / (RRF_K + 1)
        order = sorted(fused, key=lambda r: (-fused[r], -cosine[r], int(self.ids[r])))[:limit]
        inverse = {v: k for k, v in self._vocab.items()} if self._words is not None and order else {}
        hits = []
        for row in order:
            matched: list[str] = []
            if query_terms:
                start, end = self._bm25.indptr[row], self._bm25.indptr[row + 1]
                present = set(self._bm25.indices[start:end].tolist()) & set(query_terms)
                matched = [inverse[j] for j in sorted(present, key=lambda j: -self._idf[j])[:5]]
            hits.append(
                Hit(
                    id=int(self.ids[row]),
                    score=fused[row] / best,
                    bm25=float(bm25[row]),
                    cosine=float(cosine[row]),
                    bm25_rank=bm25_ranks.get(row),
                    char_rank=char_ranks.get(row),
                    matched=matched,
                )
            )
        return hits


def _ranks(scores: np.ndarray, allowed: np.ndarray) -> dict[int, int]:
    """1-based ranks of the top allowed rows with a positive score."""
    masked = np.where(allowed & (scores > 0), scores, -np.inf)
    k = min(CANDIDATES, int(np.isfinite(masked).sum()))
    if k == 0:
        return {}
    top = np.argpartition(-masked, k - 1)[:k] if k < len(masked) else np.arange(len(masked))
    top = top[np.isfinite(masked[top])]
    top = top[np.lexsort((top, -masked[top]))]
    return {int(row): i + 1 for i, row in enumerate(top)}


# --- the shared cache ------------------------------------------------------------------------------------------


class IndexCache:
    """One index per database, replaced whole when the knowledge base's revision key changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one build at a time: a rebuild of 50k entries takes seconds
        self._by_db: dict[str, tuple[object, KnowledgeIndex]] = {}

    def get(self, db_key: str, revision_key: object) -> KnowledgeIndex | None:
        cached = self._by_db.get(db_key)
        return cached[1] if cached is not None and cached[0] == revision_key else None

    def put(self, db_key: str, revision_key: object, index: KnowledgeIndex) -> None:
        with self._lock:
            self._by_db[db_key] = (revision_key, index)

    @property
    def build_lock(self) -> threading.Lock:
        return self._build_lock

    def clear(self) -> None:
        with self._lock:
            self._by_db.clear()


CACHE = IndexCache()
