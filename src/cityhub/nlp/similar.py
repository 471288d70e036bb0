"""Text similarity of Chinese appeals, and a MinHash-LSH index over recent orders for candidate retrieval.

Two stages, because a district's history is millions of orders and an intake must not scan them:

1. **Candidates** come from an in-process MinHash LSH index over character 2- and 3-gram shingles of the
   order text (title + content, letters and digits only). One 64-value signature per order feeds two banding
   schemes: ``dup`` (16 bands × 4 rows, catches pairs with shingle Jaccard ≳ 0.5 with high probability) and
   ``sim`` (16 bands × 2 rows over the first 32 values, Jaccard ≳ 0.25) for the wider "similar past cases" list.
   Each scheme is one sorted ``uint32`` key array plus a slot array (8 bytes per band entry), so lookup is a
   binary search per band; new orders go to an in-memory delta (a dict from band key to slots) that is merged
   into the sorted arrays when it grows (an LSM tree in miniature). A bucket larger than ``bucket_cap``
   (boilerplate texts) only yields its most recent members.
2. **Precise score** on the candidates worth it — those whose Jaccard, estimated from the stored MinHash
   signatures, is high enough or among the best (see ``intake.dedupe``); all at once (:func:`similarities`): cosine
   of (1 + log tf) · idf weighted shingle vectors, with document frequencies kept by the index (hashed into 2^20
   buckets), and the Jaccard coefficient of the shingle sets. Neither needs a trained model or a vocabulary, so the
   score does not drift between releases. The candidates' texts are read from the table at each intake, but their
   shingle keys, counts and document-frequency buckets (:class:`Features`) come from a per-process
   :class:`FeatureCache` keyed by the text itself (so an edited order's new text simply misses), bounded to
   ``FEATURE_CACHE_BYTES`` (64 MB), least recently used dropped: the same candidates recur from intake to intake.

:class:`OrderIndex` keeps one :class:`ShingleIndex` in step with the ``orders`` table of one database: built lazily
from the orders of the last ``index_days`` days, then topped up with orders whose id is above the highest id seen
(plus recently seen id gaps, which a concurrent transaction may still fill) by a background thread started when a
query finds its last read older than ``refresh_seconds`` (the query does not wait for it); orders this process
commits enter it at commit, without a read. It is a cache: every
process builds its own, and nothing it holds is needed to re-derive a result. Limits: memory is about 340 bytes per
indexed order (≈ 85 MB for 250 000 orders; 256 of them the order's MinHash signature) plus the text loading time at
first use (measured in ``bench/bench_duplicates.py``); document frequencies are never decremented when old orders
age out; an order whose text is edited after indexing keeps its old signature until the process restarts (its
exact score always uses its current text).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from sqlalchemy import Connection, Engine, Select, event, func, select
from sqlalchemy.orm import Session

from cityhub.db import database_key, utcnow
from cityhub.nlp.text import fingerprint_text as _fingerprint
from cityhub.nlp.text import order_text

log = logging.getLogger(__name__)


U64 = np.uint64
_MASK32 = U64(0xFFFFFFFF)
NUM_PERM = 64
DUP_SCHEME = "dup"
SIM_SCHEME = "sim"
# scheme name → (number of signature values used, rows per band)
SCHEMES: dict[str, tuple[int, int]] = {DUP_SCHEME: (64, 4), SIM_SCHEME: (32, 2)}
DF_BUCKETS = 1 << 20

_rng = np.random.default_rng(20200101)  # fixed: signatures must agree between processes and releases
_PERM_A = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | U64(1)
_PERM_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
_ROW_MIX = _rng.integers(1, 2**63, size=8, dtype=np.uint64) | U64(1)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is intended)."""
    x = x.astype(U64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> U64(30)
        x *= U64(0xBF58476D1CE4E5B9)
        x ^= x >> U64(27)
        x *= U64(0x94D049BB133111EB)
        x ^= x >> U64(31)
    return x


def normalize(text: str) -> str:
    """The form compared: NFKC, lower case, letters and digits only (spacing and punctuation ignored)."""
    return _fingerprint(text)


# How long (normalised characters) a text may be for :func:`says_otherwise` to read its differences: a short
# report's place can be most of its words.
SHORT_TEXT_CHARS = 100


def says_otherwise(a: str, b: str) -> bool:
    """Whether two short texts, however alike their scores, say something different in place of each other's words.

    A short report is mostly its place: 白云区京溪街道京溪路与广州大道北交界处东北角人行道积水 and the same place then
    占道经营 score 0.85, and the problem is the two words that differ. Aligned character by character (difflib),
    they differ in substance when one replaces a run of two characters or more with another sharing no pair of
    characters with it (积水 → 占道经营), or a number with another (12号 → 14号: another house, building, route or
    day). Words added or dropped (…垃圾 → …垃圾未清理) and a single character changed (啊 → 呀, 餐馆 → 饭馆) are the
    same report told again. Texts longer than :data:`SHORT_TEXT_CHARS` (normalised) are never judged: the shared
    place weighs little in their score, and a re-posted letter's new salutation or title is no other problem
    (measured in ``bench/bench_duplicates.py``).
    """
    a, b = normalize(a), normalize(b)
    if a == b or min(len(a), len(b)) > SHORT_TEXT_CHARS:
        return False
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "replace":
            continue
        x, y = a[i1:i2], b[j1:j2]
        if any(c.isdigit() for c in x) and any(c.isdigit() for c in y):
            return True
        if len(x) >= 2 and len(y) >= 2 and not _pairs(x) & _pairs(y):
            return True
    return False


def _pairs(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def shingle_keys(text: str) -> np.ndarray:
    """Exact keys of the character 2- and 3-grams of a normalised text (uint64, with repeats).

    Code points fit in 21 bits, so a 2-gram packs into 42 bits and a 3-gram into 63 without collisions; a
    3-gram key is always ≥ 2^42 and so never equals a 2-gram key.
    """
    if len(text) < 2:
        return np.empty(0, dtype=U64)
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(U64)
    grams2 = (cp[:-1] << U64(21)) | cp[1:]
    if len(cp) < 3:
        return grams2
    grams3 = (cp[:-2] << U64(42)) | (cp[1:-1] << U64(21)) | cp[2:] | (U64(1) << U64(63))
    return np.concatenate([grams2, grams3])


@dataclass(frozen=True, slots=True)
class Profile:
    """A text reduced to what similarity needs: its distinct shingle keys (sorted) and their counts."""

    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, text: str, *, normalised: bool = False) -> Profile:
        keys, counts = np.unique(shingle_keys(text if normalised else normalize(text)), return_counts=True)
        return cls(keys=keys, counts=counts.astype(np.float64))

    def __len__(self) -> int:
        return len(self.keys)


def df_buckets(keys: np.ndarray) -> np.ndarray:
    return (_mix(keys) % U64(DF_BUCKETS)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Similarity:
    cosine: float  # tf-idf cosine of the shingle vectors
    jaccard: float  # |A ∩ B| / |A ∪ B| of the shingle sets
    containment: float  # |A ∩ B| / min(|A|, |B|): a re-post that adds or drops a sentence stays high

    @property
    def score(self) -> float:
        """One number in [0, 1]: the mean of cosine and Jaccard (both must be high for a duplicate)."""
        return (self.cosine + self.jaccard) / 2


class IdfTable:
    """Document frequencies of hashed shingles; ``idf`` follows scikit-learn's smoothed formula."""

    def __init__(self) -> None:
        self.df = np.zeros(DF_BUCKETS, dtype=np.int32)
        self.n_docs = 0

    def add_many(self, sets: Sequence[np.ndarray]) -> None:
        """Count each (distinct) shingle set once.

        A few texts (an intake) touch a few hundred buckets: adding their counts in place costs that many steps, where
        a ``bincount`` would walk all 2^20 buckets; a large batch (a build) is one ``bincount``. (``np.add.at`` does
        the small case too, three times slower.)
        """
        if not sets:
            return
        buckets = df_buckets(np.concatenate(sets))
        if len(buckets) * 16 < DF_BUCKETS:
            touched, counts = np.unique(buckets, return_counts=True)
            self.df[touched] += counts.astype(np.int32)
        else:
            self.df += np.bincount(buckets, minlength=DF_BUCKETS).astype(np.int32)
        self.n_docs += len(sets)

    def idf(self, keys: np.ndarray) -> np.ndarray:
        return self.idf_of_buckets(df_buckets(keys))

    def idf_of_buckets(self, buckets: np.ndarray) -> np.ndarray:
        """:meth:`idf` of keys whose :func:`df_buckets` are known already."""
        df = self.df[buckets].astype(np.float64)
        return np.log((1.0 + self.n_docs) / (1.0 + df)) + 1.0


def similarity(a: Profile, b: Profile, *, idf: IdfTable | None = None) -> Similarity:
    """Cosine (tf-idf), Jaccard and containment of two profiles; all 0 when either text is empty."""
    if not len(a) or not len(b):
        return Similarity(0.0, 0.0, 0.0)
    _, ia, ib = np.intersect1d(a.keys, b.keys, assume_unique=True, return_indices=True)
    inter = len(ia)
    jaccard = inter / (len(a) + len(b) - inter)
    containment = inter / min(len(a), len(b))
    wa = 1.0 + np.log(a.counts)
    wb = 1.0 + np.log(b.counts)
    if idf is not None and idf.n_docs:
        wa = wa * idf.idf(a.keys)
        wb = wb * idf.idf(b.keys)
    dot = float(np.dot(wa[ia], wb[ib]))
    cosine = dot / math.sqrt(float(np.dot(wa, wa)) * float(np.dot(wb, wb)))
    return Similarity(cosine=min(cosine, 1.0), jaccard=jaccard, containment=containment)


def similarities(query: Profile, texts: Sequence[str], *, idf: IdfTable | None = None) -> list[Similarity]:
    """:func:`similarity` of ``query`` with each of many texts, in a few array operations instead of one call each.

    The texts are normalised, joined by a separator that normalised text never contains, and shingled at once;
    shingles spanning a separator are dropped, so each text gets exactly the shingles :func:`shingle_keys` gives
    it. Scoring a few hundred candidates at intake then costs about what scoring a handful did one by one.
    """
    n = len(texts)
    if not n:
        return []
    if not len(query):
        return [Similarity(0.0, 0.0, 0.0)] * n
    cp = np.frombuffer("\0".join(normalize(t) for t in texts).encode("utf-32-le"), dtype=np.uint32).astype(U64)
    sep = cp == 0
    pos_doc = np.cumsum(sep)
    keep2 = ~(sep[:-1] | sep[1:])
    keep3 = ~(sep[:-2] | sep[1:-1] | sep[2:])
    grams2 = ((cp[:-1] << U64(21)) | cp[1:])[keep2]
    grams3 = ((cp[:-2] << U64(42)) | (cp[1:-1] << U64(21)) | cp[2:] | (U64(1) << U64(63)))[keep3]
    keys = np.concatenate([grams2, grams3])
    docs = np.concatenate([pos_doc[:-1][keep2], pos_doc[:-2][keep3]])
    order = np.lexsort((keys, docs))
    keys, docs = keys[order], docs[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(keys))).astype(np.float64)
    keys, docs = keys[starts], docs[starts]

    weights = 1.0 + np.log(counts)
    query_weights = 1.0 + np.log(query.counts)
    if idf is not None and idf.n_docs:
        weights = weights * idf.idf(keys)
        query_weights = query_weights * idf.idf(query.keys)
    return _scored(query, query_weights, keys, docs, weights, n)


def _narrow(counts: np.ndarray) -> np.ndarray:
    """Shingle counts in 16 bits (a copy), or 32 for a text with a shingle repeated 65 536 times or more."""
    return counts.astype(np.uint16 if not len(counts) or counts.max() < 65536 else np.int32)


class Features(NamedTuple):
    """What :func:`similarities_of` needs of one text, derived once: its distinct shingle keys (sorted, as
    :meth:`Profile.of` gives them), their counts and their document-frequency buckets (:func:`df_buckets`)."""

    keys: np.ndarray  # uint64
    counts: np.ndarray  # uint16 (int32 for a text with a shingle repeated 65 536 times or more)
    buckets: np.ndarray  # int32 (< DF_BUCKETS)

    @classmethod
    def of(cls, text: str) -> Features:
        return cls.of_profile(Profile.of(text))

    @classmethod
    def of_profile(cls, profile: Profile) -> Features:
        return cls(profile.keys, _narrow(profile.counts), df_buckets(profile.keys).astype(np.int32))

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.counts.nbytes + self.buckets.nbytes)


