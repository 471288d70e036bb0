"""Hot-topic mining (热点问题挖掘): orders → fine-grained topics with a heat score, kept stable over time.

A topic is one real problem (one estate's construction noise, one subsidy's payment delays), so orders are
grouped by meaning *and* place:

1. **Text → vector.** Title (twice, it is the densest part) plus the start of the content; rjieba words and
   character bigrams of the title, TF-IDF (sublinear, vocabulary capped), reduced by TruncatedSVD (LSA) to
   ``dims`` dimensions and L2-normalised. The vectoriser and SVD are fitted on a sample (``fit_sample``).
2. **Places.** Named places (estates, villages, streets, roads, schools) and the anonymised district codes
   (A3区) are extracted from the text (:mod:`cityhub.analytics.lexicon`), plus the order's street/community
   when it comes from the database. Two orders that name different estates are pushed apart, orders naming
   the same estate pulled together: ``sim' = cos + PLACE_BONUS·shared − PLACE_PENALTY·conflict``.
3. **Clustering.** Inputs above ``cell_max`` orders are first cut into cells by MiniBatchKMeans (a blocking
   step, so the exact step stays quadratic only within a cell); within each cell, average-linkage
   agglomerative clustering on ``1 − sim'`` cut at ``threshold``. Clusters whose centroids are nearly equal
   across neighbouring cells are then merged. Clusters smaller than ``min_size`` are not topics.
4. **Labels.** Key phrases are the words most over-represented in the topic against the corpus; the
   representative title is the member title closest to the centroid.
5. **Heat** (:data:`HEAT_FORMULA`) from volume, growth, likes/opposes, repeat appeals, spread over places and
   recency; ``status`` marks new and rising topics.
6. **Incremental update.** :class:`TopicModel` keeps the fitted vectoriser, each topic's centroid and a pool
   of recent unassigned orders. New orders join the nearest topic above the threshold; the rest are clustered
   with the pool and may seed new topics with fresh ids. Existing topic ids never change.

**Memory.** The input is streamed: :meth:`TopicModel.fit` takes a sequence or a *source* (a callable returning
a fresh iterator, read twice: once to count and draw the vectoriser's sample, once to encode), and records are
encoded chunk by chunk (``chunk`` orders) and dropped. What is kept per order is columnar (:class:`Batch`):
id, title, time, likes/opposes, a 64-bit citizen key, the float32 SVD vector, and term, place and group ids as
ragged integer arrays (term ids as uint16) — never the text. On large inputs tokenisation and the per-cell
clustering run in two worker processes forked after the vectoriser is fitted, so they inherit it instead of
receiving a copy per task, with a bounded number of chunks in flight; cells are clustered in row blocks so a
worker holds one ``cell × cell`` float32 similarity matrix and its condensed distances.
"""

from __future__ import annotations

import gc
import hashlib
import math
import multiprocessing
import random
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from scipy import sparse

from cityhub.analytics.lexicon import ADMIN_CODE_RE, extract_groups, extract_places, fold_place_variants
from cityhub.config import get_settings
from cityhub.nlp.text import cut
from cityhub.workorders.schemas import title_from_content

# ------------------------------------------------------------------------------------------ parameters

PLACE_BONUS = 0.05
PLACE_PENALTY = 0.2
DISTRICT_PENALTY = 0.08
CONTENT_CHARS = 240
HEAT_FORMULA = (
    "heat = 1.0·ln(1+citizens) + 0.3·ln(1+repeats) + 0.6·ln(1+likes+opposes) + 0.3·ln(1+places) "
    "+ 0.5·growth, times (0.5 + 0.5·recency); growth = ln((1+n_last)/(1+n_prev)) clipped to [-1, 2] over "
    "the last {window}-day window vs the one before; recency = 0.5^(days since the last order / {half_life}); "
    "citizens = distinct submitters (orders when unknown), repeats = orders − citizens, places = distinct "
    "named places. status: new (first order in the last window), rising (growth ≥ ln 2 and ≥ 3 recent "
    "orders), active (an order in the last window), dormant."
)


@dataclass(frozen=True)
class Params:
    dims: int = 200
    max_features: int = 40_000
    threshold: float = 0.62  # minimum adjusted cosine (average linkage) inside a topic
    merge_threshold: float = 0.75  # centroid cosine above which clusters of neighbouring cells merge
    min_size: int = 2
    cell_max: int = 4000
    fit_sample: int = 30_000
    window_days: int = 30
    half_life_days: float = 180.0
    pool_max: int = 50_000
    seed: int = 0
    chunk: int = 5000  # orders encoded per task
    workers: int = 2  # worker processes on large inputs (the machine's cores)
    parallel_min: int = 50_000  # inputs at least this large use the workers


@dataclass(slots=True)
class OrderRecord:
    """One order as the miner sees it; ``id`` is the caller's id (CSV 留言编号 or the database id)."""

    id: str
    title: str
    content: str = ""
    created_at: datetime | None = None
    likes: int = 0
    opposes: int = 0
    citizen: str | None = None
    places: tuple[str, ...] = ()  # known places (e.g. the order's street/community names)