def similarities_of(query: Profile, features: Sequence[Features], *, idf: IdfTable | None = None) -> list[Similarity]:
    """:func:`similarities` of texts whose :class:`Features` are known (exactly the same numbers: the same arrays,
    in the same order, go through the same operations); no text is normalised or shingled here."""
    n = len(features)
    if not n:
        return []
    if not len(query):
        return [Similarity(0.0, 0.0, 0.0)] * n
    keys = np.concatenate([f.keys for f in features])
    docs = np.repeat(np.arange(n, dtype=np.int64), [len(f.keys) for f in features])
    counts = np.concatenate([f.counts for f in features]).astype(np.float64)
    weights = 1.0 + np.log(counts)
    query_weights = 1.0 + np.log(query.counts)
    if idf is not None and idf.n_docs:
        weights = weights * idf.idf_of_buckets(np.concatenate([f.buckets for f in features]))
        query_weights = query_weights * idf.idf(query.keys)
    return _scored(query, query_weights, keys, docs, weights, n)


def _scored(
    query: Profile, query_weights: np.ndarray, keys: np.ndarray, docs: np.ndarray, weights: np.ndarray, n: int
) -> list[Similarity]:
    """The similarities of ``n`` documents given as (key, document, weight) rows, sorted by document then key."""
    at = np.minimum(np.searchsorted(query.keys, keys), len(query.keys) - 1)
    shared = query.keys[at] == keys
    size = np.bincount(docs, minlength=n)
    inter = np.bincount(docs[shared], minlength=n)
    dot = np.bincount(docs[shared], weights=weights[shared] * query_weights[at[shared]], minlength=n)
    norm = np.bincount(docs, weights=weights * weights, minlength=n) * float(np.dot(query_weights, query_weights))
    out: list[Similarity] = []
    q = len(query)
    for size_i, inter_i, dot_i, norm_i in zip(size.tolist(), inter.tolist(), dot.tolist(), norm.tolist(), strict=True):
        if not size_i:
            out.append(Similarity(0.0, 0.0, 0.0))
            continue
        out.append(
            Similarity(
                cosine=min(dot_i / math.sqrt(norm_i), 1.0),
                jaccard=inter_i / (q + size_i - inter_i),
                containment=inter_i / min(q, size_i),
            )
        )
    return out


class FeatureCache:
    """:class:`Features` of recently scored texts, keyed by the text itself, least recently used dropped beyond
    ``max_bytes``.

    Intake scores the same candidates again and again (the recent orders of a street, the copies of a complaint):
    their texts are read from the table as before, but normalised and shingled only once. Keyed by the text, not
    the order id, an edited order's new text simply misses and copies of one text share an entry. Thread-safe.
    """

    ENTRY_OVERHEAD = 400  # bytes per entry beyond the arrays and the text: array and dict bookkeeping

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Features, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, text: str) -> bool:
        return text in self._entries

    def get_many(self, texts: Sequence[str]) -> list[Features]:
        """The features of each text, computed for those not held (outside the lock) and remembered."""
        found: list[Features | None] = []
        with self._lock:
            entries = self._entries
            for text in texts:
                got = entries.get(text)
                if got is not None:
                    entries.move_to_end(text)
                    found.append(got[0])
                else:
                    found.append(None)
            missing = found.count(None)
            self.hits += len(texts) - missing
            self.misses += missing
        if missing:
            computed: dict[str, Features] = {}
            for i, text in enumerate(texts):
                if found[i] is None:
                    features = computed.get(text)
                    if features is None:
                        features = computed[text] = Features.of(text)
                    found[i] = features
            self.put_many(computed.items())
        return found  # type: ignore[return-value]

    def put_many(self, items: Iterable[tuple[str, Features]]) -> None:
        with self._lock:
            entries = self._entries
            for text, features in items:
                if text in entries:
                    entries.move_to_end(text)
                    continue
                size = features.nbytes + sys.getsizeof(text) + self.ENTRY_OVERHEAD
                if size > self.max_bytes:
                    continue
                entries[text] = (features, size)
                self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, (_, size) = entries.popitem(last=False)
                self.nbytes -= size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = self.hits = self.misses = 0


# About 9 KB per text of average length (600 distinct shingles at 14 bytes, plus the text): some 7 000 texts.
FEATURE_CACHE_BYTES = 64 << 20
_FEATURES = FeatureCache(FEATURE_CACHE_BYTES)


def cached_features(texts: Sequence[str]) -> list[Features]:
    """:class:`Features` of each text, from the process's :class:`FeatureCache` (computed and kept on a miss)."""
    return _FEATURES.get_many(texts)


def remember_features(text: str, sketch: Sketch) -> None:
    """Keep the features of a text just sketched (a new appeal: likely a candidate of the next intakes)."""
    if text not in _FEATURES:
        _FEATURES.put_many([(text, Features.of_profile(sketch.profile))])


def signatures(sets: Sequence[np.ndarray]) -> np.ndarray:
    """MinHash signatures (n × NUM_PERM, values < 2^32) of shingle-key sets, by one-permutation hashing.

    Each shingle is hashed once and falls into one of NUM_PERM bins; a bin keeps its minimum. That costs
    O(shingles) instead of O(shingles × NUM_PERM) (Li, Owen & Zhang 2012), which is what makes indexing a
    district's history take seconds. Empty bins borrow the value of the next non-empty bin to the right,
    salted by the distance, so that two similar sets still agree there with probability ≈ Jaccard
    (rotation densification, Shrivastava & Li 2014). An empty set gets an all-ones signature; callers do not
    index empty texts.
    """
    n = len(sets)
    empty = U64(0xFFFFFFFF)
    out = np.full(n * NUM_PERM, empty, dtype=U64)
    lengths = np.array([len(x) for x in sets], dtype=np.int64)
    if lengths.sum():
        keys = np.concatenate([x for x in sets if len(x)])
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        h = _mix(keys)
        bins = (h & U64(NUM_PERM - 1)).astype(np.int64)
        values = (h >> U64(32)) % empty  # < 2^32 - 1, so the all-ones value stays free to mean "empty bin"
        np.minimum.at(out, doc * NUM_PERM + bins, values)
    sig = out.reshape(n, NUM_PERM)
    holes = sig == empty
    if holes.any():
        doubled = np.concatenate([sig, sig], axis=1)
        filled = ~np.concatenate([holes, holes], axis=1)
        # distance from each bin to the next filled bin to its right (circularly)
        idx = np.where(filled, np.arange(2 * NUM_PERM)[None, :], 2 * NUM_PERM)
        nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1][:, :NUM_PERM]
        has_any = ~holes.all(axis=1)
        rows, cols = np.nonzero(holes & has_any[:, None])
        src = nxt[rows, cols]
        dist = (src - cols).astype(U64)
        with np.errstate(over="ignore"):
            sig[rows, cols] = (_mix(doubled[rows, src] + dist * U64(0x9E3779B97F4A7C15)) >> U64(32)) % empty
    return sig