class TermCounts:
    """Term id → number of member orders using it, as two sorted int32 arrays (a dict of ints costs ~10× more)."""

    __slots__ = ("counts", "ids")

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.int32)
        self.counts = np.zeros(0, dtype=np.int32)

    def add(self, term_ids: np.ndarray) -> None:
        """Count every entry of ``term_ids`` (one per order and term) once more."""
        if not len(term_ids):
            return
        merged = np.concatenate([self.ids, term_ids.astype(np.int32, copy=False)])
        weights = np.concatenate([self.counts, np.ones(len(term_ids), dtype=np.int32)])
        ids, inverse = np.unique(merged, return_inverse=True)
        self.ids = ids.astype(np.int32)
        self.counts = np.bincount(inverse, weights=weights, minlength=len(ids)).astype(np.int32)

    def items(self) -> Iterator[tuple[int, int]]:
        return zip(self.ids.tolist(), self.counts.tolist(), strict=True)

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids, self.counts

    def __setstate__(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        self.ids, self.counts = state


@dataclass
class Topic:
    id: int
    centroid_sum: np.ndarray  # un-normalised sum of member vectors: updates are exact running means
    order_ids: list[str]
    words: TermCounts | Counter[int]  # vocabulary term ids of the members
    places: Counter[str]
    groups: Counter[str]
    times: list[datetime]
    citizens: set[int]  # 64-bit keys of the distinct submitters (:func:`citizen_key`)
    likes: int = 0
    opposes: int = 0
    label: str = ""
    representative: str = ""
    best_sim: float = -1.0
    key_phrases: list[str] = field(default_factory=list)
    heat: float = 0.0
    status: str = "active"
    n_last: int = 0
    n_prev: int = 0

    @property
    def size(self) -> int:
        return len(self.order_ids)

    def top_places(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` places most named by the topic's orders, with how many name them; never the topic's own phrase
        (:func:`names_the_problem`: a model that counted it before orders' places left it out)."""
        return [(p, c) for p, c in self.places.most_common(n + 1) if not names_the_problem(p, self.representative)][:n]

    def centroid(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.centroid_sum))
        return self.centroid_sum / norm if norm else self.centroid_sum

    def to_dict(self) -> dict[str, Any]:
        start = min(self.times) if self.times else None
        end = max(self.times) if self.times else None
        return {
            "id": self.id,
            "label": self.label,
            "heat": round(self.heat, 3),
            "size": self.size,
            "time_span": [start.isoformat() if start else None, end.isoformat() if end else None],
            "places": [p for p, _ in self.top_places(5)],
            "groups": [g for g, _ in self.groups.most_common(5)],
            "order_ids": list(self.order_ids),
            "key_phrases": self.key_phrases,
            "representative_title": self.representative,
            "status": self.status,
            "likes": self.likes,
            "opposes": self.opposes,
            "citizens": len(self.citizens) or self.size,
        }


# ------------------------------------------------------------------------------------------ text features

_NON_WORD = re.compile(r"[\W_\d]+")
_STOP_TEXT = (
    "的 了 是 在 我 我们 你 他 她 和 与 及 或 对 向 于 到 从 把 被 给 这 那 该 此 每 个 为 有 无 也 都 就 还 又 很 请 "
    "问 吗 呢 吧 啊 么 没 不 但 而 并 等 将 会 能 要 让 使 已 已经 一个 一些 这个 那个 什么 怎么 如何 因为 所以 "
    "如果 可以 没有 现在 目前 希望 相关 部门 领导 问题 反映 关于 咨询 情况 进行 政府 市民 您好 你好 谢谢 尊敬 "
    "请问 建议 要求 严重 一直 还是 就是 自己 他们 大家 非常 这样 时候 今年 去年 至今 多次 解决 处理 投诉 "
    "加快 力度 步伐 有何 具体 行动 推进 重视 出台 落实 尽快 能否 是否 为何 为什么 何时 什么 哪里 "
    "市 区 县 镇 村 路 号 年 月 日"
)
_STOP = frozenset(_STOP_TEXT.split(" "))


def _clean(text: str) -> str:
    return ADMIN_CODE_RE.sub(" ", text)


def doc_tokens(title: str, content: str, places: Sequence[str] = ()) -> list[str]:
    """Tokens of one order: rjieba words of title (twice) and content start, title character bigrams, places.

    Named places become tokens of their own (``@丽发新城``, ``@205路``) so that the embedding carries them too.
    """
    title = _clean(title or "")
    body = _clean((content or "").strip()[:CONTENT_CHARS])
    tw = [w for w in cut(title) if _keep(w)]
    bw = [w for w in cut(body) if _keep(w)]
    compact = _NON_WORD.sub("", title)
    bigrams = ["#" + compact[i : i + 2] for i in range(len(compact) - 1)]
    named = ["@" + p for p in places if not ADMIN_CODE_RE.fullmatch(p)]
    return tw + tw + bw + bigrams + named


_KEEP: dict[str, bool] = {}


def _keep(word: str) -> bool:
    """Whether a word is a token (two characters or more, not a stop word, not only digits/punctuation); cached."""
    keep = _KEEP.get(word)
    if keep is None:
        keep = len(word) > 1 and word not in _STOP and not _NON_WORD.fullmatch(word)
        if len(_KEEP) < 2_000_000:
            _KEEP[word] = keep
    return keep


def _identity(tokens: list[str]) -> list[str]:
    return tokens


_PUNCTUATION = re.compile(r"[\W_]+")


def names_the_problem(place: str, title: str) -> bool:
    """Whether a place read in a text is the whole of ``title`` (an order's, a topic's representative one), maybe
    with a few characters of the sentence in front (健身房预付卡商家跑路 → 房预付卡商家跑路): the problem said, read
    as a place by how it ends (商家跑路 ends in 路 as a road does), not where it is — a title that is only a place's
    name says no problem."""
    words = _PUNCTUATION.sub("", title)
    return bool(words) and _PUNCTUATION.sub("", place).endswith(words)


def order_places(title: str, content: str, known: Sequence[str] = ()) -> list[str]:
    """The places of one order as a topic counts them: its known places (street, community), then those its title and
    the start of its content name — not its title's own phrase (:func:`names_the_problem`)."""
    named = extract_places(f"{title}\n{content[: CONTENT_CHARS * 2]}")
    return list(dict.fromkeys([*known, *(p for p in named if not names_the_problem(p, title))]))


def _analyse_many(items: Sequence[tuple[str, str, tuple[str, ...]]]) -> list[tuple[list[str], list[str]]]:
    out = []
    for title, content, known in items:
        places = order_places(title, content, known)
        out.append((doc_tokens(title, content, places), places))
    return out


class Embedder:
    """TF-IDF over :func:`doc_tokens` → TruncatedSVD → L2-normalised float32 rows."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.vectorizer: Any = None
        self.svd: Any = None

    def fit(self, token_lists: Sequence[list[str]]) -> Embedder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        min_df = 2 if len(token_lists) >= 50 else 1
        self.vectorizer = TfidfVectorizer(
            analyzer=_identity,
            min_df=min_df,
            max_df=0.3 if len(token_lists) >= 50 else 1.0,
            max_features=self.params.max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        x = self.vectorizer.fit_transform(token_lists)
        dims = max(1, min(self.params.dims, x.shape[1] - 1, x.shape[0] - 1))
        self.svd = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=4, random_state=self.params.seed)
        self.svd.fit(x)
        # float32 components: half the memory, and transforms come out float32 without a copy.
        self.svd.components_ = self.svd.components_.astype(np.float32)
        return self

    def tfidf(self, token_lists: Sequence[list[str]]) -> sparse.csr_matrix:
        return self.vectorizer.transform(token_lists).tocsr()

    def project(self, tfidf: sparse.csr_matrix, chunk: int = 20_000) -> np.ndarray:
        """SVD coordinates of TF-IDF rows, L2-normalised, float32 (in chunks: the SVD output is float64)."""
        out = np.empty((tfidf.shape[0], self.svd.n_components), dtype=np.float32)
        for s in range(0, tfidf.shape[0], chunk):
            z = self.svd.transform(tfidf[s : s + chunk])
            norms = np.linalg.norm(z, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            out[s : s + chunk] = z / norms
        return out

    def transform(self, token_lists: Sequence[list[str]]) -> np.ndarray:
        return self.project(self.tfidf(token_lists))

    @property
    def vocabulary(self) -> list[str]:
        return list(self.vectorizer.get_feature_names_out())


TEXT_CHARS = CONTENT_CHARS * 2  # the start of the content read for places (and by the database reader)
Item = tuple[str, str, tuple[str, ...]]  # (title, content, known places): what a worker needs of an order


@dataclass(slots=True)
class Encoded:
    """A chunk encoded by a worker: SVD vectors, term ids (ragged), place and group names per order."""

    x: np.ndarray
    terms: np.ndarray
    term_counts: np.ndarray
    places: list[list[str]]
    groups: list[list[str]]


def _encode_items(embedder: Embedder, items: Sequence[Item]) -> Encoded:
    pairs = _analyse_many(items)
    tfidf = embedder.tfidf([t for t, _ in pairs])
    # Only which terms occur is kept (for key phrases); ids fit 16 bits while the vocabulary does.
    dtype = np.uint16 if tfidf.shape[1] <= 65536 else np.int32
    return Encoded(
        x=embedder.project(tfidf),
        terms=tfidf.indices.astype(dtype),
        term_counts=np.diff(tfidf.indptr).astype(np.int32),
        places=[p for _, p in pairs],
        groups=[extract_groups(f"{title}\n{content}") for title, content, _ in items],
    )


# ------------------------------------------------------------------------------------------ columnar orders


@dataclass
class Ragged:
    """Rows of small integer lists: CSR without values (term, place and group ids per order)."""

    indptr: np.ndarray  # int64, len n + 1
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def empty(cls, dtype: Any = np.int32) -> Ragged:
        return cls(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=dtype))

    @classmethod
    def from_counts(cls, counts: np.ndarray, indices: np.ndarray) -> Ragged:
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, indices)

    @classmethod
    def concat(cls, parts: Sequence[Ragged]) -> Ragged:
        if not parts:
            return cls.empty()
        counts = np.concatenate([np.diff(p.indptr) for p in parts])
        return cls.from_counts(counts, np.concatenate([p.indices for p in parts]))

    def row_ids(self) -> np.ndarray:
        """The row of every entry."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The entries of ``rows``, concatenated in that order."""
        starts, ends = self.indptr[rows], self.indptr[np.asarray(rows) + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return self.indices[:0]
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self.indices[offsets + np.arange(total, dtype=np.int64)]

    def take(self, rows: np.ndarray) -> Ragged:
        rows = np.asarray(rows, dtype=np.int64)
        return Ragged.from_counts(self.indptr[rows + 1] - self.indptr[rows], self.gather(rows))


class Interner:
    """Strings ↔ small ids."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def id_of(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
            self._added(name)
        return i

    def _added(self, name: str) -> None:
        pass

    def ragged(self, lists: Sequence[Sequence[str]]) -> Ragged:
        ids = [self.id_of(s) for names in lists for s in names]
        return Ragged.from_counts(np.fromiter(map(len, lists), np.int64, len(lists)), np.asarray(ids, np.int32))

    def counter(self, ids: np.ndarray, *, skip: Callable[[str], bool] | None = None) -> Counter[str]:
        """Occurrences of each id in ``ids`` as names, in order of first occurrence (as ``Counter.update`` would)."""
        if not len(ids):
            return Counter()
        unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
        out: Counter[str] = Counter()
        for k in np.argsort(first, kind="stable").tolist():
            name = self.names[int(unique[k])]
            if skip is None or not skip(name):
                out[name] = int(counts[k])
        return out


@dataclass
class Batch:
    """Orders as columns: everything clustering, topic building and the pool need, never the text."""

    ids: list[str]
    titles: list[str]
    created: list[datetime | None]
    ts: np.ndarray  # float64 seconds (the epoch when unknown): ordering only
    likes: np.ndarray  # int64
    opposes: np.ndarray  # int64
    citizens: np.ndarray  # int64 citizen keys, 0 when unknown
    x: np.ndarray  # float32 (n, dims), L2-normalised
    terms: Ragged  # vocabulary ids
    places: Ragged  # PlaceIndex ids
    groups: Ragged  # group Interner ids

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, dims: int) -> Batch:
        z = np.zeros(0, dtype=np.int64)
        return cls(
            [], [], [], np.zeros(0), z, z, z, np.zeros((0, dims), np.float32), Ragged.empty(np.uint16),
            Ragged.empty(), Ragged.empty(),
        )  # fmt: skip

    def take(self, rows: np.ndarray) -> Batch:
        rows = np.asarray(rows, dtype=np.int64)
        pick = rows.tolist()
        return Batch(
            [self.ids[i] for i in pick],
            [self.titles[i] for i in pick],
            [self.created[i] for i in pick],
            self.ts[rows],
            self.likes[rows],
            self.opposes[rows],
            self.citizens[rows],
            self.x[rows],
            self.terms.take(rows),
            self.places.take(rows),
            self.groups.take(rows),
        )

    @classmethod
    def concat(cls, a: Batch, b: Batch) -> Batch:
        return cls(
            [*a.ids, *b.ids],
            [*a.titles, *b.titles],
            [*a.created, *b.created],
            np.concatenate([a.ts, b.ts]),
            np.concatenate([a.likes, b.likes]),
            np.concatenate([a.opposes, b.opposes]),
            np.concatenate([a.citizens, b.citizens]),
            np.vstack([a.x, b.x]),
            Ragged.concat([a.terms, b.terms]),
            Ragged.concat([a.places, b.places]),
            Ragged.concat([a.groups, b.groups]),
        )


def stable_key(text: str) -> int:
    """A non-zero 63-bit key of a string, the same in every process (unlike ``hash``): it can be stored."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1 or 1


def citizen_key(citizen: str | None) -> int:
    """The key of a submitter (0: unknown)."""
    return stable_key(citizen) if citizen else 0


class SeenOrders:
    """The ids of every order a model has read, as sorted :func:`stable_key` keys: 8 bytes an order.

    An order is counted once however often it is given — again in an overlapping export, or twice in one file —
    whether it is held in a topic, in the pool, or was dropped from the pool as too old: an order read again would
    otherwise be counted again (its topic's size and heat grow, or it seeds a "new" topic with its own copy). Keys,
    not the id strings: a set of a million ids costs 34 MB for its table alone, plus ~50 bytes a string for the
    orders no longer held, where this costs 8 MB, pickled with the model. Two ids share a key with a chance of about
    3e-8 for a million orders read against a million held (a later order with such an id would be taken for the
    earlier)."""

    __slots__ = ("keys",)

    def __init__(self, keys: np.ndarray | None = None) -> None:
        self.keys = np.zeros(0, dtype=np.int64) if keys is None else np.unique(keys.astype(np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def holds(self, keys: np.ndarray) -> np.ndarray:
        """Whether each of ``keys`` is held (a boolean array)."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.asarray(self.keys[at] == keys)

    def add(self, keys: np.ndarray) -> None:
        """Hold ``keys``, distinct and none of them held yet (an insertion: no re-sort of what is held)."""
        keys = np.sort(keys.astype(np.int64))
        self.keys = np.insert(self.keys, np.searchsorted(self.keys, keys), keys)

    def __getstate__(self) -> np.ndarray:
        return self.keys

    def __setstate__(self, state: np.ndarray) -> None:
        self.keys = state


class _BatchBuilder:
    """Collects the scalar columns of records as they stream by and the workers' encoded chunks.

    A record whose id the model has read (``seen``), or this input gave before, is left out and counted in
    ``repeated``; the ids taken are collected in ``fresh``."""

    def __init__(self, dims: int, expected: int, seen: SeenOrders) -> None:
        self.seen = seen
        self.fresh = SeenOrders()
        self.repeated = 0
        self.x = np.empty((max(expected, 1), dims), dtype=np.float32)
        self.filled = 0
        self.ids: list[str] = []
        self.titles: list[str] = []
        self.created: list[datetime | None] = []
        self.likes: list[int] = []
        self.opposes: list[int] = []
        self.citizens: list[int] = []
        self.terms: list[np.ndarray] = []
        self.term_counts: list[np.ndarray] = []
        self.places: list[Ragged] = []
        self.groups: list[Ragged] = []

    def items(self, chunk: Sequence[OrderRecord]) -> list[Item]:
        chunk = self._unseen(chunk)
        for r in chunk:
            self.ids.append(r.id)
            self.titles.append(r.title)
            self.created.append(r.created_at)
            self.likes.append(r.likes)
            self.opposes.append(r.opposes)
            self.citizens.append(citizen_key(r.citizen))
        return [(r.title, r.content, r.places) for r in chunk]

    def _unseen(self, chunk: Sequence[OrderRecord]) -> list[OrderRecord]:
        """The records of ``chunk`` whose id was not read before (of several with one id, the first)."""
        keys = np.fromiter((stable_key(r.id) for r in chunk), dtype=np.int64, count=len(chunk))
        new = np.zeros(len(chunk), dtype=bool)
        new[np.unique(keys, return_index=True)[1]] = True
        new &= ~self.seen.holds(keys) & ~self.fresh.holds(keys)
        self.fresh.add(keys[new])
        self.repeated += len(chunk) - int(new.sum())
        return [r for r, keep in zip(chunk, new.tolist(), strict=True) if keep]

    def add(self, enc: Encoded, places: PlaceIndex, groups: Interner) -> None:
        k = enc.x.shape[0]
        if self.filled + k > self.x.shape[0]:  # the source grew between its two readings
            self.x = np.resize(self.x, (max(2 * self.x.shape[0], self.filled + k), self.x.shape[1]))
        self.x[self.filled : self.filled + k] = enc.x
        self.filled += k
        self.terms.append(enc.terms)
        self.term_counts.append(enc.term_counts)
        self.places.append(places.ragged(enc.places))
        self.groups.append(groups.ragged(enc.groups))

    def build(self) -> Batch:
        n = self.filled
        x = self.x if n == self.x.shape[0] else self.x[:n].copy()
        self.x = np.empty((0, x.shape[1]), dtype=np.float32)
        terms = Ragged.from_counts(
            np.concatenate(self.term_counts) if self.term_counts else np.zeros(0, np.int32),
            np.concatenate(self.terms) if self.terms else np.zeros(0, np.uint16),
        )
        self.terms.clear()
        return Batch(
            self.ids,
            self.titles,
            self.created,
            np.array([_ts(c) for c in self.created], dtype=np.float64),
            np.asarray(self.likes, dtype=np.int64),
            np.asarray(self.opposes, dtype=np.int64),
            np.asarray(self.citizens, dtype=np.int64),
            x,
            terms,
            Ragged.concat(self.places),
            Ragged.concat(self.groups),
        )


# ------------------------------------------------------------------------------------------ worker processes

_WORKER: dict[str, Any] = {}


def _init_worker(embedder: Embedder | None) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread per worker: the workers are the parallelism
    _WORKER["embedder"] = embedder
    _WORKER["limits"] = threadpool_limits  # keep the module alive with the setting


def _encode_task(items: Sequence[Item]) -> Encoded:
    return _encode_items(_WORKER["embedder"], items)


def _context() -> Any:
    """``fork`` (workers inherit the fitted vectoriser and share the parent's pages) when no other thread could
    hold a lock across the fork; else ``forkserver``/``spawn``, which pickle the vectoriser once per worker."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


Mapper = Callable[..., Iterator[Any]]


def _local(local: Callable[[Any], Any], _worker: Callable[[Any], Any], tasks: Iterable[Any], ahead: int = 0) -> Any:
    return map(local, tasks)


@contextmanager
def _workers(n: int, embedder: Embedder | None = None) -> Iterator[Mapper]:
    """A mapper ``(local_fn, worker_fn, tasks, ahead=4) → results in order``: in this process when ``n <= 1``,
    else in ``n`` worker processes with at most ``ahead`` tasks queued, so a streamed input is never read ahead.

    The workers are forked when the pool is created: create it while this process is small (their resident
    pages start as the parent's, shared until written) and reuse it.
    """
    if n <= 1:
        yield _local
        return
    gc.collect()
    gc.freeze()  # the children's collector then never touches (and copies) the parent's objects
    try:
        pool = _context().Pool(n, initializer=_init_worker, initargs=(embedder,))
    finally:
        gc.unfreeze()

    def run(
        _local: Callable[[Any], Any], worker: Callable[[Any], Any], tasks: Iterable[Any], ahead: int = 4
    ) -> Iterator[Any]:
        pending: deque[Any] = deque()
        for task in tasks:
            pending.append(pool.apply_async(worker, (task,)))
            while len(pending) >= ahead:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    try:
        yield run
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _chunks(records: Iterable[OrderRecord], size: int) -> Iterator[list[OrderRecord]]:
    chunk: list[OrderRecord] = []
    for r in records:
        chunk.append(r)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fit_embedder(params: Params, items: Sequence[Item]) -> Embedder:
    tokens = [t for t, _ in _analyse_many(items)]
    return Embedder(params).fit(tokens)


# ------------------------------------------------------------------------------------------ places


class PlaceIndex(Interner):
    """Place strings ↔ ids; documents' places as sparse binary matrices (named places and districts apart)."""

    NAMED, DISTRICT, CITY = 0, 1, 2

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[int] = []

    def _added(self, name: str) -> None:
        if ADMIN_CODE_RE.fullmatch(name):
            self.kinds.append(self.CITY if name.endswith("市") else self.DISTRICT)  # a city says nothing
        else:
            self.kinds.append(self.NAMED)

    def matrices(self, places: Ragged | Sequence[Sequence[str]]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        if not isinstance(places, Ragged):
            places = self.ragged(places)
        kinds = np.asarray(self.kinds, dtype=np.int8)
        rows = places.row_ids()
        cols = places.indices.astype(np.int64)
        entry_kind = kinds[cols] if len(cols) else np.zeros(0, np.int8)
        shape = (len(places), max(len(self.names), 1))

        def build(mask: np.ndarray) -> sparse.csr_matrix:
            m = sparse.csr_matrix((np.ones(int(mask.sum()), dtype=np.float32), (rows[mask], cols[mask])), shape=shape)
            m.data[:] = 1.0
            return m

        return build(entry_kind == self.NAMED), build(entry_kind == self.DISTRICT)


def place_adjustment(
    named_a: sparse.csr_matrix,
    district_a: sparse.csr_matrix,
    named_b: sparse.csr_matrix,
    district_b: sparse.csr_matrix,
) -> np.ndarray:
    """Dense (len a × len b) additive similarity adjustment for shared or conflicting places."""
    width = max(named_a.shape[1], named_b.shape[1], district_a.shape[1], district_b.shape[1])
    na, nb, da, db = (_widen(m, width) for m in (named_a, named_b, district_a, district_b))
    shared = (na @ nb.T).toarray() > 0
    has_a = np.asarray(na.getnnz(axis=1) > 0)
    has_b = np.asarray(nb.getnnz(axis=1) > 0)
    conflict = has_a[:, None] & has_b[None, :] & ~shared
    d_shared = (da @ db.T).toarray() > 0
    dh_a = np.asarray(da.getnnz(axis=1) > 0)
    dh_b = np.asarray(db.getnnz(axis=1) > 0)
    d_conflict = dh_a[:, None] & dh_b[None, :] & ~d_shared
    adj = PLACE_BONUS * shared.astype(np.float32) - PLACE_PENALTY * conflict.astype(np.float32)
    adj -= DISTRICT_PENALTY * d_conflict.astype(np.float32)
    return adj


def _widen(m: sparse.csr_matrix, width: int) -> sparse.csr_matrix:
    if m.shape[1] == width:
        return m
    m = m.tocsr().copy()
    m.resize((m.shape[0], width))
    return m


# ------------------------------------------------------------------------------------------ clustering


def _cluster_cell(x: np.ndarray, named: sparse.csr_matrix, district: sparse.csr_matrix, threshold: float) -> np.ndarray:
    """Average-linkage clusters of one cell, cut where the adjusted similarity drops below ``threshold``.

    One ``n × n`` float32 matrix is built in place (place adjustments added in row blocks) and turned into the
    condensed distances linkage needs.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = x.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    sim = x @ x.T
    for s in range(0, n, 512):
        sim[s : s + 512] += place_adjustment(named[s : s + 512], district[s : s + 512], named, district)
    np.subtract(1.0, sim, out=sim)
    np.clip(sim, 0.0, 2.0, out=sim)
    np.fill_diagonal(sim, 0.0)
    condensed = squareform(sim, checks=False)
    del sim
    z = linkage(condensed.astype(np.float64), method="average")
    return np.asarray(fcluster(z, t=1.0 - threshold, criterion="distance"), dtype=np.int64) - 1


def _cluster_cell_task(args: tuple[np.ndarray, sparse.csr_matrix, sparse.csr_matrix, float]) -> np.ndarray:
    return _cluster_cell(*args)


def _cells(x: np.ndarray, params: Params) -> np.ndarray:
    """Blocking: cell id per row, every cell at most ``cell_max`` rows (MiniBatchKMeans, split again if needed)."""
    n = x.shape[0]
    cells = np.zeros(n, dtype=np.int64)
    if n <= params.cell_max:
        return cells
    from sklearn.cluster import MiniBatchKMeans

    pending = [np.arange(n)]
    next_id = 0
    while pending:
        rows = pending.pop()
        if len(rows) <= params.cell_max:
            cells[rows] = next_id
            next_id += 1
            continue
        k = max(2, math.ceil(len(rows) / (params.cell_max / 2)))
        km = MiniBatchKMeans(
            n_clusters=k, batch_size=4096, n_init=1, max_iter=20, random_state=params.seed, max_no_improvement=5
        )
        sample = rows if len(rows) <= 200_000 else np.random.default_rng(params.seed).choice(rows, 200_000, False)
        km.fit(x[sample])
        del sample
        labels = _nearest(x, km.cluster_centers_.astype(np.float32), rows)
        if np.bincount(labels).max() == len(rows):  # k-means could not split: cut arbitrarily
            labels = np.arange(len(rows)) % k
        for c in range(k):
            part = rows[labels == c]
            if len(part):
                pending.append(part)
    return cells


def _nearest(x: np.ndarray, centers: np.ndarray, rows: np.ndarray | None = None, chunk: int = 20_000) -> np.ndarray:
    """Nearest centre of ``x[rows]`` (all rows when None), reading ``chunk`` rows at a time (no full copy)."""
    n = x.shape[0] if rows is None else len(rows)
    out = np.empty(n, dtype=np.int64)
    for s in range(0, n, chunk):
        block = x[s : s + chunk] if rows is None else x[rows[s : s + chunk]]
        out[s : s + chunk] = np.argmax(block @ centers.T, axis=1)
    return out


def cluster(
    x: np.ndarray,
    named: sparse.csr_matrix,
    district: sparse.csr_matrix,
    params: Params,
    *,
    workers: int | None = None,
    run: Mapper | None = None,
) -> np.ndarray:
    """Cluster label per row (−1: not in any cluster of ``min_size`` or more); cells go to the mapper ``run``
    when given (:func:`_workers`), else to ``workers`` processes started here."""
    n = x.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    cells = _cells(x, params)
    next_label = 0
    order = np.argsort(cells, kind="stable")
    bounds = np.flatnonzero(np.diff(cells[order])) + 1
    parts = np.split(order, bounds)
    del order
    if workers is None:
        workers = params.workers if n >= params.parallel_min else 1
    tasks = ((x[rows], named[rows], district[rows], params.threshold) for rows in parts)
    # Cells are independent; each worker gets only its own cell's rows.
    with _workers(1 if run is not None or len(parts) <= 4 else workers) as own:
        mapper = run if run is not None and len(parts) > 4 else own
        for rows, local in zip(parts, mapper(_cluster_cell_task, _cluster_cell_task, tasks, ahead=8), strict=True):
            counts = np.bincount(local)
            keep = counts[local] >= 2
            _, compact = np.unique(local[keep], return_inverse=True)
            labels[rows[keep]] = compact + next_label
            next_label += int(compact.max()) + 1 if len(compact) else 0
    if cells.max() > 0:
        labels = _merge_pass(x, named, labels, params)
    counts = np.bincount(labels[labels >= 0], minlength=max(next_label, 1))
    labels[(labels >= 0) & (counts[np.maximum(labels, 0)] < params.min_size)] = -1
    return labels


def _merge_pass(x: np.ndarray, named: sparse.csr_matrix, labels: np.ndarray, params: Params) -> np.ndarray:
    """Merge clusters from different cells whose centroids are near-equal and whose places do not conflict."""
    ids = np.unique(labels[labels >= 0])
    if len(ids) < 2:
        return labels
    member = sparse.csr_matrix(
        (np.ones(int((labels >= 0).sum()), dtype=np.float32), (labels[labels >= 0], np.flatnonzero(labels >= 0))),
        shape=(int(ids.max()) + 1, x.shape[0]),
    )
    sums = np.asarray(member @ x, dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    cents = sums / norms
    cplaces = (member @ named).tocsr()
    cplaces.data[:] = 1.0
    parent = np.arange(cents.shape[0])

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    empty = sparse.csr_matrix((len(ids), 1), dtype=np.float32)
    for s in range(0, len(ids), 2000):
        block = ids[s : s + 2000]
        sim = cents[block] @ cents[ids].T
        sim += place_adjustment(cplaces[block], empty[: len(block)], cplaces[ids], empty)
        rows, cols = np.nonzero(sim >= params.merge_threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = find(int(block[r])), find(int(ids[c]))
            if a != b:
                parent[a] = b
    roots = np.array([find(i) for i in range(len(parent))])
    out = labels.copy()
    out[labels >= 0] = roots[labels[labels >= 0]]
    return out


# ------------------------------------------------------------------------------------------ the model


Source = Sequence[OrderRecord] | Callable[[], Iterable[OrderRecord]]


class StaleModelState(TypeError):
    """A stored model written by an older version of this module: it has to be fitted again."""


class TopicModel:
    """Fitted vectoriser + topics + the pool of unassigned recent orders; everything an update needs."""

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.embedder = Embedder(self.params)
        self.places = PlaceIndex()
        self.groups = Interner()
        self.topics: dict[int, Topic] = {}
        self.next_id = 1
        self.terms: list[str] = []  # vocabulary, for key phrases
        self.reference: datetime | None = None
        self.orders_seen = 0
        self.seen = SeenOrders()  # every order read, so that none is counted twice
        # Unassigned orders kept for seeding new topics later.
        self.pool = Batch.empty(self.params.dims)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "pool" not in state or "groups" not in state:
            raise StaleModelState("the stored hot-topic model predates the columnar pool: fit it again")
        self.__dict__.update(state)
        if "seen" not in state:
            # Stored before the model kept what it read: what it holds (orders dropped from the pool are not known).
            self.seen = SeenOrders(self._held_keys())

    def _held_keys(self) -> np.ndarray:
        ids = [oid for t in self.topics.values() for oid in t.order_ids] + list(self.pool.ids)
        return np.fromiter((stable_key(oid) for oid in ids), dtype=np.int64, count=len(ids))

    # -------------------------------------------------------------- fit / update

    def fit(self, records: Source | Iterable[OrderRecord], *, now: datetime | None = None) -> list[Topic]:
        """Mine topics from scratch; topic ids are numbered by first appearance.

        ``records`` is a sequence, or a source: a callable returning a fresh iterator over the same orders,
        read twice (count and sample, then encode) so that no more than a few chunks of records are held. Any
        other iterable is read into a list first.
        """
        if not isinstance(records, Sequence) and not callable(records):
            records = list(records)
        sample, n = self._sample(records)
        workers = self.params.workers if n >= self.params.parallel_min else 1
        if workers > 1:
            # Tokens of the sample and the TF-IDF fit live in a child: the parent never holds them.
            with _context().Pool(1) as pool:
                self.embedder = pool.apply(_fit_embedder, (self.params, sample))
        else:
            self.embedder = _fit_embedder(self.params, sample)
        del sample
        self.terms = self.embedder.vocabulary
        self.topics, self.next_id = {}, 1
        self.places, self.groups, self.seen = PlaceIndex(), Interner(), SeenOrders()
        # One pool for encoding and clustering, forked now while this process holds no orders yet.
        with _workers(workers, self.embedder) as run:
            batch, _ = self._encode(records() if callable(records) else records, n, run)
            named, district = self.places.matrices(batch.places)
            labels = cluster(batch.x, named, district, self.params, run=run)
        del named, district
        self._build_topics(batch, labels)
        unassigned = np.flatnonzero(labels < 0)
        if len(unassigned) > self.params.pool_max:
            # Only the latest unassigned orders can still seed a topic: copy just those.
            latest = np.argsort(batch.ts[unassigned], kind="stable")[-self.params.pool_max :]
            unassigned = np.sort(unassigned[latest])
        self.pool = batch.take(unassigned)
        self.orders_seen = len(batch)
        del batch
        self.refresh(now=now)
        return self.ranked()

    def update(self, records: Sequence[OrderRecord], *, now: datetime | None = None) -> dict[str, int]:
        """Add new orders: join existing topics (ids kept) or seed new topics with the pool of unassigned ones.

        An order whose id the model has read before is not counted again (``repeated`` in the summary), even if
        its text changed since: the model keeps each topic's sums (centroid, term counts), not each order's
        vector, so it cannot take an order's earlier text out of its topic — a fit (``--rebuild``) reads the
        current texts."""
        if self.embedder.svd is None:
            raise RuntimeError("the topic model is not fitted")
        workers = self.params.workers if len(records) >= self.params.parallel_min else 1
        with _workers(workers, self.embedder) as run:
            batch, repeated = self._encode(records, len(records), run)
        if not len(batch):
            self.refresh(now=now)
            return {"orders": 0, "repeated": repeated, "joined": 0, "new_topics": 0}
        named, district = self.places.matrices(batch.places)
        joined = np.full(len(batch), -1, dtype=np.int64)
        topic_ids = list(self.topics)
        if topic_ids:
            cents = np.stack([self.topics[t].centroid() for t in topic_ids]).astype(np.float32)
            t_named, t_district = self.places.matrices([self._topic_places(self.topics[t]) for t in topic_ids])
            for s in range(0, len(batch), 2000):
                sim = batch.x[s : s + 2000] @ cents.T
                sim += place_adjustment(named[s : s + 2000], district[s : s + 2000], t_named, t_district)
                best = np.argmax(sim, axis=1)
                ok = sim[np.arange(len(best)), best] >= self.params.threshold
                joined[s : s + 2000][ok] = np.asarray(topic_ids)[best[ok]]
        hit = np.flatnonzero(joined >= 0)
        order = hit[np.argsort(joined[hit], kind="stable")]
        for rows in np.split(order, np.flatnonzero(np.diff(joined[order])) + 1) if len(order) else []:
            self._join(self.topics[int(joined[rows[0]])], batch, rows)
        # New topics from the rest, clustered together with the pool of earlier unassigned orders.
        rest = np.flatnonzero(joined < 0)
        new_topics = 0
        if len(rest):
            pool_n = len(self.pool)
            both = Batch.concat(self.pool, batch.take(rest))
            p_named, p_district = self.places.matrices(both.places)
            labels = cluster(both.x, p_named, p_district, self.params, workers=workers)
            is_new = np.arange(len(both)) >= pool_n
            fresh = np.zeros(int(labels.max()) + 2, dtype=bool)
            fresh[labels[is_new] + 1] = True
            # A pool-only cluster would have formed before: leave its orders in the pool.
            labels[~fresh[labels + 1]] = -1
            before = len(self.topics)
            self._build_topics(both, labels)
            new_topics = len(self.topics) - before
            left = np.flatnonzero(labels < 0)
            if len(left) > self.params.pool_max:
                # Oldest first out: the pool exists to catch problems that are starting now.
                left = np.sort(left[np.argsort(both.ts[left], kind="stable")[-self.params.pool_max :]])
            self.pool = both.take(left)
        self.orders_seen += len(batch)
        self.refresh(now=now)
        return {"orders": len(batch), "repeated": repeated, "joined": len(hit), "new_topics": new_topics}

    # -------------------------------------------------------------- internals

    def _sample(self, records: Source) -> tuple[list[Item], int]:
        """The vectoriser's sample (title, content start, known places) and the number of orders."""
        k, seed = self.params.fit_sample, self.params.seed
        if isinstance(records, Sequence):
            return [_item(records[i]) for i in _sample_idx(len(records), k, seed)], len(records)
        # One pass of reservoir sampling over the source: a uniform sample without holding the orders.
        rng = random.Random(seed)
        sample: list[Item] = []
        n = 0
        for n, r in enumerate(records(), start=1):
            if n <= k:
                sample.append(_item(r))
            else:
                j = rng.randrange(n)
                if j < k:
                    sample[j] = _item(r)
        return sample, n

    def _encode(self, records: Iterable[OrderRecord], expected: int, run: Mapper) -> tuple[Batch, int]:
        """Columns and SVD vectors of the orders of ``records`` not read before, read chunk by chunk (records are
        not kept), and how many were left out as read before; the model now counts the others as read."""
        builder = _BatchBuilder(self.embedder.svd.n_components, expected, self.seen)
        tasks = (items for items in map(builder.items, _chunks(records, self.params.chunk)) if items)
        for enc in run(partial(_encode_items, self.embedder), _encode_task, tasks):
            builder.add(enc, self.places, self.groups)
        self.seen.add(builder.fresh.keys)
        return builder.build(), builder.repeated

    def _build_topics(self, batch: Batch, labels: np.ndarray) -> None:
        member = np.flatnonzero(labels >= 0)
        if not len(member):
            return
        order = member[np.argsort(labels[member], kind="stable")]
        groups = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
        # Ids by first appearance (then size) so that a re-run over the same data numbers topics the same way.
        groups.sort(key=lambda rows: (float(batch.ts[rows].min()), -len(rows)))
        for rows in groups:
            topic = Topic(
                id=self.next_id,
                centroid_sum=np.zeros(batch.x.shape[1], dtype=np.float64),
                order_ids=[],
                words=TermCounts(),
                places=Counter(),
                groups=Counter(),
                times=[],
                citizens=set(),
            )
            self.next_id += 1
            self._join(topic, batch, rows)
            self.topics[topic.id] = topic

    def _join(self, topic: Topic, batch: Batch, rows: np.ndarray) -> None:
        """Add the orders ``rows`` of ``batch`` (ascending) to ``topic``, as if one after the other."""
        pick = rows.tolist()
        # The representative title is the member closest to the centroid at the time it joined.
        best, best_row = -math.inf, -1
        running = topic.centroid_sum.copy()
        for s in range(0, len(rows), 4096):
            xs = batch.x[rows[s : s + 4096]].astype(np.float64)
            sums = running + np.cumsum(xs, axis=0)
            running = sums[-1].copy()
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            sims = np.einsum("ij,ij->i", xs, sums / norms)
            j = int(np.argmax(sims))
            if sims[j] > best:
                best, best_row = float(sims[j]), pick[s + j]
        topic.centroid_sum = running
        if best > topic.best_sim or not topic.representative:
            topic.best_sim = best
            topic.representative = batch.titles[best_row]
        topic.order_ids.extend(batch.ids[i] for i in pick)
        if isinstance(topic.words, TermCounts):
            topic.words.add(batch.terms.gather(rows))
        else:
            topic.words.update(batch.terms.gather(rows).tolist())
        topic.places.update(self.places.counter(batch.places.gather(rows), skip=lambda p: p.endswith("市")))
        fold_place_variants(topic.places)
        topic.groups.update(self.groups.counter(batch.groups.gather(rows)))
        topic.times.extend(c for c in (batch.created[i] for i in pick) if c is not None)
        keys = batch.citizens[rows]
        topic.citizens.update(keys[keys != 0].tolist())
        topic.likes += int(batch.likes[rows].sum())
        topic.opposes += int(batch.opposes[rows].sum())

    def _topic_places(self, topic: Topic) -> list[str]:
        # A place counts for a topic when a fair share of its orders name it.
        floor = max(1, topic.size // 4)
        return [p for p, c in topic.top_places(8) if c >= floor]

    # -------------------------------------------------------------- labels and heat

    def refresh(self, *, now: datetime | None = None) -> None:
        """Recompute key phrases, labels and heat of every topic (cheap: counters only)."""
        latest: datetime | None = None
        for topic in self.topics.values():
            if topic.times:
                last = max(topic.times)
                latest = last if latest is None or last > latest else latest
        for created in self.pool.created:
            if created is not None and (latest is None or created > latest):
                latest = created
        self.reference = now or latest or self.reference
        idf = self.embedder.vectorizer.idf_ if self.embedder.vectorizer is not None else None
        for topic in self.topics.values():
            topic.key_phrases = self._key_phrases(topic, idf)
            place = next(iter(self._topic_places(topic)), "")
            phrases = "、".join(p for p in topic.key_phrases[:3] if p not in place)
            topic.label = f"{place} {phrases}".strip() if place else phrases
            topic.heat, topic.status, topic.n_last, topic.n_prev = heat(topic, self.reference, self.params)

    def _key_phrases(self, topic: Topic, idf: np.ndarray | None, k: int = 6) -> list[str]:
        """Words over-represented in the topic: share of members × corpus idf (character bigrams and places out)."""
        if idf is None:
            return []
        scored = []
        for term_id, c in topic.words.items():
            if c < 2 and topic.size > 2:
                continue
            w = self.terms[term_id]
            if w[0] in "#@":
                continue
            scored.append((c / topic.size * float(idf[term_id]) * (1 + 0.1 * min(len(w), 4)), w))
        scored.sort(reverse=True)
        out: list[str] = []
        for _, w in scored:
            if any(w in o or o in w for o in out):
                continue
            out.append(w)
            if len(out) == k:
                break
        return out

    def ranked(self, top: int | None = None) -> list[Topic]:
        topics = sorted(self.topics.values(), key=lambda t: (-t.heat, -t.size, t.id))
        return topics[:top] if top else topics


def heat(topic: Topic, reference: datetime | None, params: Params) -> tuple[float, str, int, int]:
    """(heat, status, orders in the last window, orders in the window before) — see :data:`HEAT_FORMULA`."""
    n = topic.size
    citizens = len(topic.citizens) or n
    repeats = max(n - citizens, 0)
    own = topic.representative
    named = [p for p in topic.places if not ADMIN_CODE_RE.fullmatch(p) and not names_the_problem(p, own)]
    n_last = n_prev = 0
    recency = 1.0
    status = "active"
    if reference is not None and topic.times:
        window = timedelta(days=params.window_days)
        n_last = sum(1 for t in topic.times if reference - window < t <= reference)
        n_prev = sum(1 for t in topic.times if reference - 2 * window < t <= reference - window)
        age = max((reference - max(topic.times)).total_seconds() / 86400.0, 0.0)
        recency = 0.5 ** (age / params.half_life_days)
        if min(topic.times) > reference - window:
            status = "new"
        elif n_last >= 3 and n_last >= 2 * (n_prev + 1) - 1 and n_last > n_prev:
            status = "rising"
        elif n_last == 0:
            status = "dormant"
    growth = min(max(math.log((1 + n_last) / (1 + n_prev)), -1.0), 2.0)
    score = (
        1.0 * math.log1p(citizens)
        + 0.3 * math.log1p(repeats)
        + 0.6 * math.log1p(topic.likes + topic.opposes)
        + 0.3 * math.log1p(len(named))
        + 0.5 * growth
    ) * (0.5 + 0.5 * recency)
    return score, status, n_last, n_prev


# A topic's heat in words (热度很高 …): its rank among every stored topic's heat (1: the hottest), as the share of
# the topics at or above it — within the first 10 % very high, 30 % high, 60 % medium, low beyond. The heat has no
# scale of its own (only its order means anything), so the words say where it stands among the others.
HEAT_LEVELS = (("very_high", 0.1), ("high", 0.3), ("medium", 0.6), ("low", 1.0))


def heat_level(rank: int, of: int) -> str:
    """The level (:data:`HEAT_LEVELS`) of the ``rank``-th hottest of ``of`` topics: 3rd of 459 → ``very_high``; the
    hottest is very high however few the topics are (its level's share of them rounded up)."""
    return next((level for level, bound in HEAT_LEVELS if rank <= math.ceil(bound * of)), HEAT_LEVELS[-1][0])


def heat_formula(params: Params | None = None) -> str:
    p = params or Params()
    return HEAT_FORMULA.format(window=p.window_days, half_life=p.half_life_days)


# ------------------------------------------------------------------------------------------ helpers


def _item(r: OrderRecord) -> Item:
    return (r.title, r.content[:TEXT_CHARS], r.places)


def _sample_idx(n: int, k: int, seed: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())


_EPOCH = datetime(1970, 1, 1).timestamp()


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else _EPOCH


def local_date(moment: datetime | str | None) -> str:
    """The district's calendar day (``2026-12-02``) of a topic's first or last order: a time with a zone (the
    database's UTC) in the district's zone, one without (a file's local time) as it is; "" for none."""
    if moment is None or moment == "":
        return ""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is not None:
        value = value.astimezone(get_settings().tz)
    return value.date().isoformat()


def top_table(topics: Iterable[Topic], k: int = 5) -> list[dict[str, Any]]:
    """The competition's table: rank, topic id, heat index, time span, place/population, description."""
    rows = []
    for rank, t in enumerate(list(topics)[:k], start=1):
        start = local_date(min(t.times)) if t.times else ""
        end = local_date(max(t.times)) if t.times else ""
        places = [p for p, _ in t.top_places(3)]
        groups = [g for g, _ in t.groups.most_common(2)]
        rows.append(
            {
                "rank": rank,
                "topic_id": t.id,
                "heat": round(t.heat, 2),
                "time_span": f"{start} 至 {end}",
                "place_population": "、".join([*places, *groups]),
                "description": t.representative,
                "size": t.size,
            }
        )
    return rows


def topics_for_period(
    session: Any, start: datetime, end: datetime, k: int = 10, where: Any = None
) -> list[dict[str, Any]]:
    """The persisted topics with orders created in ``[start, end)``, busiest in the period first (then by heat).

    See :func:`cityhub.analytics.topics_store.topics_for_period` for the fields; ``cityhub analytics
    hot-topics`` (without ``--input``) mines and stores the topics this reads.
    """
    from cityhub.analytics.topics_store import topics_for_period as query

    return query(session, start=start, end=end, k=k, where=where)


# ------------------------------------------------------------------------------------------ input


def read_orders_file(path: Any, *, limit: int | None = None) -> list[OrderRecord]:
    """Orders of a CSV/Excel file with the import's header mapping (留言编号/留言主题/留言详情/留言时间 …).

    Rows without an id column get their row number as id; unparseable times and counts are left empty.
    """
    out: list[OrderRecord] = []
    for record in iter_orders_file(path):
        out.append(record)
        if limit is not None and len(out) >= limit:
            break
    return out


def iter_orders_file(path: Any) -> Iterator[OrderRecord]:
    """The records of :func:`read_orders_file`, one at a time (``lambda: iter_orders_file(p)`` is a source)."""
    from pathlib import Path

    from cityhub.intake.importer import ColumnMap, RowError, open_table, parse_datetime

    with open_table(Path(path)) as table:
        cols = ColumnMap.from_header(table.header)
        f = cols.fields

        def cell(cells: list[Any], name: str) -> str:
            i = f.get(name)
            if i is None or i >= len(cells) or cells[i] is None:
                return ""
            v = cells[i]
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v).strip()

        for number, cells in table.rows():
            title, content = cell(cells, "title"), cell(cells, "content")
            if not title and not content:
                continue
            try:
                created = parse_datetime(cells[f["created_at"]]) if "created_at" in f else None
            except (RowError, IndexError):
                created = None
            yield OrderRecord(
                id=cell(cells, "external_id") or str(number - 1),
                title=title or title_from_content(content),
                content=content,
                created_at=created,
                likes=_int(cell(cells, "likes")),
                opposes=_int(cell(cells, "opposes")),
                citizen=cell(cells, "citizen_name") or None,
            )


def _int(text: str) -> int:
    try:
        return max(int(float(text)), 0) if text else 0
    except ValueError:
        return 0