def band_keys(sig: np.ndarray, scheme: str) -> np.ndarray:
    """uint32 bucket keys (n × bands) of signatures under one banding scheme."""
    used, rows = SCHEMES[scheme]
    sig = np.atleast_2d(sig)[:, :used]
    bands = used // rows
    shaped = sig.reshape(len(sig), bands, rows)
    with np.errstate(over="ignore"):
        combined = (shaped * _ROW_MIX[None, None, :rows]).sum(axis=2, dtype=U64)
        combined += np.arange(bands, dtype=U64)[None, :] * U64(0x9E3779B97F4A7C15)
    return (_mix(combined) >> U64(32)).astype(np.uint32)


@dataclass(frozen=True, slots=True)
class Sketch:
    """A query text's distinct shingle keys, their counts and its MinHash signature, computed once for several index
    lookups and the exact scores."""

    profile: Profile  # the distinct keys with their counts, for :func:`similarities`
    signature: np.ndarray  # NUM_PERM values; empty when the text has no shingle
    # Band keys per scheme, computed at first use: the intake's lookups and the index's addition at commit share them.
    bands: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, text: str) -> Sketch:
        profile = Profile.of(text)
        keys = profile.keys
        return cls(profile=profile, signature=signatures([keys])[0] if len(keys) else np.empty(0, dtype=U64))

    @property
    def keys(self) -> np.ndarray:
        """The text's distinct shingle keys (sorted)."""
        return self.profile.keys

    def band_keys(self, scheme: str) -> np.ndarray:
        """:func:`band_keys` of this signature under ``scheme`` (one row)."""
        found = self.bands.get(scheme)
        if found is None:
            found = self.bands[scheme] = band_keys(self.signature[None, :], scheme)[0]
        return found


def _sketch(text: str | Sketch) -> Sketch:
    return text if isinstance(text, Sketch) else Sketch.of(text)


@lru_cache(maxsize=256)
def sketch_of(text: str) -> Sketch:
    """:meth:`Sketch.of`, remembered for the last few texts: an intake sketches the new appeal to search the index,
    and the index adds the same text when the order commits moments later. (Its arrays must not be changed.)"""
    return Sketch.of(text)


# Additions of at least this many band entries (a build's chunks) wait as arrays for the next merge; smaller ones
# (an intake's order, a refresh's few) go to a dict, whose lookup costs the same whatever its size.
_BULK_ENTRIES = 1024


# Additions not merged yet: a dict (key → slots, oldest first) and the arrays of large additions.
_Layer = tuple[dict[int, "array[int]"], list[tuple[np.ndarray, np.ndarray]]]


@dataclass
class _Table:
    """One banding scheme: sorted (key, slot) arrays plus the recent additions not merged yet — a dict (key →
    slots, oldest first) and the arrays of large additions. A merge sorts everything into the arrays.

    A merge of a full index takes seconds (millions of entries), so :class:`OrderIndex` runs it in two steps around
    its lock: :meth:`begin_merge` hands the additions so far to the merge (they stay searchable as ``merging``) and
    starts an empty delta, :func:`_merged` sorts without the lock, :meth:`end_merge` installs the result.
    """

    keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint32))
    slots: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    # Slots as ``array('i')``: unlike lists they hold no object references, so the garbage collector never walks
    # them (hundreds of thousands of lists made every full collection of a server process tens of ms longer).
    delta: dict[int, array[int]] = field(default_factory=dict)
    bulk: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    delta_size: int = 0  # entries in ``delta`` and ``bulk``
    merging: _Layer | None = None  # additions a merge under way is sorting into the arrays

    def add(self, keys: np.ndarray, slots: np.ndarray) -> None:
        if keys.size >= _BULK_ENTRIES:
            self.bulk.append((keys.ravel(), slots.ravel().astype(np.int32)))
        else:
            delta = self.delta
            for key, slot in zip(keys.ravel().tolist(), slots.ravel().tolist(), strict=True):
                got = delta.get(key)
                if got is None:
                    delta[key] = array("i", (slot,))
                else:
                    got.append(slot)
        self.delta_size += keys.size

    @property
    def wants_merge(self) -> bool:
        """The additions have grown past an eighth of the arrays (lookups in the delta cost more than a merge)."""
        return self.merging is None and self.delta_size > max(4096, len(self.keys) // 8)

    def merge(self, keep: np.ndarray | None = None) -> None:
        """Sort the additions into the arrays now; ``keep`` (per slot) drops the entries of evicted orders."""
        self.end_merge(*_merged(*self.begin_merge(), keep))

    def begin_merge(self) -> tuple[np.ndarray, np.ndarray, _Layer]:
        """Hand the arrays and the additions so far to a merge; later additions start a new delta."""
        if self.merging is not None:
            raise RuntimeError("a merge of this table is already under way")
        self.merging = (self.delta, self.bulk)
        self.delta, self.bulk, self.delta_size = {}, [], 0
        return self.keys, self.slots, self.merging

    def end_merge(self, keys: np.ndarray, slots: np.ndarray) -> None:
        self.keys, self.slots, self.merging = keys, slots, None

    @property
    def layers(self) -> list[_Layer]:
        """The additions not in the sorted arrays, oldest first: those a merge under way holds, then the delta."""
        pending = (self.delta, self.bulk)
        return [pending] if self.merging is None else [self.merging, pending]

    def lookup(self, keys: np.ndarray, cap: int) -> np.ndarray:
        """Slots sharing at least one key (with repeats, one per shared band), newest ``cap`` per bucket."""
        found: list[np.ndarray] = []
        left = np.searchsorted(self.keys, keys, side="left")
        right = np.searchsorted(self.keys, keys, side="right")
        for lo, hi in zip(left.tolist(), right.tolist(), strict=True):
            if hi > lo:
                found.append(self.slots[max(lo, hi - cap) : hi])
        for delta, bulk in self.layers:
            for bulk_keys, bulk_slots in bulk:  # only between a build's chunks (a build ends with a merge)
                hit = np.isin(bulk_keys, keys)
                if hit.any():
                    bk, bs = bulk_keys[hit], bulk_slots[hit]
                    found += [bs[bk == k][-cap:] for k in np.unique(bk)]
            if delta:
                for key in np.unique(keys).tolist():
                    got = delta.get(key)
                    if got:
                        found.append(np.frombuffer(got[-cap:], dtype=np.int32))  # a view of a copy: ``got`` may grow
        return np.concatenate(found) if found else np.empty(0, dtype=np.int32)

    @property
    def nbytes(self) -> int:
        # A dict entry costs a slot, an int key and a small array: about 100 bytes.
        extra = sum(
            sum(k.nbytes + s.nbytes for k, s in bulk) + 100 * sum(len(v) for v in delta.values())
            for delta, bulk in self.layers
        )
        return int(self.keys.nbytes + self.slots.nbytes + extra)


def _merged(
    keys: np.ndarray, slots: np.ndarray, layer: _Layer, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted (key, slot) arrays of ``keys``/``slots`` plus the additions in ``layer``; reads, changes nothing."""
    delta, bulk = layer
    n = sum(len(v) for v in delta.values())
    all_keys = np.concatenate(
        [keys, *(k for k, _ in bulk), np.fromiter((k for k, v in delta.items() for _ in v), dtype=np.uint32, count=n)]
    )
    all_slots = np.concatenate(
        [slots, *(s for _, s in bulk), np.fromiter((x for v in delta.values() for x in v), dtype=np.int32, count=n)]
    )
    if keep is not None:
        mask = keep[all_slots]
        all_keys, all_slots = all_keys[mask], all_slots[mask]
    order = np.lexsort((all_slots, all_keys))
    return all_keys[order], all_slots[order]


@dataclass(frozen=True, slots=True)
class Candidate:
    order_id: int
    hits: int  # bands shared with the query: a rough similarity, used only to order and cap candidates
    created: float  # epoch seconds


class _Prepared(NamedTuple):
    """Orders sketched for :meth:`ShingleIndex.add_prepared`: ids, times, shingle sets, signatures, band keys."""

    ids: list[int]
    times: list[float]
    sets: list[np.ndarray]
    sig: np.ndarray
    bands: dict[str, np.ndarray]

    def subset(self, rows: list[int]) -> _Prepared:
        pick = np.array(rows, dtype=np.int64)
        return _Prepared(
            [self.ids[i] for i in rows],
            [self.times[i] for i in rows],
            [self.sets[i] for i in rows],
            self.sig[pick],
            {name: bk[pick] for name, bk in self.bands.items()},
        )


class ShingleIndex:
    """MinHash LSH over (order id, time, text); no database. Thread-unsafe: :class:`OrderIndex` locks."""

    def __init__(self, *, bucket_cap: int = 200, defer_merges: bool = False) -> None:
        self.bucket_cap = bucket_cap
        # False: an addition that grows a table's delta too far merges it there and then. True: the owner merges
        # (OrderIndex._merge, in two steps around its lock).
        self.defer_merges = defer_merges
        self.idf = IdfTable()
        self.tables = {name: _Table() for name in SCHEMES}
        self.ids = np.empty(1024, dtype=np.int64)
        self.created = np.empty(1024, dtype=np.float64)
        # Each order's MinHash signature (NUM_PERM × 4 bytes): estimates a candidate's Jaccard before any text is
        # read, so intake scores exactly only the candidates worth it (see :meth:`estimate_jaccard`).
        self.sigs = np.empty((1024, NUM_PERM), dtype=np.uint32)
        self.size = 0
        self._known: dict[int, int] = {}  # order id → slot

    def __len__(self) -> int:
        return self.size

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._known

    def created_at(self, order_id: int) -> float | None:
        """The creation time (epoch seconds) the index holds for an order, None when it holds none."""
        slot = self._known.get(order_id, -1)
        return float(self.created[slot]) if slot >= 0 else None

    def add_many(self, items: Iterable[tuple[int, float, str]], *, sketched: bool = False) -> int:
        """Index (order id, created epoch seconds, text) triples; returns how many were new and non-empty.

        ``sketched``: a few texts that were probably just searched for (:func:`sketch_of` remembers them); a batch
        computes its signatures all at once instead.
        """
        return self.add_prepared(self.prepare(items, sketched=sketched))

    def prepare(self, items: Iterable[tuple[int, float, str]], *, sketched: bool = False) -> _Prepared | None:
        """The sketching half of :meth:`add_many`: reads the index only to skip ids it holds, changes nothing.

        :class:`OrderIndex` runs it outside its lock, so queries do not wait while a refresh sketches the orders
        other processes received; :meth:`add_prepared` (under the lock) skips any id indexed meanwhile.
        """
        ids: list[int] = []
        times: list[float] = []
        sets: list[np.ndarray] = []
        sketches: list[Sketch] = []
        seen: set[int] = set()
        for order_id, created, text in items:
            if order_id in self._known or order_id in seen:
                continue
            seen.add(order_id)
            if sketched:
                sketch = sketch_of(text)
                keys = sketch.keys
            else:
                keys = np.unique(shingle_keys(normalize(text)))
            if not len(keys):
                continue
            ids.append(order_id)
            times.append(created)
            sets.append(keys)
            if sketched:
                sketches.append(sketch)
        if not ids:
            return None
        sig = np.stack([s.signature for s in sketches]) if sketched else signatures(sets)
        bands = {
            name: np.stack([s.band_keys(name) for s in sketches]) if sketched else band_keys(sig, name)
            for name in self.tables
        }
        return _Prepared(ids, times, sets, sig, bands)

    def add_prepared(self, batch: _Prepared | None) -> int:
        """Index what :meth:`prepare` sketched (skipping ids indexed since); returns how many orders were added."""
        if batch is None:
            return 0
        fresh = [i for i, order_id in enumerate(batch.ids) if order_id not in self._known]
        if not fresh:
            return 0
        if len(fresh) < len(batch.ids):
            batch = batch.subset(fresh)
        self.idf.add_many(batch.sets)
        slots = self._allocate(np.array(batch.ids, dtype=np.int64), np.array(batch.times, dtype=np.float64))
        self.sigs[slots] = batch.sig
        self._known.update(zip(batch.ids, slots.tolist(), strict=True))
        for name, table in self.tables.items():
            bk = batch.bands[name]
            table.add(bk, np.repeat(slots, bk.shape[1]))
            if table.wants_merge and not self.defer_merges:
                table.merge()
        return len(batch.ids)

    def _allocate(self, ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        need = self.size + len(ids)
        if need > len(self.ids):
            cap = max(need, 2 * len(self.ids))
            self.ids = np.resize(self.ids, cap)
            self.created = np.resize(self.created, cap)
            sigs = np.empty((cap, NUM_PERM), dtype=np.uint32)
            sigs[: self.size] = self.sigs[: self.size]
            self.sigs = sigs
        slots = np.arange(self.size, need, dtype=np.int32)
        self.ids[self.size : need] = ids
        self.created[self.size : need] = times
        self.size = need
        return slots

    def query(
        self,
        text: str | Sketch,
        *,
        scheme: str = DUP_SCHEME,
        since: float | None = None,
        until: float | None = None,
        limit: int = 200,
        exclude: int | None = None,
    ) -> list[Candidate]:
        """Indexed orders sharing a band with ``text`` (most shared bands first, then newest), within the times."""
        slots, hits, created = self._ranked(text, scheme, since, until, limit, exclude)
        return [
            Candidate(order_id=int(self.ids[s]), hits=int(h), created=float(c))
            for s, h, c in zip(slots, hits, created, strict=True)
        ]

    def query_ids(
        self,
        text: str | Sketch,
        *,
        scheme: str = DUP_SCHEME,
        since: float | None = None,
        until: float | None = None,
        limit: int = 200,
        exclude: int | None = None,
    ) -> list[int]:
        """The order ids :meth:`query` finds, in its order, without making a :class:`Candidate` of each."""
        slots, _, _ = self._ranked(text, scheme, since, until, limit, exclude)
        return self.ids[slots].tolist()

    def _ranked(
        self, text: str | Sketch, scheme: str, since: float | None, until: float | None, limit: int, exclude: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slots, shared bands and creation times of :meth:`query`'s answer, best first."""
        sketch = _sketch(text)
        none = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if not len(sketch.keys):
            return none
        slots = self.tables[scheme].lookup(sketch.band_keys(scheme), self.bucket_cap)
        if not len(slots):
            return none
        slots, hits = np.unique(slots, return_counts=True)
        created = self.created[slots]
        mask = np.ones(len(slots), dtype=bool)
        if since is not None:
            mask &= created >= since
        if until is not None:
            mask &= created <= until
        if exclude is not None:
            mask &= self.ids[slots] != exclude
        slots, hits, created = slots[mask], hits[mask], created[mask]
        order = np.lexsort((-created, -hits))[:limit]
        return slots[order], hits[order], created[order]

    def estimate_jaccard(self, text: str | Sketch, order_ids: Iterable[int]) -> dict[int, float]:
        """MinHash estimate of the shingle Jaccard of ``text`` with each indexed order among ``order_ids``.

        Orders not in the index are left out (the caller scores those exactly). With 64 values the estimate's
        standard error is at most 0.0625 (0.057 at J = 0.3).
        """
        found = [(order_id, slot) for order_id in order_ids if (slot := self._known.get(order_id, -1)) >= 0]
        sketch = _sketch(text)
        if not found or not len(sketch.keys):
            return {}
        query = sketch.signature.astype(np.uint32)
        agree = (self.sigs[np.array([slot for _, slot in found])] == query[None, :]).mean(axis=1)
        return dict(zip([order_id for order_id, _ in found], agree.tolist(), strict=True))

    def compact(self) -> None:
        """Merge every band table's recent additions into its sorted arrays (after a build)."""
        for table in self.tables.values():
            if table.delta_size:
                table.merge()

    @property
    def nbytes(self) -> int:
        return int(
            sum(t.nbytes for t in self.tables.values())
            + self.ids.nbytes
            + self.created.nbytes
            + self.sigs.nbytes
            + self.idf.df.nbytes
        )


# --------------------------------------------------------------------------------------- database-backed index


def _epoch(value: datetime) -> float:
    if value.tzinfo is None:  # naive values are UTC (db.UTCDateTime stores UTC)
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class OrderIndex:
    """A :class:`ShingleIndex` kept in step with one database's ``orders`` table (see the module docstring)."""

    GAP_TTL = 300.0  # seconds a missing id is re-checked (a concurrent transaction may commit it late)
    LOAD_CHUNK = 5000

    def __init__(self, *, index_days: float, bucket_cap: int = 200, refresh_seconds: float = 0.0) -> None:
        self.index_days = index_days
        self.bucket_cap = bucket_cap
        self.refresh_seconds = refresh_seconds
        self.lock = threading.Lock()  # guards the ShingleIndex: queries and additions
        # One reader of the table at a time; guards high_water, gaps and built. The reader takes self.lock only
        # briefly, to add what it has read, so a query never waits for a read of the table.
        self.refresh_lock = threading.Lock()
        self._warming = threading.Event()
        self._reset()

    def _reset(self) -> None:
        with self.lock:
            self.index = ShingleIndex(bucket_cap=self.bucket_cap, defer_merges=True)
            self._reset_wanted = False
        self.high_water = 0
        self.gaps: dict[int, float] = {}
        self.built = False
        self.last_evict = 0.0
        self.last_refresh = -math.inf  # time.monotonic() when the last read from the table began

    def ensure(self, session: Session, *, block_below: int = 20_000) -> bool:
        """Make the index ready to query, without making an intake wait minutes for a first build.

        An index already built is topped up from the table when its last read is older than ``refresh_seconds``
        (orders this process commits are added at commit, see :func:`_remember_new_orders`, so the interval only
        delays orders committed by *other* processes): by a thread of its own while this query uses the index as it
        is, so that no intake pays for reading the others' orders — or, with ``refresh_seconds`` 0, here and now,
        before the query. A first build of at most ``block_below`` orders runs now; a
        larger one runs in a background thread (on its own connection) and this returns False until it is done,
        so the caller falls back to its database prefilter meanwhile. ``cityhub serve`` warms it at start.
        """
        if self.built:
            if time.monotonic() - self.last_refresh >= self.refresh_seconds:
                # A rebuild (ids were handed out again) is waited for: the index as it is would be wrong.
                if self.refresh_seconds > 0 and not self._reset_wanted:
                    self._refresh_in_background(session)
                else:
                    # A thread already reading the new rows will add them: the others query the index as it is.
                    self.refresh(session, wait=False)
            return True
        if self._warming.is_set():
            return False
        from cityhub.workorders.models import Order

        cutoff = utcnow() - timedelta(days=self.index_days)
        window = session.scalar(select(func.count()).select_from(Order).where(Order.created_at >= cutoff)) or 0
        if window <= block_below:
            self.refresh(session)
            return True
        self.warm(session)
        return False

    @property
    def state(self) -> str:
        """ "ready", "building" (a first build runs in the background) or "not built" (built at first use)."""
        return "ready" if self.built else ("building" if self._warming.is_set() else "not built")

    def warm(self, session: Session) -> threading.Thread | None:
        """Build the index in a background thread, on a connection of its own (:meth:`ensure` answers False until it
        is done), and return the thread; None when the index is built or building already. Counts nothing first: on
        a freshly imported table a count can take a minute."""
        if self.built or self._warming.is_set():
            return None
        engine = _reader_engine(session)
        self._warming.set()

        def build() -> None:
            try:
                with engine.connect() as conn:
                    self._refresh(conn, utcnow())
            except Exception:  # the next intake tries again
                log.exception("building the similar-orders index failed")
            finally:
                self._warming.clear()

        thread = threading.Thread(target=build, name="cityhub-similar-warmup", daemon=True)
        thread.start()
        return thread

    def _refresh_in_background(self, session: Session) -> None:
        if self.refresh_lock.locked():
            return  # a read is under way
        engine = _reader_engine(session)
        self.last_refresh = time.monotonic()  # the callers arriving meanwhile start no other thread

        def read() -> None:
            if not self.refresh_lock.acquire(blocking=False):
                return
            try:
                with engine.connect() as conn:
                    self._refresh_locked(conn, utcnow())
            except Exception:  # the next refresh tries again; intake goes on with the index as it is
                log.exception("reading new orders into the similar-orders index failed")
            finally:
                self.refresh_lock.release()

        threading.Thread(target=read, name="cityhub-similar-refresh", daemon=True).start()

    def refresh(self, session: Session, *, now: datetime | None = None, wait: bool = True) -> int:
        """Bring the index up to date with the table's committed rows; returns how many orders were added.

        Reads on a connection of its own, so an order of a transaction that later rolls back (whose id SQLite
        would hand out again) never enters the index. With ``wait=False`` it returns 0 at once when another thread
        is reading already.
        """
        if not self.refresh_lock.acquire(blocking=wait):
            return 0
        try:
            with _reader_engine(session).connect() as conn:
                return self._refresh_locked(conn, now or utcnow())
        finally:
            self.refresh_lock.release()

    def _refresh(self, conn: Connection, now: datetime) -> int:
        with self.refresh_lock:
            return self._refresh_locked(conn, now)

    def _refresh_locked(self, conn: Connection, now: datetime) -> int:
        from cityhub.workorders.models import Order

        cutoff = now - timedelta(days=self.index_days)
        self.last_refresh = time.monotonic()
        if self._reset_wanted:
            self._reset()
        if self.built:
            top = conn.scalar(select(func.max(Order.id))) or 0
            if top < self.high_water:  # rows were deleted and ids reused (SQLite): start again
                self._reset()
        columns = select(Order.id, Order.title, Order.content, Order.created_at)
        if not self.built:
            added = self._load(conn, columns.where(Order.created_at >= cutoff), cutoff.timestamp())
            with self.lock:
                self.index.compact()
            self.built = True
            self.last_evict = cutoff.timestamp()
            return added
        wall = time.monotonic()
        self.gaps = {i: t for i, t in self.gaps.items() if wall - t < self.GAP_TTL}
        # Two queries, not one with OR: each walks the primary key (SQLite answers "id > n OR id IN (…)" with a
        # scan of the whole table). No time condition: an imported old order is seen once (and skipped), not
        # re-checked as a gap.
        added = 0
        if self.gaps:
            added += self._load(conn, columns.where(Order.id.in_(list(self.gaps))), cutoff.timestamp())
        added += self._load(conn, columns.where(Order.id > self.high_water), cutoff.timestamp())
        # Aged-out orders are dropped from the buckets about once a day of window movement.
        if cutoff.timestamp() - self.last_evict > 86400:
            self._merge(evict_before=cutoff.timestamp())
            self.last_evict = cutoff.timestamp()
        else:
            self._merge()
        return added

    def _merge(self, *, evict_before: float | None = None) -> None:
        """Merge the band tables whose additions have grown (all of them, dropping the entries of orders created
        before ``evict_before``, when given) without holding the lock while sorting — seconds for a full index:
        queries go on meanwhile and search the additions being merged where they are. Called by the holder of
        ``refresh_lock`` (one merge at a time)."""
        with self.lock:
            index = self.index
            keep = index.created[: index.size] >= evict_before if evict_before is not None else None
            jobs = {name: t.begin_merge() for name, t in index.tables.items() if keep is not None or t.wants_merge}
        if not jobs:
            return
        try:
            merged = {name: _merged(*job, keep) for name, job in jobs.items()}
        except BaseException:
            with self.lock:
                self._reset_wanted = True  # rebuilt from the table at the next use
                self.last_refresh = -math.inf
            raise
        with self.lock:
            for name, (keys, slots) in merged.items():
                index.tables[name].end_merge(keys, slots)

    def _load(self, conn: Connection, query: Select, cutoff: float) -> int:
        from cityhub.workorders.models import Order

        added = 0
        seen: list[int] = []
        batch: list[tuple[int, float, str]] = []
        result = conn.execute(query.order_by(Order.id).execution_options(yield_per=self.LOAD_CHUNK))
        for row in result:
            seen.append(row.id)
            created = _epoch(row.created_at)
            if created >= cutoff:
                batch.append((row.id, created, order_text(row.title, row.content)))
            if len(batch) >= self.LOAD_CHUNK:
                added += self._add_loaded(batch)
                batch = []
        added += self._add_loaded(batch)
        if seen:
            for order_id in seen:
                self.gaps.pop(order_id, None)
            top = max(seen)
            if top > self.high_water:
                wall = time.monotonic()
                present = set(seen)
                # Ids skipped between the old and new high-water mark may belong to uncommitted transactions.
                if top - self.high_water < 10_000 and self.built:
                    for missing in range(self.high_water + 1, top):
                        if missing not in present:
                            self.gaps[missing] = wall
                self.high_water = top
        return added

    def _add_loaded(self, batch: list[tuple[int, float, str]]) -> int:
        """Sketch rows read from the table, then index them: the lock is held for the addition only, so intakes
        querying the index do not wait while a refresh sketches the orders other processes received. (Only the
        holder of ``refresh_lock`` replaces ``self.index``, and it is the caller.)"""
        prepared = self.index.prepare(batch)
        with self.lock:
            return self.index.add_prepared(prepared)

    def add_committed(self, items: Sequence[tuple[int, float, str]]) -> None:
        """Add orders this process has just committed (id, created epoch seconds, text), without reading the table.

        An id already indexed with the same creation time is skipped: a refresh in another thread read the order
        between its commit and this call. With another creation time, the id was handed out again after rows were
        deleted (SQLite reuses ids): the index is rebuilt from the table at its next use.
        """
        with self.lock:
            if not self.built or self._reset_wanted:
                return  # the (re)build reads them from the table
            if any(self.index.created_at(order_id) not in (None, created) for order_id, created, _ in items):
                self._reset_wanted = True
                self.last_refresh = -math.inf
                return
            cutoff = (utcnow() - timedelta(days=self.index_days)).timestamp()
            self.index.add_many((item for item in items if item[1] >= cutoff), sketched=True)

    def query(self, text: str | Sketch, **kwargs: object) -> list[Candidate]:
        with self.lock:
            return self.index.query(text, **kwargs)  # type: ignore[arg-type]

    def query_ids(self, text: str | Sketch, **kwargs: object) -> list[int]:
        with self.lock:
            return self.index.query_ids(text, **kwargs)  # type: ignore[arg-type]

    def similarities(self, query: Profile, texts: Sequence[str]) -> list[Similarity]:
        """:func:`similarities` with this index's document frequencies; the texts' features come from the process's
        :class:`FeatureCache`."""
        return similarities_of(query, cached_features(texts), idf=self.index.idf)

    def estimate_jaccard(self, text: str | Sketch, order_ids: Iterable[int]) -> dict[int, float]:
        with self.lock:
            return self.index.estimate_jaccard(text, order_ids)

    def pair_counts(self, pairs: Iterable[str]) -> tuple[dict[str, int], int]:
        """How many indexed orders hold each two-character string of ``pairs`` (from the hashed document frequencies:
        never fewer than the truth; a string that is not two letters or digits is left out), and how many orders the
        index holds."""
        keyed = {p: keys[0] for p in pairs if len(keys := shingle_keys(normalize(p))) == 1}
        with self.lock:
            idf = self.index.idf
            counts = idf.df[df_buckets(np.array(list(keyed.values()), dtype=U64))] if keyed else []
            return {p: int(c) for p, c in zip(keyed, counts, strict=True)}, idf.n_docs

    def lowest_id(self) -> int | None:
        """The smallest id of the orders the index holds (created within its ``index_days``); None when it holds none.
        Every order the index holds has at least this id."""
        cutoff = (utcnow() - timedelta(days=self.index_days)).timestamp()
        with self.lock:
            index = self.index
            held = index.ids[: index.size][index.created[: index.size] >= cutoff]
            return int(held.min()) if len(held) else None


def _reader_engine(session: Session) -> Engine:
    """An engine of its own on the session's database for the index's reads, with one kept connection.

    The index reads on a connection of its own (so a row of a transaction that later rolls back never enters it)
    while the caller still holds its pooled connection (see :func:`cityhub.db.side_engine`). Reads happen one at a
    time, so one connection suffices; it is kept open between intakes because opening one (a PostgreSQL log-in,
    SQLite's pragmas) would cost more than the read itself.
    """
    from cityhub.db import side_engine

    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return session.get_bind().engine  # an in-memory database exists only behind its own engine
    return side_engine(url, "similar-orders index", pool_size=1, max_overflow=2)


_INDEXES: dict[str, OrderIndex] = {}
_INDEXES_LOCK = threading.Lock()


def existing_index(session: Session) -> OrderIndex | None:
    """The process's index of the session's database, if one was made."""
    return _INDEXES.get(database_key(session))


def index_for(
    session: Session, *, index_days: float, bucket_cap: int = 200, refresh_seconds: float = 0.0
) -> OrderIndex:
    """The process's index of the session's database (made empty on first use; call ``ensure`` before use)."""
    url = database_key(session)
    with _INDEXES_LOCK:
        idx = _INDEXES.get(url)
        if idx is None or idx.index_days != index_days or idx.bucket_cap != bucket_cap:
            idx = _INDEXES[url] = OrderIndex(index_days=index_days, bucket_cap=bucket_cap)
        idx.refresh_seconds = refresh_seconds
        return idx


# Orders a session inserts are noted at flush and handed to the process's index when (and only when) the
# transaction commits: a rolled-back order, whose id SQLite may hand out again, never enters the index.
_PENDING = "cityhub.similar.new_orders"


@event.listens_for(Session, "after_flush")
def _remember_new_orders(session: Session, _flush_context: object) -> None:
    if not _INDEXES:
        return  # no index in this process: nothing to keep in step
    from cityhub.workorders.models import Order

    new = [o for o in session.new if isinstance(o, Order)]
    if new:
        pending = session.info.setdefault(_PENDING, [])
        pending += [
            (o.id, _epoch(o.created_at), order_text(o.title, o.content))
            for o in new
            if o.id is not None and o.created_at is not None
        ]
        session.info[_PENDING + ".key"] = database_key(session)


@event.listens_for(Session, "after_commit")
def _index_committed_orders(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    key = session.info.pop(_PENDING + ".key", None)
    if pending and key is not None:
        idx = _INDEXES.get(key)
        if idx is not None:
            idx.add_committed(pending)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_orders(session: Session, _previous: object) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_PENDING + ".key", None)


def _forget_after_fork() -> None:
    """A forked child starts without its parent's indexes and text features (nor locks another thread held); see
    also db.side_engine."""
    global _INDEXES_LOCK, _FEATURES
    _INDEXES.clear()
    _INDEXES_LOCK = threading.Lock()
    _FEATURES = FeatureCache(_FEATURES.max_bytes)


os.register_at_fork(after_in_child=_forget_after_fork)


def reset_indexes() -> None:
    """Forget every cached index and text feature (tests that empty the database between cases call this)."""
    with _INDEXES_LOCK:
        _INDEXES.clear()
    _FEATURES.clear()
