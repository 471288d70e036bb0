"""Order category classifier (工单分类): sparse text features, a stacked linear ensemble, calibrated output.

Pipeline
  text → joined form (normalised, segmentation spaces removed; with training data in both forms, raw texts also
         lose the stop words and punctuation the segmented ones lack: ``JoinedForm``)
       → char n-gram TF-IDF ⊕ word (rjieba) n-gram TF-IDF
       → members (linear SVM, modified-Huber SGD, complement NB, NB-weighted linear SVM) → stacker (multinomial
         logistic regression over the members' out-of-fold scores) → calibrated class probabilities.

The stacker is fitted on scores the members produced for rows they did not see, with folds that keep
near-duplicate messages together, so its probabilities reflect accuracy on new messages rather than on
memorised ones; that is what makes "dispatch automatically when p ≥ t" meaningful.

Optionally (``ClassifierConfig.encoder``, ``cityhub nlp train --encoder m3e-small``) a dense block of
sentence embeddings from ``cityhub.nlp.encoder`` feeds a fourth member ("emb", a logistic regression) into
the same stack. It needs the ``embed`` extra, costs far more time per order than the sparse path, and is
never required: the default model is sparse only.

Prediction of the default sparse model does not go through scikit-learn's estimators: ``_FastPath`` repeats their
arithmetic (TF-IDF rows, the members' linear scores, the stacker's softmax) directly on the fitted arrays, several
times cheaper for one order, to the same probabilities; it checks that on probe texts when a model is built or
loaded. Any other configuration (a title block, the encoder, other member types) predicts through scikit-learn, which
stays the reference (``Model.predict_proba(..., reference=True)``).

The artefact is a directory: ``model.pkl.gz`` (the fitted objects; ``model.joblib`` in artefacts written
before 2026-11-30, still read) and ``model.json`` (format version,
config, feature blocks, the encoder's identity when there is one, library versions, training-data summary,
and an evaluation report from grouped cross-validation). A model whose encoder is not installed is refused
at load with an error naming the encoder and how to install it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import pickle
import platform
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack

from cityhub.errors import NotFound, ValidationFailed
from cityhub.nlp.finetune import TunedHead
from cityhub.nlp.text import (
    JoinedForm,
    looks_segmented,
    near_duplicate_groups,
    ngram_numbers,
    normalize,
    order_text,
    words,
)
from cityhub.textfiles import read_text, text_lines
from cityhub.workorders.categories import category_form

# 2: optional encoder block (``ClassifierConfig.encoder``); 3: per-class confidence calibration
# (``ClassConfidence``); 4: the learned joined form of raw texts (``JoinedForm``). Versions 1 and 2 still load and
# predict with the stacker's probabilities, as before; versions before 4 normalise texts only, as before.
# 5: the fine-tuned encoder member (``ClassifierConfig.fine_tune``, ``cityhub.nlp.finetune``). 6: the NB-weighted SVM
# member (``NBLinearSVC``), which older versions cannot unpickle. 7: the vectorizers' vocabularies as integer n-gram
# tables (``_Vocabulary``) where the fast path reads them, and no ComplementNB training counts; a model loaded from an
# older version is brought to that form in memory (``Model._keep_what_prediction_reads``).
FORMAT_VERSION = 7
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)
_log = logging.getLogger(__name__)
# The fitted objects, pickled (protocol 5) into gzip: read by the C unpickler in ~1 s where joblib's pure-Python
# unpickler took ~5.5 s for the same default model (~600,000 vocabulary entries), during which every dispatch
# decision of the process waited (at each server start, and after each retrain).
MODEL_FILE = "model.pkl.gz"
LEGACY_MODEL_FILE = "model.joblib"  # what artefacts written before 2026-11-30 hold; still read
META_FILE = "model.json"
PRECISION_LEVELS = ("0.85", "0.90", "0.95", "0.97")
CSV_COLUMNS = ("id", "title", "content", "created_at", "category")


@dataclass(frozen=True)
class LabelledOrder:
    """One labelled message: the unit of training and evaluation data."""

    id: str
    title: str
    content: str
    category: str
    source: str = ""

    def __post_init__(self) -> None:
        # One class per category however a file typed it ("交通运输(公交)" is "交通运输（公交）").
        object.__setattr__(self, "category", category_form(self.category))

    @property
    def text(self) -> str:
        return order_text(self.title, self.content)


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    top3: list[tuple[str, float]]
    # How many distinct phrases of the text the model knows (``Model.evidence``); None: not measured.
    evidence: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "probability": round(self.probability, 6),
            "top3": [[label, round(p, 6)] for label, p in self.top3],
        }
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out


@dataclass(frozen=True)
class ClassifierConfig:
    """Knobs of the pipeline; defaults are the configuration chosen by grouped CV (bench/)."""

    char_ngrams: tuple[int, int] = (1, 3)
    word_ngrams: tuple[int, int] | None = (1, 2)
    # "nbsvm" (``NBLinearSVC``) since sweep 15: +0.5 macro F1 points and +3.2 points of coverage at precision 0.97 on
    # raw texts of the strict proxy; training on all dev data 45 → 82 s (bench/results/classifier_exploration.md).
    members: tuple[str, ...] = ("svm", "sgd", "cnb", "nbsvm")
    # "stack": multinomial LR over out-of-fold member scores; "platt": sigmoid calibration of one member.
    combiner: str = "stack"
    svm_c: float = 0.5
    sgd_alpha: float = 2e-5
    # lbfgs logistic regression on ~600k features takes minutes; kept as an option, not a default.
    lr_c: float = 20.0
    cnb_alpha: float = 0.3
    # The NB-weighted SVM member: its C (as svm_c) and the smoothing of its log-count ratios.
    nbsvm_c: float = 0.5
    nbsvm_alpha: float = 1.0
    min_df: int = 2
    max_char_features: int | None = 300_000
    # Train also on the title alone where a message has a separate title, for title-only inputs.
    title_augment: bool = True
    # A separate char TF-IDF block over the title (the first line of a multi-line text), weighted by this
    # factor relative to the text blocks; 0 = no title block. Off by default: +0.3 macro F1 points on 3-fold
    # grouped CV, none on 5 folds, and ~1 ms more per prediction (bench/results/classifier_exploration.md).
    title_weight: float = 0.0
    folds: int = 3
    dedup_threshold: float = 0.5
    # Bring raw texts to the form of the segmented texts trained beside them (``JoinedForm``: drop the stop words
    # and punctuation their segmenter dropped, learned from the training data's two forms; nothing when it has only
    # one). +0.2 macro F1 points on 5-fold grouped CV, 0.911 → 0.913 (bench/results/classifier_exploration.md, sweep 7).
    joined_form: bool = True
    seed: int = 0
    # Members are fitted in threads: liblinear and SGD release the GIL.
    n_jobs: int = 2
    # Optional dense sentence-embedding block (``cityhub.nlp.encoder``): adds the "emb" member, a logistic
    # regression over the embeddings, to the stack. None = sparse features only (the default install).
    encoder: str | None = None
    # Strong regularisation: on grouped CV the embedding-only LR peaks near C = 0.01 (0.85 macro F1 vs 0.80 at 1).
    emb_c: float = 0.01
    # Confidence of the top label: "class" = P(correct | predicted class, stacker scores) from a per-class
    # logistic calibration fitted on out-of-fold stack predictions (``ClassConfidence``); "none" = the
    # stacker's probability as it is (artefacts before format 3).
    confidence: str = "class"
    # Ridge on the per-class deviations from the global calibration: a class needs roughly this many
    # informative out-of-fold rows before its own curve moves far from the global one.
    confidence_shrink: float = 30.0
    # Fine-tune the encoder's top ``fine_tune_layers`` layers with a linear head on the training texts
    # (``cityhub.nlp.finetune``; needs PyTorch to train, not to predict) and mix its probabilities with the stack's,
    # weighted on a held-out fold. Replaces the frozen-embedding member "emb". +1.3 macro F1 points and +3.9 of
    # coverage at precision 0.97 on raw texts of the strict proxy (bench/results/classifier_finetune.md), at ~25
    # minutes of training on 2 cores and ~60 ms per order.
    fine_tune: bool = False
    fine_tune_layers: int = 2
    fine_tune_epochs: float = 2.0
    # How the fine-tuned member's probabilities are mixed with the stack's (``finetune.mix``): "geometric" or "mean".
    # On folds 1-3 of the strict proxy, with the same members, geometric gave +0.2 macro F1 points and +1.1 (raw
    # text) to +2.3 (all rows) points of coverage at precision 0.97 (bench/results/classifier_exploration.md, sweep
    # 13). Artefacts saved before this setting existed mixed by the mean and still do.
    fine_tune_mix: str = "geometric"


# --------------------------------------------------------------------------- data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CsvReport:
    path: str
    sha256: str
    rows: int = 0
    kept: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


def read_labelled_csv(path: str | Path) -> tuple[list[LabelledOrder], CsvReport]:
    """Read labelled orders: an ``id,title,content,created_at,category`` CSV, or any order file the importer reads.

    The file is read with the order importer's readers and header aliases (``cityhub.intake.importer``): CSV in
    UTF-8 or GBK, comma, tab or semicolon separated, or an Excel workbook; Chinese headers as a 12345 export or
    the message-board data have them (留言编号, 留言主题, 留言详情, 留言时间, 一级标签/一级分类 — the label is
    ``category``, else the first-level category). Rows without a category or without any text, CSV rows with
    another number of fields than the header, rows holding bytes that are not text in the file's encoding and a
    row whose quoted field is not closed before the end of the file (the lines after it are read again as rows)
    are skipped and listed in the report; a missing file, or a header without a label or text column, or one that
    cannot be read, raise a ``CityhubError`` naming the file.
    """
    from cityhub.intake.importer import ColumnMap, CsvReader, RepeatedColumn, UnreadableFile, cell_text, open_table

    p = Path(path)
    report = CsvReport(path=str(p), sha256=_sha256(p) if p.is_file() else "")
    records: list[LabelledOrder] = []
    with open_table(p) as reader:
        try:
            columns = ColumnMap.from_header(reader.header)
        except RepeatedColumn as exc:
            raise ValidationFailed(f"{p}: {exc.message}") from None
        except UnreadableFile as exc:
            raise ValidationFailed(f"{p}: header lacks a title or content column ({exc.message})") from None
        f = columns.fields
        label = f.get("category", f.get("category1"))
        if label is None:
            raise ValidationFailed(
                f"{p}: header lacks a category column (category, 一级标签 or 一级分类); "
                f"header was: {', '.join(str(h) for h in reader.header)}"
            )
        width = len(reader.header)
        strict = isinstance(reader, CsvReader)

        def unreadable(row_no: int, kind: str, message: str) -> None:
            report.rows += 1
            report.skipped.append({"row": row_no, "id": "", "reason": message})

        for row_no, cells in reader.rows(on_bad_row=unreadable):
            values = [cell_text(c) for c in cells]
            if not any(values):
                continue
            report.rows += 1

            def cell(index: int | None, values: list[str] = values) -> str:
                return values[index] if index is not None and index < len(values) else ""

            rid = cell(f.get("external_id")) or f"row{row_no}"
            if strict and len(cells) != width:
                reason = f"{len(cells)} fields, the header has {width}"
                report.skipped.append({"row": row_no, "id": rid, "reason": reason})
                continue
            category = cell(label)
            title, content = cell(f.get("title")), cell(f.get("content"))
            if not category or not (title or content):
                report.skipped.append(
                    {"row": row_no, "id": rid, "reason": "empty category" if not category else "empty text"}
                )
                continue
            records.append(LabelledOrder(id=rid, title=title, content=content, category=category, source=p.name))
            report.kept += 1
    return records, report


def read_texts(
    path: str | Path, *, problems: dict[int, tuple[int, str]] | None = None
) -> tuple[list[str | int], list[str]]:
    """Order texts to classify, each with what names it: an order file with title/content columns (as
    :func:`read_labelled_csv` reads them, labels not needed) gives each row's id; plain text, one order per line,
    gives each non-blank line's number (from 1). A ``.csv``/``.tsv`` or Excel file without a title or content column
    is refused, naming its header (its header would otherwise be classified as an order).

    A table's row that cannot be read (bytes not in the file's encoding, a quote not closed) ends the reading with
    ``UnreadableFile`` naming the row — or, given ``problems``, takes its place as an empty text, with its row number
    and what is wrong under its index in ``problems``, and the reading goes on."""
    from cityhub.intake.importer import (
        EXCEL_SUFFIXES,
        ColumnMap,
        RepeatedColumn,
        UnreadableFile,
        cell_text,
        open_table,
    )

    p = Path(path)
    keys: list[str | int] = []
    texts: list[str] = []
    with open_table(p) as reader:
        try:
            f = ColumnMap.from_header(reader.header).fields
        except UnreadableFile as exc:
            if p.suffix.lower() in {".csv", ".tsv", *EXCEL_SUFFIXES}:
                if isinstance(exc, RepeatedColumn):
                    raise ValidationFailed(f"{p}: {exc.message}") from None
                header = ", ".join(str(h) for h in reader.header)
                raise ValidationFailed(
                    f"{p}: header lacks a title or content column ({exc.message}); header was: {header}"
                ) from None
            f = {}
        if f:

            def unreadable(row_no: int, kind: str, message: str) -> None:
                if problems is None:
                    raise UnreadableFile(f"{p.name}: row {row_no}: {message}")
                problems[len(texts)] = (row_no, message)
                keys.append("")
                texts.append("")

            for row_no, cells in reader.rows(on_bad_row=unreadable):
                values = [cell_text(c) for c in cells]
                if not any(values):
                    continue

                def cell(name: str, values: list[str] = values) -> str:
                    index = f.get(name)
                    return values[index] if index is not None and index < len(values) else ""

                keys.append(cell("external_id") or str(row_no))
                texts.append(order_text(cell("title"), cell("content")))
            return keys, texts
    for number, line in enumerate(text_lines(read_text(p)), start=1):
        if line.strip():
            keys.append(number)
            texts.append(line.strip())
    return keys, texts


# --------------------------------------------------------------------------- features and members


_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _informative(gram: str) -> bool:
    """A phrase that says something of a Chinese appeal: with a hanzi, within one word (no space). Latin letters are
    left out: the training messages hold them in codes, names and addresses (A3区, 12345), so an English sentence
    or a keyboard mash shares many of their letter pairs without the model reading anything in it."""
    return _HANZI.search(gram) is not None and not any(c.isspace() for c in gram)


def _word_analyzer_tokens(text: str) -> list[str]:
    return words(text)


class _Features:
    """Char and word TF-IDF blocks over normalised text."""

    def __init__(self, config: ClassifierConfig) -> None:
        from cityhub.nlp.vectorizers import CharTfidfVectorizer, WordTfidfVectorizer

        self.char = CharTfidfVectorizer(
            analyzer="char",
            ngram_range=config.char_ngrams,
            min_df=config.min_df,
            sublinear_tf=True,
            max_features=config.max_char_features,
            lowercase=False,
            dtype=np.float32,
        )
        self.word = (
            WordTfidfVectorizer(
                tokenizer=_word_analyzer_tokens,
                token_pattern=None,
                ngram_range=config.word_ngrams,
                min_df=config.min_df,
                sublinear_tf=True,
                lowercase=False,
                dtype=np.float32,
            )
            if config.word_ngrams
            else None
        )
        self.title_weight = config.title_weight
        self.title = (
            CharTfidfVectorizer(
                analyzer="char",
                ngram_range=config.char_ngrams,
                min_df=config.min_df,
                sublinear_tf=True,
                lowercase=False,
                dtype=np.float32,
            )
            if config.title_weight > 0
            else None
        )

    @property
    def needs_titles(self) -> bool:
        # Artefacts from before the title block have no such attribute.
        return getattr(self, "title", None) is not None

    def fit_transform(self, texts: Sequence[str], titles: Sequence[str] | None = None) -> csr_matrix:
        return self._apply("fit_transform", texts, titles)

    def transform(self, texts: Sequence[str], titles: Sequence[str] | None = None) -> csr_matrix:
        return self._apply("transform", texts, titles)

    def _apply(self, method: str, texts: Sequence[str], titles: Sequence[str] | None) -> csr_matrix:
        """Each block's ``fit_transform`` or ``transform``, joined with the blocks' weights."""
        blocks = [getattr(self.char, method)(texts)]
        if self.word is not None:
            blocks.append(getattr(self.word, method)(texts))
        weights = [1.0] * len(blocks)
        title = getattr(self, "title", None)
        if title is not None:
            blocks.append(getattr(title, method)(titles if titles is not None else [""] * len(texts)))
            weights.append(self.title_weight)
        return self._join(blocks, weights)

    def columns(self, block: str) -> slice:
        """Column range of one feature block ("char", "word", "title") in the joined matrix."""
        sizes = [("char", len(self.char.vocabulary_))]
        if self.word is not None:
            sizes.append(("word", len(self.word.vocabulary_)))
        title = getattr(self, "title", None)
        if title is not None:
            sizes.append(("title", len(title.vocabulary_)))
        start = 0
        for name, size in sizes:
            if name == block:
                return slice(start, start + size)
            start += size
        raise ValidationFailed(f"feature block '{block}' is not in this model (has {', '.join(n for n, _ in sizes)})")

    @staticmethod
    def _join(blocks: list[Any], weights: list[float]) -> csr_matrix:
        if len(blocks) == 1:
            return csr_matrix(blocks[0])
        w = _block_scales(weights)
        return csr_matrix(hstack([b * wi for b, wi in zip(blocks, w, strict=True)], format="csr"))


def _block_scales(weights: list[float]) -> list[float]:
    """Each block is L2-normalised; scale so a row with every block present has unit norm too."""
    w = np.asarray(weights) / np.sqrt(np.sum(np.square(weights)))
    return [float(wi) for wi in w]


def title_of(text: str, form: Callable[[str], str] = normalize) -> str:
    """The title part of a text joined by ``order_text``, in ``form``: its first line when there is more than one."""
    head, sep, rest = text.strip().partition("\n")
    return form(head) if sep and rest.strip() else ""


# liblinear (LinearSVC) draws from one process-wide random generator that each fit seeds: two fits at once in threads
# interleave their draws, and the same data then gives slightly different models from run to run. One at a time.
_LIBLINEAR_LOCK = threading.Lock()


def _uses_liblinear(member: Any) -> bool:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    return isinstance(member, LinearSVC) or (isinstance(member, LogisticRegression) and member.solver == "liblinear")


class NBLinearSVC:
    """NBSVM (Wang & Manning 2012): one binary linear SVM per class over the features scaled by that class's
    log-count ratio ``r_c = log((α + Σ_{y=c} x̂ / ‖·‖₁) / (α + Σ_{y≠c} x̂ / ‖·‖₁))``, ``x̂`` the features' presence, so
    that the n-grams a class uses more than the others weigh more in its SVM from the start.

    The scaled SVM ``(x ∘ r_c) · w + b`` is the plain linear function ``x · (r_c ∘ w) + b``: ``coef_`` holds
    ``r_c ∘ w`` per class, and the member predicts, is stacked and takes the fast path as a LinearSVC does. Each SVM is
    fitted by SGD on the SVM's objective (as good as liblinear's here, and free of liblinear's shared random
    generator, so it fits beside the other members). On the strict grouped proxy it raised the stack's macro F1 on
    raw texts 0.913 → 0.918 and its coverage at precision 0.97 0.816 → 0.848
    (bench/results/classifier_exploration.md, sweep 15)."""

    def __init__(self, c: float = 0.5, alpha: float = 1.0, seed: int = 0) -> None:
        self.c, self.alpha, self.seed = c, alpha, seed

    def fit(self, x: csr_matrix, y: np.ndarray) -> NBLinearSVC:
        from scipy.sparse import csr_matrix as csr
        from sklearn.linear_model import SGDClassifier

        y = np.asarray(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        x = csr(x, dtype=np.float64)  # one copy, rescaled in place per class
        present = csr((np.ones_like(x.data), x.indices, x.indptr), shape=x.shape)
        onehot = csr((np.ones(len(y)), (codes, np.arange(len(y)))), shape=(len(self.classes_), len(y)))
        used = np.asarray((onehot @ present).todense())  # per class: in how many of its rows each feature occurs
        total = used.sum(axis=0)
        scaled = x.copy()
        coefs, intercepts = [], []
        for k in range(len(self.classes_)):
            p = (self.alpha + used[k]) / (self.alpha + used[k]).sum()
            q = (self.alpha + total - used[k]) / (self.alpha + total - used[k]).sum()
            ratio = np.log(p / q)
            np.multiply(x.data, ratio[x.indices], out=scaled.data)
            # The linear SVM's objective (hinge loss, L2 penalty 1 / (C n)) by SGD: its own seeded generator, so it
            # fits beside liblinear's members without taking their turn, and in a fraction of liblinear's time.
            svm = SGDClassifier(
                loss="hinge",
                alpha=1.0 / (self.c * len(y)),
                max_iter=30,
                tol=None,
                class_weight="balanced",
                random_state=self.seed,
            )
            svm.fit(scaled, (codes == k).astype(int))
            coefs.append(svm.coef_.ravel() * ratio)
            intercepts.append(float(svm.intercept_[0]))
        self.coef_ = np.asfortranarray(np.vstack(coefs))
        self.intercept_ = np.array(intercepts)
        return self

    def decision_function(self, x: csr_matrix) -> np.ndarray:
        return np.asarray(x @ self.coef_.T) + self.intercept_


def _make_member(spec: str, config: ClassifierConfig) -> Any:
    """A member by name; "name:block" (e.g. "sgd:word") fits it on one feature block only."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.naive_bayes import ComplementNB
    from sklearn.svm import LinearSVC

    name = spec.partition(":")[0]
    if name == "sgd":
        # Modified-Huber SGD: a second, differently regularised linear view, ~10x cheaper than lbfgs LR.
        return SGDClassifier(
            loss="modified_huber",
            alpha=config.sgd_alpha,
            max_iter=30,
            tol=None,
            class_weight="balanced",
            random_state=config.seed,
        )
    if name == "svm":
        return LinearSVC(C=config.svm_c, class_weight="balanced", random_state=config.seed)
    if name == "lr":
        return LogisticRegression(C=config.lr_c, class_weight="balanced", max_iter=300, solver="lbfgs")
    if name == "cnb":
        return ComplementNB(alpha=config.cnb_alpha)
    if name == "nbsvm":
        return NBLinearSVC(c=config.nbsvm_c, alpha=config.nbsvm_alpha, seed=config.seed)
    if name == "emb":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(), LogisticRegression(C=config.emb_c, class_weight="balanced", max_iter=2000)
        )
    raise ValidationFailed(
        f"unknown classifier member '{spec}' (known: svm, sgd, lr, cnb, nbsvm; name:block for one block)"
    )


def _member_input(name: str, features: _Features, x: csr_matrix, emb: np.ndarray | None) -> Any:
    """What a member reads: the embeddings, one feature block ("name:block"), or all sparse features."""
    if name == "emb":
        return emb
    block = name.partition(":")[2]
    return x[:, features.columns(block)] if block else x


def _member_scores(model: Any, x: csr_matrix, n_classes: int) -> np.ndarray:
    """Scores as an (n, n_classes) array over the full label set, whatever the member saw in training."""
    if hasattr(model, "decision_function") and not hasattr(model, "feature_log_prob_"):
        raw = model.decision_function(x)
    else:
        raw = model.predict_log_proba(x)
        # Only the ranking within a row carries information for NB; centre it to keep the scale tame.
        raw = raw - raw.mean(axis=1, keepdims=True)
    return _full_scores(np.asarray(raw, dtype=np.float64), np.asarray(model.classes_, dtype=int), n_classes)


def _full_scores(raw: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """A member's scores over the full label set: a binary member's one score s as [-s, s]; labels the member never
    saw in training below every score."""
    if raw.ndim == 1:
        raw = np.column_stack([-raw, raw])
    out = np.full((raw.shape[0], n_classes), float(raw.min()) - 1.0 if raw.size else 0.0)
    out[:, classes] = raw
    return out


def _fold_ids(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number per row; near-duplicate groups never straddle folds, classes stay balanced."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    k = max(2, min(folds, n_groups))
    fold = np.zeros(len(y), dtype=int)
    min_class = int(np.bincount(y).min()) if len(y) else 0
    if min_class >= k:
        splitter: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y, groups)
    else:
        from sklearn.model_selection import GroupKFold

        splits = GroupKFold(n_splits=k).split(np.zeros(len(y)), y, groups)
    for i, (_, test) in enumerate(splits):
        fold[test] = i
    return fold


# --------------------------------------------------------------------------- confidence


def _confidence_features(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class per row and the calibration inputs: [1, logit p₁, log p₁/p₂]."""
    order = np.argsort(-proba, axis=1, kind="stable")
    rows = np.arange(len(proba))
    top = order[:, 0]
    p1 = np.clip(proba[rows, top], 1e-9, 1 - 1e-9)
    p2 = np.clip(proba[rows, order[:, 1]], 1e-9, 1.0) if proba.shape[1] > 1 else np.full(len(proba), 1e-9)
    feats = np.column_stack([np.ones(len(proba)), np.log(p1 / (1 - p1)), np.log(p1 / p2)])
    return top, feats


def _fit_logistic(
    feats: np.ndarray, target: np.ndarray, offset: np.ndarray, ridge: float, lower: np.ndarray
) -> np.ndarray:
    """Weights w minimising log loss of sigmoid(offset + feats·w) + ridge/2·|w|², with w ≥ lower."""
    from scipy.optimize import minimize

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + feats @ w
        # log(1 + e^z) − t·z, stable for both signs of z.
        value = float(np.sum(np.logaddexp(0.0, z) - target * z)) + 0.5 * ridge * float(w @ w)
        grad = feats.T @ (1.0 / (1.0 + np.exp(-z)) - target) + ridge * w
        return value, grad

    start = np.clip(np.zeros(feats.shape[1]), lower, None)
    bounds = [(float(lo), None) if np.isfinite(lo) else (None, None) for lo in lower]
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(res.x, dtype=np.float64)


class ClassConfidence:
    """Per-predicted-class calibration of the top probability, so that it estimates P(correct).

    The stacker's probabilities are calibrated on average, not per predicted class: an easy class and a
    confusable one with the same score are not equally often right, so one global "most confident first"
    ranking mixes them. This fits, on out-of-fold stack predictions, a logistic model of "top label is
    correct" on [1, logit p₁, log p₁/p₂] — one global curve plus per-class deviations under a ridge penalty
    (``shrink``), so small classes stay close to the global curve. Slopes are kept ≥ 0, so within a class
    the confidence never decreases when the stacker grows more certain. ``transform`` sets the top
    probability to the calibrated value and rescales the others to sum to one, keeping their order and the
    top label.
    """

    def __init__(self, n_classes: int, shrink: float = 30.0) -> None:
        self.n_classes = n_classes
        self.shrink = shrink
        self.global_w = np.zeros(3)
        self.class_w = np.zeros((n_classes, 3))
        self.n_fit = np.zeros(n_classes, dtype=int)

    def fit(self, proba: np.ndarray, y: np.ndarray) -> ClassConfidence:
        top, feats = _confidence_features(proba)
        correct = (top == y).astype(np.float64)
        no_lower = np.array([-np.inf, 0.0, 0.0])
        if 0 < correct.sum() < len(correct):
            self.global_w = _fit_logistic(feats, correct, np.zeros(len(correct)), 1e-3, no_lower)
        else:  # all right or all wrong: nothing to learn beyond the rate
            rate = np.clip(correct.mean() if len(correct) else 0.5, 1e-3, 1 - 1e-3)
            self.global_w = np.array([np.log(rate / (1 - rate)), 0.0, 0.0])
        lower = -self.global_w
        lower[0] = -np.inf
        for c in range(self.n_classes):
            rows = top == c
            self.n_fit[c] = int(rows.sum())
            if not rows.any():
                continue
            offset = feats[rows] @ self.global_w
            self.class_w[c] = _fit_logistic(feats[rows], correct[rows], offset, self.shrink, lower)
        return self

    def confidence(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probability that each row's top label is correct."""
        top, feats = _confidence_features(proba)
        z = np.einsum("ij,ij->i", feats, self.global_w + self.class_w[top])
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def transform(self, proba: np.ndarray) -> np.ndarray:
        if not len(proba):
            return proba
        q = self.confidence(proba)
        rows = np.arange(len(proba))
        order = np.argsort(-proba, axis=1, kind="stable")
        top = order[:, 0]
        p1 = proba[rows, top]
        rest = 1.0 - p1
        if proba.shape[1] > 1:
            # The top label stays on top: q ≥ the runner-up after rescaling, p₂·(1 − q)/(1 − p₁).
            p2 = proba[rows, order[:, 1]]
            floor = np.where(rest > 1e-12, p2 / np.maximum(rest + p2, 1e-300), 0.0)
            q = np.maximum(q, np.minimum(floor * (1 + 1e-9), 1.0))
        out = proba.copy()
        scale = np.where(rest > 1e-12, (1.0 - q) / np.maximum(rest, 1e-300), 0.0)
        out *= scale[:, None]
        out[rows, top] = q
        spread = (rest <= 1e-12) & (proba.shape[1] > 1)
        if spread.any():  # the stacker gave the rest nothing: share 1 − q evenly
            out[spread] = ((1.0 - q[spread]) / (proba.shape[1] - 1))[:, None]
            out[rows[spread], top[spread]] = q[spread]
        return np.asarray(out / out.sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------- model


def _member_names(config: ClassifierConfig) -> tuple[str, ...]:
    """Stack members in order: the sparse ones of the config, then "emb" when an encoder is configured.

    A fine-tuned encoder (``config.fine_tune``) is not a stack member: its probabilities are mixed with the stack's.
    """
    return tuple(config.members) + (("emb",) if config.encoder and not config.fine_tune else ())


def _fortran_weights(member: Any) -> None:
    """Store a linear member's weights column-major once: scikit-learn's sparse × dense.T product otherwise
    copies the (classes × features) matrix on every call, which dominated single-order latency."""
    for name in ("coef_", "feature_log_prob_"):
        value = getattr(member, name, None)
        if isinstance(value, np.ndarray) and not value.flags.f_contiguous:
            setattr(member, name, np.asfortranarray(value))


# --------------------------------------------------------------------------- fast prediction

# The fast path is kept only when it reproduces scikit-learn's probabilities on probe texts to this tolerance.
_FAST_ATOL = 1e-9
# Texts per sparse matrix on the fast path; a larger call is taken in chunks of this many. Since the n-grams are looked
# up as integers (``_NgramKeys``) the fast path is the quicker at every batch size (bench_classifier_predict.py).
_FAST_CHUNK = 256


class _FastBlock:
    """One fitted ``TfidfVectorizer`` applied to a batch of documents, without scikit-learn's per-call overhead.

    The same steps as scikit-learn 1.9's ``TfidfVectorizer.transform`` for this module's configurations (no
    preprocessing, char n-grams over white-space-squeezed text or ``_word_analyzer_tokens`` word n-grams joined by a
    space, counts of in-vocabulary n-grams, ``1 + log(tf)``, × idf, row L2 norm with squares summed in double in
    column order), then ``_Features._join``'s block scale. The result is the block's matrix: sorted column indices
    and values in the vectorizer's dtype, equal to the reference's. The n-grams of all the batch's texts are looked
    up together (``_NgramKeys.count``).
    """

    def __init__(self, vec: Any, scale: float | None) -> None:
        self.char = vec.analyzer == "char"
        self.tokenizer = vec.tokenizer
        self.min_n, self.max_n = (int(n) for n in vec.ngram_range)
        self.vocabulary: Mapping[str, int] = vec.vocabulary_
        self.width = len(vec.vocabulary_)
        self.idf: np.ndarray | None = vec.idf_ if vec.use_idf else None
        self.sublinear = bool(vec.sublinear_tf)
        self.dtype = np.dtype(vec.dtype)
        self.white_spaces = vec._white_spaces
        self.scale = scale
        # The n-grams looked up as integers (``_NgramKeys``); None: by their strings.
        self.keys: _NgramKeys | None
        if isinstance(vec.vocabulary_, _Vocabulary):
            self.keys = vec.vocabulary_.ngrams
        else:
            try:
                self.keys = _NgramKeys(vec.vocabulary_, self.min_n, self.max_n, char=self.char)
            except ValueError:
                self.keys = None

    @staticmethod
    def covers(vec: Any) -> bool:
        """Whether ``vec`` is a fitted vectorizer whose transform this class reproduces."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        from cityhub.nlp.vectorizers import CharTfidfVectorizer, WordTfidfVectorizer

        # The NumPy-counting vectorizers differ in their fit only.
        if type(vec) not in (TfidfVectorizer, CharTfidfVectorizer, WordTfidfVectorizer) or not isinstance(
            getattr(vec, "vocabulary_", None), (dict, _Vocabulary)
        ):
            return False
        plain = (
            vec.input == "content"
            and vec.preprocessor is None
            and vec.strip_accents is None
            and not vec.lowercase
            and not vec.binary
            and vec.norm == "l2"
            and vec.stop_words is None
            and np.dtype(vec.dtype) in (np.dtype(np.float32), np.dtype(np.float64))
        )
        analyzer = (vec.analyzer == "char" and vec.tokenizer is None) or (
            vec.analyzer == "word" and vec.tokenizer is _word_analyzer_tokens
        )
        return bool(plain and analyzer and (not vec.use_idf or isinstance(getattr(vec, "idf_", None), np.ndarray)))

    def _units(self, text: str) -> np.ndarray | None:
        """The text's unit numbers for the integer look-up; None: look it up by its n-grams' strings."""
        if self.keys is None:
            return None
        if self.char:
            return self.keys.text_units(self.white_spaces.sub(" ", text))
        return self.keys.word_units(self.tokenizer(text))

    def _string_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The sorted vocabulary columns of the text's n-grams and how often each occurs, by dictionary look-ups."""
        get = self.vocabulary.get
        return np.unique(
            np.asarray([j for g in self.grams(text) if (j := get(g)) is not None], dtype=np.intp), return_counts=True
        )

    def counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The texts' n-gram counts as CSR parts: ``indptr`` over the texts, each text's vocabulary columns
        (ascending) and how often each occurs."""
        units = [self._units(t) for t in texts]
        if self.keys is not None and all(u is not None for u in units):
            return self.keys.count(units)  # type: ignore[arg-type]
        parts = [
            self._string_counts(t) if u is None else self.keys.count([u])[1:]  # type: ignore[union-attr]
            for t, u in zip(texts, units, strict=True)
        ]
        indptr = np.zeros(len(parts) + 1, dtype=np.intp)
        np.cumsum([len(idx) for idx, _ in parts], out=indptr[1:])
        if not parts:
            return indptr, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        return indptr, np.concatenate([idx for idx, _ in parts]), np.concatenate([c for _, c in parts])

    def grams(self, text: str) -> list[str]:
        """The analyzer's n-grams (``_char_ngrams`` / ``_word_ngrams`` without stop words), in any order."""
        min_n, max_n = self.min_n, self.max_n
        if self.char:
            seq: Any = self.white_spaces.sub(" ", text)
            join = None
        else:
            seq = self.tokenizer(text)
            join = " ".join
            if max_n == 1:
                return list(seq)
        out: list[str] = list(seq) if min_n == 1 else []
        length = len(seq)
        for n in range(max(min_n, 2), min(max_n, length) + 1):
            if join is None:
                out += [seq[i : i + n] for i in range(length - n + 1)]
            else:
                out += [join(seq[i : i + n]) for i in range(length - n + 1)]
        return out

    def matrix(self, texts: Sequence[str]) -> csr_matrix:
        """The block's rows of the texts: sorted column indices and values in the vectorizer's dtype, equal to the
        reference's."""
        indptr, idx, counts = self.counts(texts)
        data = counts.astype(self.dtype)
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[idx]
        # inplace_csr_row_normalize_l2: each square in the data's precision, summed in double in column order —
        # which is how a weighted bincount adds each row's entries up, one after the other.
        if len(data):
            entries = np.diff(indptr)
            squares = (data * data).astype(np.float64)
            totals = np.bincount(np.repeat(np.arange(len(texts)), entries), weights=squares, minlength=len(texts))
            norms = np.sqrt(totals)
            norms[totals == 0.0] = 1.0
            data = (data.astype(np.float64) / np.repeat(norms, entries)).astype(self.dtype)
        if self.scale is not None:
            data = data * self.scale
        return csr_matrix((data, idx, indptr), shape=(len(texts), self.width))


class _IntTable:
    """Positive integer keys → values, looked up many at a time in NumPy: an open-addressing hash table (Fibonacci
    hashing, linear probing, at most half full), so that a look-up is about one memory access, independent of
    the others, where a binary search over 200,000 sorted keys makes eighteen, each waiting for the last."""

    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        bits = max(4, int(np.ceil(np.log2(2 * max(len(keys), 1)))))
        self.shift = np.uint64(64 - bits)
        self.mask = (1 << bits) - 1
        self.keys = np.zeros(1 << bits, dtype=np.int64)  # 0: an empty slot
        self.values = np.full(1 << bits, -1, dtype=np.int32 if len(keys) < 2**31 else np.intp)
        if len(keys) and (keys <= 0).any():
            raise ValueError("keys must be positive")
        slot = self._slots(keys)
        pending = np.arange(len(keys))
        while len(pending):
            # Of the keys wanting an empty slot, the first one takes it; the others, and those that found the slot
            # taken, try the next slot.
            free = np.flatnonzero(self.keys[slot[pending]] == 0)
            _, first = np.unique(slot[pending[free]], return_index=True)
            placed = pending[free[first]]
            self.keys[slot[placed]] = keys[placed]
            self.values[slot[placed]] = values[placed]
            waiting = np.ones(len(pending), dtype=bool)
            waiting[free[first]] = False
            pending = pending[waiting]
            slot[pending] = (slot[pending] + 1) & self.mask

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * self._MULTIPLIER) >> self.shift).astype(np.intp)

    def get_one(self, key: int) -> int:
        """One key's value (-1: not in the table), in plain Python: for one look-up NumPy's per-call cost is the
        larger."""
        at = ((key * int(self._MULTIPLIER)) & 0xFFFF_FFFF_FFFF_FFFF) >> int(self.shift)
        while True:
            found = int(self.keys[at])
            if found == key:
                return int(self.values[at])
            if found == 0:
                return -1
            at = (at + 1) & self.mask

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Each key's value; -1 for a key the table has not got."""
        at = self._slots(keys)
        found = self.keys[at]
        out = np.where(found == keys, self.values[at], -1)
        # A slot holding another key: the next one may hold this key (a few keys in a hundred go on).
        pending = np.flatnonzero((found != keys) & (found != 0))
        at = at[pending]
        while len(pending):
            at = (at + 1) & self.mask
            found = self.keys[at]
            hit = found == keys[pending]
            out[pending[hit]] = self.values[at[hit]]
            probing = ~hit & (found != 0)
            pending, at = pending[probing], at[probing]
        return out


class _NgramKeys:
    """A vectorizer's n-grams as integers, so that a text's n-grams are looked up in NumPy, not one by one.

    Each unit (a character of a char vocabulary, a word of a word vocabulary) gets a number 1 … K-1, 0 being a unit
    the vocabulary has not got, so that no n-gram with it is in the vocabulary; an n-gram u₁…uₙ is the number
    Σ uᵢ·K^(n-i), and n-grams of different lengths never share a number (a longer one is at least K^(n-1)). A text's
    n-grams are shifted sums over its units' numbers, found in a hash table of the vocabulary's numbers
    (:class:`_IntTable`): the same columns, as often, as the vectorizer's dictionary look-ups of the n-grams' strings.
    ``ValueError`` for a vocabulary this cannot represent (an entry that does not split into 1 … max_n units).
    """

    def __init__(self, vocabulary: dict[str, int], min_n: int, max_n: int, *, char: bool) -> None:
        # The entries' units one after the other, as NumPy arrays, not a Python list per entry: loading an artefact
        # that holds the vocabulary as a dictionary (format 6 and before) otherwise made ~1.5 million short-lived
        # objects, whose memory the process kept (tens of MB) after they were gone.
        if char:
            lengths = np.fromiter(map(len, vocabulary), dtype=np.int64, count=len(vocabulary))
            points = np.frombuffer("".join(vocabulary).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            distinct, unit_of = np.unique(points, return_inverse=True)
            units = [chr(p) for p in distinct.tolist()]  # in code point order, which is the strings' order
        else:
            lengths = np.fromiter((g.count(" ") + 1 for g in vocabulary), dtype=np.int64, count=len(vocabulary))
            parts = " ".join(vocabulary).split(" ")
            # Fresh strings (not the parts', scattered among the short-lived ones), in sorted order.
            units = [u.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass") for u in sorted(set(parts))]
            number = {u: i for i, u in enumerate(units)}
            unit_of = np.fromiter(map(number.__getitem__, parts), dtype=np.int64, count=len(parts))
            del parts
        if (len(lengths) and (lengths.min() < min_n or lengths.max() > max_n)) or "" in units:
            raise ValueError("vocabulary entries that are not n-grams of single units")
        self.base = len(units) + 1
        if self.base**max_n >= 2**62:
            raise ValueError("too many units for integer n-gram keys")
        self.min_n, self.max_n = min_n, max_n
        self.char = char
        self.units = units  # unit number i is units[i - 1]
        self.number = {u: i for i, u in enumerate(units, start=1)}
        # An entry u₁…uₙ is Σ uᵢ·K^(n-i): each unit's number times K to the power of the units after it in its entry.
        ends = np.cumsum(lengths)
        after = np.repeat(ends, lengths) - 1 - np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
        powers = np.asarray([self.base**i for i in range(max_n)], dtype=np.int64)
        terms = (np.asarray(unit_of, dtype=np.int64).reshape(-1) + 1) * powers[after]
        keys = np.add.reduceat(terms, ends - lengths) if len(lengths) else np.zeros(0, dtype=np.int64)
        self.size = len(lengths)
        self.columns = _IntTable(keys, np.fromiter(vocabulary.values(), dtype=np.intp, count=len(lengths)))
        # Char blocks: code point → character number (0 for every character the vocabulary has not got), as an array
        # over the Basic Multilingual Plane and a dictionary beyond it (an emoji in the vocabulary would otherwise make
        # the array 9 MB).
        bmp = [u for u in units if ord(u) < 0x10000] if char else []
        self.table = np.zeros(max((ord(u) for u in bmp), default=0) + 1 if char else 0, dtype=np.int64)
        for u in bmp:
            self.table[ord(u)] = self.number[u]
        self.beyond = {ord(u): self.number[u] for u in units if ord(u) >= 0x10000} if char else {}

    def column(self, gram: str) -> int:
        """The vocabulary column of one n-gram's string (-1: not in the vocabulary), as the vocabulary's dictionary
        would answer: a string splits into one sequence of units, and a sequence of units has one number."""
        parts = list(gram) if self.char else gram.split(" ")
        if not self.min_n <= len(parts) <= self.max_n:
            return -1
        key = 0
        for u in parts:
            number = self.number.get(u)
            if number is None:
                return -1
            key = key * self.base + number
        return self.columns.get_one(key)

    def unit_numbers(self) -> np.ndarray:
        """Each column's n-gram as its unit numbers, (columns, max_n), right-aligned: a shorter n-gram has 0 (no unit)
        before its first unit."""
        table = self.columns
        filled = table.keys != 0
        keys = np.zeros(self.size, dtype=np.int64)
        keys[table.values[filled]] = table.keys[filled]
        out = np.zeros((self.size, self.max_n), dtype=np.int64)
        for place in range(self.max_n - 1, -1, -1):
            keys, out[:, place] = np.divmod(keys, self.base)
        return out

    def grams(self) -> Iterator[str]:
        """The vocabulary's n-gram strings in column order, made as they are asked for."""
        join = "".join if self.char else " ".join
        units = ["", *self.units]
        numbers = self.unit_numbers()
        for start in range(0, self.size, 4096):
            for row in numbers[start : start + 4096].tolist():
                yield join([units[u] for u in row if u])

    def text_units(self, text: str) -> np.ndarray:
        """The character numbers of ``text`` (white space already squeezed), 0 for a character not in the
        vocabulary."""
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.zeros(len(points), dtype=np.int64)
        inside = points < len(self.table)
        ids[inside] = self.table[points[inside]]
        if self.beyond and not inside.all():
            for i in np.flatnonzero(points >= 0x10000):
                ids[i] = self.beyond.get(int(points[i]), 0)
        return ids

    def word_units(self, tokens: list[str]) -> np.ndarray | None:
        """The word numbers of ``tokens``; None when a token holds a space (its string could match an n-gram entry of
        the vocabulary: the caller looks such a text up by strings)."""
        if any(" " in t for t in tokens):
            return None
        return np.fromiter(map(self.number.get, tokens, repeat(0)), dtype=np.int64, count=len(tokens))

    def count(self, texts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The n-grams of texts given as unit numbers, looked up all at once: CSR ``indptr`` over the texts, each
        text's vocabulary columns (ascending) and how often each occurs."""
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        indptr = np.zeros(len(texts) + 1, dtype=np.intp)
        if not self.size or not lengths.sum():
            return indptr, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        # The texts one after the other, a 0 after each, so that no n-gram runs from one text into the next.
        ids = np.zeros(int(lengths.sum()) + len(texts), dtype=np.int64)
        ends = np.cumsum(lengths + 1) - 1
        for text, end, length in zip(texts, ends.tolist(), lengths.tolist(), strict=True):
            ids[end - length : end] = text
        text_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths + 1)
        # Units from each position to the next one the vocabulary has not got: an n-gram is known if it ends before.
        positions = np.arange(len(ids))
        next_absent = np.minimum.accumulate(np.where(ids == 0, positions, len(ids))[::-1])[::-1]
        known_run = next_absent - positions
        keys, owners = [], []
        for n in range(self.min_n, self.max_n + 1):
            key = ngram_numbers(ids, n, self.base)
            known = known_run[: len(key)] >= n
            keys.append(key[known])
            owners.append(text_of[: len(key)][known])
        column = self.columns.get(np.concatenate(keys))
        hit = column >= 0
        # One number per (text, column): sorted, a run of equal numbers is the text's count of the column.
        pairs, counts = np.unique(np.concatenate(owners)[hit] * self.size + column[hit], return_counts=True)
        owner, columns = np.divmod(pairs, self.size)
        np.cumsum(np.bincount(owner, minlength=len(texts)), out=indptr[1:])
        return indptr, columns.astype(np.intp), counts


class _Vocabulary(Mapping[str, int]):
    """A fitted vectorizer's ``vocabulary_`` (n-gram string → column) answered from the integer n-gram table the fast
    path looks texts up in (:class:`_NgramKeys`) instead of a dictionary of its strings: the same answers, so
    scikit-learn's ``transform`` (the reference path) reads it as it reads the dictionary, but no Python string per
    n-gram. The default model's two dictionaries (666,000 entries) held ~100 MB of each process that loaded it,
    beside tables that already knew every column, and unpickling their strings was most of the load time
    (``bench/results/classifier_memory.md``). Iterates in column order; a string look-up costs about a microsecond,
    which only the reference path pays."""

    def __init__(self, ngrams: _NgramKeys) -> None:
        self.ngrams = ngrams  # not "keys": Mapping's keys() is a method

    def __getitem__(self, gram: str) -> int:
        column = self.ngrams.column(gram) if isinstance(gram, str) else -1
        if column < 0:
            raise KeyError(gram)
        return column

    def __len__(self) -> int:
        return self.ngrams.size

    def __iter__(self) -> Iterator[str]:
        return self.ngrams.grams()


class _FastMember:
    """A stack member as a linear function of its sparse input: ``x · W.T + b``.

    LinearSVC, SGDClassifier and LogisticRegression score by ``decision_function``; ComplementNB's log-probabilities
    are ``x · feature_log_prob_.T`` minus a per-row normaliser, which ``_member_scores``' centring cancels. ``W`` is
    the member's own fitted array (column-major, see ``_fortran_weights``), never a copy.
    """

    def __init__(self, model: Any, block: int | None) -> None:
        from sklearn.naive_bayes import ComplementNB

        self.nb = type(model) is ComplementNB
        self.weights: np.ndarray = model.feature_log_prob_ if self.nb else model.coef_
        self.intercept: np.ndarray | None = None if self.nb else np.asarray(model.intercept_)
        self.prior: np.ndarray | None = model.class_log_prior_ if self.nb and len(model.classes_) == 1 else None
        self.classes = np.asarray(model.classes_, dtype=int)
        self.block = block  # index of the one block read, or None: all blocks joined

    @staticmethod
    def covers(model: Any, width: int) -> bool:
        from sklearn.linear_model import LogisticRegression, SGDClassifier
        from sklearn.naive_bayes import ComplementNB
        from sklearn.svm import LinearSVC

        if type(model) is ComplementNB:
            weights = getattr(model, "feature_log_prob_", None)
            # Centring cancels predict_log_proba's normaliser only up to double rounding.
            if not isinstance(weights, np.ndarray) or weights.dtype != np.float64:
                return False
        elif type(model) in (LinearSVC, SGDClassifier, LogisticRegression, NBLinearSVC):
            weights = getattr(model, "coef_", None)
            if not isinstance(getattr(model, "intercept_", None), np.ndarray):
                return False
        else:
            return False
        return isinstance(weights, np.ndarray) and weights.ndim == 2 and weights.shape[1] == width

    def scores(self, x: csr_matrix, n_classes: int) -> np.ndarray:
        """``_member_scores`` of the rows of ``x`` (the member's input block): (rows, n_classes)."""
        # scipy's csr × dense in the product's precision (an SGD member's weights are float32: so are its scores);
        # W column-major makes W.T the C-ordered array the product reads without a copy.
        raw = np.asarray(x @ self.weights.T)
        if self.nb:
            if self.prior is not None:
                raw += self.prior
            raw = raw - raw.mean(axis=1, keepdims=True)
        else:
            raw = raw + self.intercept
            if raw.shape[1] == 1:  # binary: decision_function's one score per row
                raw = raw[:, 0]
        return _full_scores(raw, self.classes, n_classes)


class _FastPath:
    """``Model.predict_proba``'s stack probabilities computed directly from the fitted arrays.

    Covers the default sparse model: char (and word) TF-IDF blocks, no title block, no encoder, members of the
    linear forms ``_FastMember`` knows, a ``LogisticRegression`` stacker. Holds references to the model's own
    vocabularies and weights (a few small arrays of its own). ``build`` returns None for anything else, and for a
    model on which it does not reproduce the scikit-learn path on probe texts; the model then predicts through
    scikit-learn, which stays the reference.
    """

    def __init__(self, model: Model) -> None:
        features = model.features
        vectorizers = [features.char] + ([features.word] if features.word is not None else [])
        scales = _block_scales([1.0] * len(vectorizers)) if len(vectorizers) > 1 else [None]
        self.vectorizers = vectorizers
        self.blocks: list[_FastBlock] = []
        for vec, scale in zip(vectorizers, scales, strict=True):
            self.blocks.append(_FastBlock(vec, scale))
        names = ["char", "word"]
        self.members = [
            _FastMember(m, names.index(name.partition(":")[2]) if name.partition(":")[2] else None)
            for name, m in zip(model.member_names, model.members, strict=True)
        ]
        self.n_classes = len(model.labels)
        comb = model.combiner
        self.comb_coef: np.ndarray = comb.coef_
        self.comb_intercept: np.ndarray = comb.intercept_
        self.comb_binary = len(comb.classes_) <= 2

    @classmethod
    def build(cls, model: Model) -> _FastPath | None:
        from sklearn.linear_model import LogisticRegression

        features = model.features
        if model.encoder is not None or features.needs_titles:
            return None
        vectorizers = [features.char] + ([features.word] if features.word is not None else [])
        if not all(_FastBlock.covers(v) for v in vectorizers):
            return None
        widths = {"char": len(features.char.vocabulary_)}
        if features.word is not None:
            widths["word"] = len(features.word.vocabulary_)
        for name, member in zip(model.member_names, model.members, strict=True):
            block = name.partition(":")[2]
            if name == "emb" or (block and block not in widths):
                return None
            if not _FastMember.covers(member, widths[block] if block else sum(widths.values())):
                return None
        comb = model.combiner
        if type(comb) is not LogisticRegression or not isinstance(getattr(comb, "coef_", None), np.ndarray):
            return None
        # The objects look like what the fast path reproduces; check it does on probe texts (an artefact from another
        # scikit-learn whose objects compute differently, say), or predict through scikit-learn.
        try:
            fast = cls(model)
            probe = [*fast._probe_texts(), ""]
            norm = [model.form(t) for t in probe]
            same = np.allclose(fast.stack(norm)[0], model._sklearn_stack(norm, probe)[0], rtol=0, atol=_FAST_ATOL)
        except Exception as exc:  # any surprise in these objects: the reference path still works
            _log.warning("classifier fast path disabled: %s", exc)
            return None
        if not same:
            _log.warning("classifier fast path disabled: it does not reproduce scikit-learn's probabilities here")
            return None
        return fast

    def _probe_texts(self) -> list[str]:
        """Texts made of the first entries of each vocabulary, so every block and member has nonzero input."""
        from itertools import islice

        parts = [
            "".join(islice(b.vocabulary, 40)) if b.char else "".join(islice(b.vocabulary, 12)) for b in self.blocks
        ]
        return ["".join(parts), parts[-1] + "。" + parts[0][:20]]

    def features(self, texts: Sequence[str]) -> list[csr_matrix]:
        """Each block's rows of the texts."""
        return [b.matrix(texts) for b in self.blocks]

    def matrices(self, blocks: list[csr_matrix]) -> dict[int | None, csr_matrix]:
        """The members' inputs from the blocks: the joined features (key None) and, for members reading one block,
        that block."""
        out: dict[int | None, csr_matrix] = {}
        for member in self.members:
            if member.block not in out:
                out[member.block] = blocks[member.block] if member.block is not None else hstack(blocks, format="csr")
        return out

    def stack(self, texts: Sequence[str]) -> tuple[np.ndarray, csr_matrix]:
        """The stacker's ``predict_proba`` over the members' scores of normalised texts, and their char block (their
        known char n-grams)."""
        blocks = self.features(texts)
        inputs = self.matrices(blocks)
        scores = [member.scores(inputs[member.block], self.n_classes) for member in self.members]
        # LogisticRegression.predict_proba: expit of the one decision column, or softmax.
        decision = np.hstack(scores) @ self.comb_coef.T + self.comb_intercept
        if self.comb_binary:
            from scipy.special import expit

            p = expit(decision.reshape(-1))
            return np.stack([1 - p, p], axis=1), blocks[0]
        decision -= decision.max(axis=1).reshape(-1, 1)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1).reshape(-1, 1)
        return decision, blocks[0]


class Model:
    """A trained classifier; ``predict`` takes raw order texts (title and content joined)."""

    def __init__(
        self,
        *,
        config: ClassifierConfig,
        labels: list[str],
        features: _Features,
        members: list[Any],
        combiner: Any,
        meta: dict[str, Any] | None = None,
        encoder: Any | None = None,
        confidence: ClassConfidence | None = None,
        form: JoinedForm | None = None,
        tuned: TunedHead | None = None,
        tuned_weight: float = 1.0,
    ) -> None:
        if config.encoder and encoder is None:
            raise ValidationFailed(f"model uses encoder '{config.encoder}' but none was given")
        if config.fine_tune and tuned is None:
            raise ValidationFailed("model is configured with a fine-tuned encoder but has none")
        self.config = config
        self.labels = labels
        self.features = features
        self.members = members
        self.combiner = combiner
        self.encoder = encoder
        # None: the stacker's probabilities as they are (artefacts before format 3, or confidence="none").
        self.confidence = confidence
        # How texts are normalised before their features; plain ``normalize`` for artefacts before format 4.
        self.form = form or JoinedForm()
        # The fine-tuned encoder member and the stack's weight in the mix (``finetune.mix``, ``config.fine_tune_mix``).
        self.tuned = tuned
        self.tuned_weight = tuned_weight
        self.meta: dict[str, Any] = meta or {}
        for member in members:
            _fortran_weights(member)
        # Which char-block columns count as evidence (``evidence``), made by ``_keep_what_prediction_reads``.
        self._evidence_mask: np.ndarray | None = None
        # The default sparse model predicts without scikit-learn's per-call overhead (~5x cheaper for one order);
        # anything else, through scikit-learn (``_sklearn_stack``).
        self._fast: _FastPath | None = _FastPath.build(self)
        self._keep_what_prediction_reads()

    def _keep_what_prediction_reads(self) -> None:
        """Hold each vocabulary the fast path looks up as integers by those integers only (``_Vocabulary``, in place
        of the dictionary of its strings), and drop the counts only ComplementNB's fit reads. The default model
        trained on dev/ then holds ~140 MB less in each process that loads it, and predicts the same
        (``bench/results/classifier_memory.md``)."""
        from sklearn.naive_bayes import ComplementNB

        for member in self.members:
            if type(member) is ComplementNB:  # prediction reads feature_log_prob_ (and class_log_prior_)
                for name in ("feature_count_", "feature_all_"):
                    if hasattr(member, name):
                        delattr(member, name)
        if self._fast is not None:  # else scikit-learn predicts: its look-ups by dictionary stay the quick ones
            for block, vec in zip(self._fast.blocks, self._fast.vectorizers, strict=True):
                if block.keys is not None and not isinstance(vec.vocabulary_, _Vocabulary):
                    vec.vocabulary_ = block.vocabulary = _Vocabulary(block.keys)
        self._informative_columns()  # what every prediction reads, made now: its working memory goes with load's

    @property
    def member_names(self) -> tuple[str, ...]:
        return _member_names(self.config)

    def _stack_input(self, x: csr_matrix, emb: np.ndarray | None) -> np.ndarray:
        k = len(self.labels)
        return np.hstack(
            [
                _member_scores(m, _member_input(name, self.features, x, emb), k)
                for name, m in zip(self.member_names, self.members, strict=True)
            ]
        )

    def predict_proba(self, texts: Sequence[str], *, reference: bool = False) -> np.ndarray:
        """Calibrated probabilities, shape (len(texts), len(labels)), columns in ``labels`` order.

        Through the fast path when the model has one, else scikit-learn's; ``reference`` forces scikit-learn (tests,
        benchmarks). Same probabilities.
        """
        return self._read(texts, reference=reference)[0]

    def _read(self, texts: Sequence[str], *, reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``predict_proba`` and ``evidence``, from one computation of the texts' features."""
        if not len(texts):
            return np.zeros((0, len(self.labels))), np.zeros(0, dtype=np.int64)
        norm = [self.form(t) for t in texts]
        if self._fast is not None and not reference:
            chunks = [self._fast.stack(norm[i : i + _FAST_CHUNK]) for i in range(0, len(norm), _FAST_CHUNK)]
            proba = np.vstack([p for p, _ in chunks])
            evidence = np.concatenate([self._count_evidence(char) for _, char in chunks])
        else:
            proba, char = self._sklearn_stack(norm, texts)
            evidence = self._count_evidence(char)
        full = np.zeros((len(texts), len(self.labels)))
        full[:, np.asarray(self.combiner.classes_, dtype=int)] = proba
        full /= full.sum(axis=1, keepdims=True)
        if self.tuned is not None:
            from cityhub.nlp.finetune import mix

            full = mix(full, self.tuned.proba(self.encoder, norm), self.tuned_weight, self.config.fine_tune_mix)
        return (self.confidence.transform(full) if self.confidence is not None else full), evidence

    def _sklearn_stack(self, norm: Sequence[str], texts: Sequence[str]) -> tuple[np.ndarray, csr_matrix]:
        """The stacker's probabilities (``combiner.classes_`` columns) through scikit-learn — the reference path — and
        the texts' char block (their known char n-grams)."""
        import sklearn

        # The matrices are this model's own TF-IDF features and fitted members: sklearn's checks of finiteness and of
        # parameters find nothing here, and cost ~0.7 ms of a ~6 ms prediction for one order (thread-local setting).
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            titles = [title_of(t, self.form) for t in texts] if self.features.needs_titles else None
            x = self.features.transform(norm, titles)
            emb = self.encoder.encode(norm) if self.encoder is not None and "emb" in self.member_names else None
            proba = np.asarray(self.combiner.predict_proba(self._stack_input(x, emb)), dtype=np.float64)
            return proba, x[:, self.features.columns("char")].tocsr()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Most likely category with its probability, the three best candidates and the evidence, per text."""
        proba, evidence = self._read(texts)
        # A char vocabulary without n-grams of two or more characters (char_ngrams=(1, 1)) cannot measure it.
        measured = bool(self._informative_columns().any())
        out: list[Prediction] = []
        best = np.argsort(-proba, axis=1, kind="stable")[:, :3]
        for row, order, known in zip(proba.tolist(), best.tolist(), evidence.tolist(), strict=True):
            top3 = [(self.labels[i], row[i]) for i in order]
            out.append(
                Prediction(
                    label=top3[0][0], probability=top3[0][1], top3=top3, evidence=int(known) if measured else None
                )
            )
        return out

    def evidence(self, texts: Sequence[str]) -> list[int]:
        """Per text, how many distinct phrases of it the model was trained on: its char n-grams of two or more
        characters, with a hanzi and no space, in the char vocabulary (``predict`` gives it with each prediction).

        The probabilities are calibrated on texts like the training data; on a text the model knows next to nothing
        of ("测试", "你好", "asdf", a greeting) they are the members' intercepts and priors, however high. Dispatch
        keeps such an order for a dispatcher (``CITYHUB_DISPATCH_MIN_EVIDENCE``, 3). A default model trained on
        ``dev/`` finds fewer than 3 in none of 881 held-out messages and of the 2,801 unseen ones of f2, in 0.2% of
        f2's titles alone, and in 9 of 10 greetings and test strings and all gibberish and English sentences written
        for the benchmark (``bench/results/classifier_evidence.md``). Fluent off-topic Chinese shares most of its
        phrases with real messages: this is no topic detector.
        """
        return [int(n) for n in self._read(texts)[1]]

    def _informative_columns(self) -> np.ndarray:
        """Which columns of the char block count as evidence (``_informative`` n-grams of two or more characters)."""
        if self._evidence_mask is None:
            vocabulary = self.features.char.vocabulary_
            if isinstance(vocabulary, _Vocabulary) and vocabulary.ngrams.char:
                # ``_informative`` is a test of each character: asked of the characters, not of 300,000 strings.
                keys = vocabulary.ngrams
                units = keys.unit_numbers()
                hanzi = np.array([False] + [_HANZI.search(u) is not None for u in keys.units])
                space = np.array([False] + [u.isspace() for u in keys.units])
                mask = ((units > 0).sum(axis=1) > 1) & hanzi[units].any(axis=1) & ~space[units].any(axis=1)
            else:
                mask = np.zeros(len(vocabulary), dtype=bool)
                for gram, column in vocabulary.items():
                    mask[column] = len(gram) > 1 and _informative(gram)
            self._evidence_mask = mask
        return self._evidence_mask

    def _count_evidence(self, known: csr_matrix) -> np.ndarray:
        """Per row of the char block, its informative columns."""
        mask = self._informative_columns()
        hits = np.concatenate([[0], np.cumsum(mask[known.indices], dtype=np.int64)])
        return hits[known.indptr[1:]] - hits[known.indptr[:-1]]

    def save(self, path: str | Path) -> Path:
        """Write the artefact directory (created if needed); returns its path.

        Each file is written beside its final name and moved into place (``os.replace``), the fitted objects before
        the metadata: a server reading the directory while ``nlp train --out`` rewrites it (a retrain into the live
        model's directory) sees the old files or the new ones, never a half-written one, and the metadata's change
        — what servers watch (``dispatch.service.load_model``) — comes last.
        """
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        blob = {
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "labels": self.labels,
            "features": self.features,
            "members": self.members,
            "combiner": self.combiner,
            "confidence": self.confidence,
            "form": self.form,
            "tuned": self.tuned,
            "tuned_weight": self.tuned_weight,
        }
        with _replacing(target / MODEL_FILE) as part, gzip.open(part, "wb", compresslevel=3) as fh:
            pickle.dump(blob, fh, protocol=5)
        (target / LEGACY_MODEL_FILE).unlink(missing_ok=True)  # retrained into an older artefact's directory
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "config": asdict(self.config),
            "feature_blocks": feature_blocks(self.config),
        }
        with _replacing(target / META_FILE) as part:
            part.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        return target


@contextmanager
def _replacing(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final``, moved over it when the block succeeds (removed when it fails)."""
    part = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        yield part
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)


def read_fitted(path: Path) -> dict[str, Any]:
    """The fitted objects of an artefact, from ``MODEL_FILE`` or an older artefact's ``LEGACY_MODEL_FILE``."""
    if path.name == LEGACY_MODEL_FILE:
        import joblib

        return dict(joblib.load(path))
    with gzip.open(path, "rb") as fh:
        return dict(pickle.load(fh))


def read_meta(path: str | Path) -> dict[str, Any]:
    """An artefact's metadata (``model.json``: configuration, training summary, evaluation), without its model."""
    meta_path = Path(path) / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{meta_path}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ValidationFailed(f"{meta_path}: unreadable (not a JSON object)")
    return meta


def load(path: str | Path) -> Model:
    """Load an artefact written by ``Model.save``; refuse other format versions with a clear error."""
    target = Path(path)
    if not target.exists():
        raise NotFound(f"{target}: model not found")
    model_path = next((target / f for f in (MODEL_FILE, LEGACY_MODEL_FILE) if (target / f).is_file()), None)
    if not (target / META_FILE).is_file() or model_path is None:
        raise ValidationFailed(f"{target}: not a classifier model (needs {META_FILE} and {MODEL_FILE})")
    meta = read_meta(target)
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValidationFailed(
            f"{target}: model format version {version!r} is not supported by this cityhub "
            f"(expects {FORMAT_VERSION}); retrain with `cityhub nlp train`"
        )
    cfg = dict(meta.get("config") or {})
    encoder = None
    if cfg.get("encoder"):
        # Checked before unpickling the fitted objects: a missing extra is the likely failure.
        from cityhub.nlp.encoder import get_encoder

        try:
            encoder = get_encoder(cfg["encoder"])
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"{target}: this model uses the sentence encoder '{cfg['encoder']}', which is not available "
                f"here: {exc.message}"
            ) from None
    blob = read_fitted(model_path)
    if blob.get("format_version") != version:
        raise ValidationFailed(f"{model_path}: format version mismatch with {META_FILE}")
    cfg = dict(blob["config"])
    if "confidence" not in cfg:  # before format 3: no calibration step, the stacker's probabilities
        cfg["confidence"] = "none"
        cfg.setdefault("title_weight", 0.0)
    cfg.setdefault("joined_form", False)  # before format 4: texts normalised only
    cfg.setdefault("fine_tune_mix", "mean")  # fine-tuned artefacts saved before the mix was a setting
    for key in ("char_ngrams", "word_ngrams", "members"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])
    model = Model(
        encoder=encoder,
        config=ClassifierConfig(**cfg),
        labels=list(blob["labels"]),
        features=blob["features"],
        members=list(blob["members"]),
        combiner=blob["combiner"],
        meta=meta,
        confidence=blob.get("confidence"),
        form=blob.get("form"),
        tuned=blob.get("tuned"),
        tuned_weight=float(blob.get("tuned_weight", 1.0)),
    )
    del blob
    _release_free_heap()
    return model


def _release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``). Loading frees more than it keeps —
    the unpickler's buffers, an older artefact's vocabulary dictionaries (``Model._keep_what_prediction_reads``) —
    and glibc keeps most of that freed memory in the process: 15 MB of a loaded default model, 65 MB of one loaded
    from format 6 (``bench/results/classifier_memory.md``). Under a millisecond there; nothing where the C library has
    no such call."""
    import ctypes

    with suppress(AttributeError, OSError, TypeError):
        ctypes.CDLL(None).malloc_trim(0)


# --------------------------------------------------------------------------- training


def _augment(
    records: Sequence[LabelledOrder], groups: np.ndarray
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Texts, labels, groups and an "is original" mask, with title-only copies appended."""
    texts = [r.text for r in records]
    labels = [r.category for r in records]
    extra = [i for i, r in enumerate(records) if r.title and r.content]
    texts += [records[i].title for i in extra]
    labels += [records[i].category for i in extra]
    all_groups = np.concatenate([groups, groups[extra]]) if extra else groups
    original = np.r_[np.ones(len(records), bool), np.zeros(len(extra), bool)]
    return texts, labels, all_groups, original


def _fit_combiner(scores: np.ndarray, y: np.ndarray, config: ClassifierConfig) -> Any:
    from sklearn.linear_model import LogisticRegression

    if config.combiner == "stack":
        return LogisticRegression(C=1.0, max_iter=1000).fit(scores, y)
    raise ValidationFailed(f"unknown combiner '{config.combiner}' (known: stack)")


def _stack_oof(
    oof: np.ndarray, y: np.ndarray, fold: np.ndarray, n_classes: int, config: ClassifierConfig
) -> np.ndarray:
    """Out-of-fold stack probabilities: per fold, the combiner refitted on the other folds' member scores."""
    proba = np.zeros((len(y), n_classes))
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        comb = _fit_combiner(oof[tr], y[tr], config)
        proba[np.ix_(te, np.asarray(comb.classes_, dtype=int))] = comb.predict_proba(oof[te])
    return proba


def _fit_confidence(proba: np.ndarray, y: np.ndarray, config: ClassifierConfig) -> ClassConfidence | None:
    if config.confidence == "none":
        return None
    if config.confidence == "class":
        return ClassConfidence(proba.shape[1], shrink=config.confidence_shrink).fit(proba, y)
    raise ValidationFailed(f"unknown confidence '{config.confidence}' (known: class, none)")


# What training took on two free cores (docs/operations.md §7, bench/README.md): 82 s for the 10,739 dev rows with
# 3 folds, ~8 s of it whatever the rows (9 s for 334); an encoder embeds ~30 new texts a second; fine-tuning took
# 26 min for those rows at 2 epochs.
def rough_training_seconds(rows: int, config: ClassifierConfig) -> float:
    """About how long :func:`train` takes on ``rows`` records with ``config`` on two free cores: what to tell the
    operator before its silence, not a promise (a busy machine takes longer; an embedding cache, less)."""
    seconds = (8 + 0.0069 * rows) * (config.folds + 1) / 4
    if config.encoder:
        seconds += rows / 30
    if config.fine_tune:
        seconds += 0.145 * rows * config.fine_tune_epochs / 2
    return seconds


def train(
    records: Sequence[LabelledOrder],
    *,
    config: ClassifierConfig | None = None,
    groups: np.ndarray | None = None,
    sources: Sequence[CsvReport] = (),
    evaluate_cv: bool = True,
    encoder: Any | None = None,
    on_start: Callable[[], None] | None = None,
) -> Model:
    """Fit a classifier on labelled orders; the label set is whatever the records carry.

    ``groups`` (near-duplicate group per record) is computed when not given. With ``evaluate_cv`` the
    model's metadata gets an evaluation report from grouped cross-validation of the stacked model on the
    members' out-of-fold scores. ``on_start`` is called once the records and the configuration are accepted, before
    the long work (``cityhub nlp train`` says then what it trains on: a refusal stays its one line).
    """
    config = config or ClassifierConfig()
    started = time.perf_counter()
    if not records:
        raise ValidationFailed("no labelled records to train on")
    if config.fine_tune:  # refused before any work: the stack alone takes a minute
        if not config.encoder:
            raise ValidationFailed("fine-tuning needs an encoder (ClassifierConfig.encoder, `--encoder m3e-small`)")
        from cityhub.nlp.finetune import MIXES, require_torch

        if config.fine_tune_mix not in MIXES:
            raise ValidationFailed(f"unknown fine-tune mix '{config.fine_tune_mix}' (known: {', '.join(MIXES)})")
        require_torch()
    if groups is None:
        groups = near_duplicate_groups([r.text for r in records], threshold=config.dedup_threshold)
    groups = np.asarray(groups)
    # A category with fewer distinct messages than folds cannot be learned and scored by the grouped CV (a fold
    # would train without it): it is left out and named in the summary, not allowed to drag the report down.
    distinct: dict[str, set[Any]] = {}
    for r, g in zip(records, groups, strict=True):
        distinct.setdefault(r.category, set()).add(g)
    scarce = {label: len(gs) for label, gs in sorted(distinct.items()) if len(gs) < config.folds}
    if scarce:
        keep = np.array([r.category not in scarce for r in records])
        records = [r for r, k in zip(records, keep, strict=True) if k]
        groups = groups[keep]
    labels = sorted({r.category for r in records})
    if len(labels) < 2:
        raise ValidationFailed(
            f"need at least 2 categories with {config.folds} or more distinct messages each to train; "
            f"distinct messages per category: { ({k: len(v) for k, v in sorted(distinct.items())}) }"
        )
    if on_start is not None:
        on_start()
    if config.title_augment:
        texts, y_labels, row_groups, original = _augment(records, groups)
    else:
        texts, y_labels = [r.text for r in records], [r.category for r in records]
        row_groups, original = groups, np.ones(len(records), bool)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in y_labels])
    form = JoinedForm.learn([r.text for r in records]) if config.joined_form else JoinedForm()
    norm_texts = [form(t) for t in texts]

    features = _Features(config)
    x = features.fit_transform(norm_texts, [title_of(t, form) for t in texts] if features.needs_titles else None)
    emb: np.ndarray | None = None
    encode_seconds = 0.0
    names = _member_names(config)
    if not config.encoder:
        encoder = None
    elif encoder is None:
        from cityhub.nlp.encoder import get_encoder

        encoder = get_encoder(config.encoder)
    if encoder is not None and "emb" in names:
        t0 = time.perf_counter()
        emb = encoder.encode(norm_texts)
        encode_seconds = time.perf_counter() - t0
    fold = _fold_ids(y, row_groups, config.folds, config.seed)
    k = len(labels)
    oof = np.zeros((len(y), k * len(names)))
    from joblib import Parallel, delayed

    inputs = {name: _member_input(name, features, x, emb) for name in names}

    def block(name: str) -> Any:
        return inputs[name]

    def fit(name: str, rows: np.ndarray | slice) -> Any:
        member = _make_member(name, config)
        if not _uses_liblinear(member):
            return member.fit(block(name)[rows], y[rows])
        with _LIBLINEAR_LOCK:
            return member.fit(block(name)[rows], y[rows])

    fold_ids = [int(f) for f in np.unique(fold)]
    jobs = [(f, m, name) for f in fold_ids for m, name in enumerate(names)]
    fitted = Parallel(n_jobs=config.n_jobs, prefer="threads")(
        [delayed(fit)(name, fold != f) for f, _, name in jobs] + [delayed(fit)(name, slice(None)) for name in names]
    )
    for (f, m, name), member in zip(jobs, fitted[: len(jobs)], strict=True):
        te = fold == f
        oof[te, m * k : (m + 1) * k] = _member_scores(member, block(name)[te], k)
    members = list(fitted[len(jobs) :])
    combiner = _fit_combiner(oof, y, config)
    # Calibrated on full messages (not the title-only copies), scored by stacks that never saw them.
    stacked = _stack_oof(oof, y, fold, k, config)
    confidence = _fit_confidence(stacked[original], y[original], config)
    tuned: TunedHead | None = None
    tuned_weight = 1.0
    tuned_report: dict[str, Any] | None = None
    if config.fine_tune:
        raw_form = np.array([not looks_segmented(t) for t in texts])  # before the joined form removes the spaces
        tuned, tuned_weight, confidence, tuned_report = _fine_tune(
            encoder, norm_texts, raw_form, y, original, fold, row_groups, stacked, labels, config
        )

    meta: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "libraries": _library_versions(),
        "training_data": {
            **_data_summary(records, groups, sources, n_augmented=int((~original).sum())),
            "left_out": scarce,  # category → its distinct messages, fewer than the folds
        },
        # The words dropped from raw texts (``JoinedForm``), most of them stop words; none without segmented rows.
        "joined_form": {"dropped_words": len(form.dropped), "sample": sorted(form.dropped)[:40]},
    }
    if evaluate_cv:
        meta["evaluation"] = _internal_evaluation(stacked, y, original, fold, texts, labels, config)
    if tuned_report is not None:
        # The model's own evaluation is the hold-out one of the mixed model; the stack's grouped CV stays beside it.
        if evaluate_cv:
            meta["evaluation_sparse_stack"] = meta["evaluation"]
            meta["evaluation"] = tuned_report.pop("evaluation")
        tuned_report.pop("evaluation", None)
        meta["fine_tune"] = tuned_report
    if encoder is not None:
        meta["encoder"] = {**encoder.describe(), "encode_seconds": round(encode_seconds, 2)}
    meta["feature_blocks"] = feature_blocks(config)
    meta["training_seconds"] = round(time.perf_counter() - started, 2)
    return Model(
        config=config,
        labels=labels,
        features=features,
        members=members,
        combiner=combiner,
        meta=meta,
        encoder=encoder,
        confidence=confidence,
        form=form,
        tuned=tuned,
        tuned_weight=tuned_weight,
    )


def _fine_tune(
    encoder: Any,
    texts: Sequence[str],
    raw_form: np.ndarray,
    y: np.ndarray,
    original: np.ndarray,
    fold: np.ndarray,
    groups: np.ndarray,
    stacked: np.ndarray,
    labels: list[str],
    config: ClassifierConfig,
) -> tuple[TunedHead, float, ClassConfidence | None, dict[str, Any]]:
    """The fine-tuned member, its weight in the mix, the confidence calibration of the mix, and a report.

    One fold of the stack's grouped folds is held out: the encoder is fine-tuned on the other folds' messages and
    scores the held-out ones, which the stack also scored out of fold; the mixing weight and the confidence
    calibration are fitted on those rows. Then the encoder is fine-tuned again on every message for the model.
    The report's evaluation is of the mix on the held-out rows, the calibration cross-fitted between two halves of
    them (near-duplicates kept together); the mixing weight (one number) was chosen on the same rows.
    """
    from cityhub.nlp.finetune import MIXES, FineTuner, FineTuneSettings, mix, mixing_weight

    started = time.perf_counter()
    rows = np.flatnonzero(original)  # full messages; title-only copies are left to the sparse members
    k = len(labels)
    tuner = FineTuner(
        encoder,
        [texts[int(i)] for i in rows],
        FineTuneSettings(
            layers=config.fine_tune_layers, epochs=config.fine_tune_epochs, seed=config.seed, threads=config.n_jobs
        ),
    )
    y_rows, fold_rows = y[rows], fold[rows]
    held = fold_rows == fold_rows.min()
    first = tuner.fit(np.flatnonzero(~held), y_rows[~held], k)
    held_seconds = tuner.fit_seconds
    p_tuned = tuner.proba(first, np.flatnonzero(held))
    p_stack = stacked[rows][held]
    y_held = y_rows[held]
    how = config.fine_tune_mix
    weights = {name: mixing_weight(p_stack, p_tuned, y_held, name) for name in MIXES}
    mixes = {name: mix(p_stack, p_tuned, weights[name], name) for name in MIXES}
    w, mixed = weights[how], mixes[how]
    confidence = _fit_confidence(mixed, y_held, config)
    final = tuner.fit(np.arange(len(rows)), y_rows, k)

    half = groups[rows][held] % 2 == 0
    calibrated = {}
    # "mixed" is the model's own mix; the other one (``mixed_geometric`` or ``mixed_mean``) is shown beside it.
    other = {f"mixed_{name}": mixes[name] for name in MIXES if name != how}
    for name, proba in (("mixed", mixed), ("stack", p_stack), ("tuned", p_tuned), *other.items()):
        out = proba.copy()
        for part in (half, ~half):
            conf = _fit_confidence(proba[~part], y_held[~part], config) if (~part).any() else None
            if conf is not None and part.any():
                out[part] = conf.transform(proba[part])
        calibrated[name] = out
    raw = raw_form[rows][held]
    evaluation: dict[str, Any] = {
        "method": (
            "hold-out: one fold of the grouped CV (near-duplicates kept in one fold); the encoder fine-tuned on the "
            "other folds, the stack scored out of fold, confidence calibration cross-fitted in two halves"
        ),
        "all": metrics(y_held, calibrated["mixed"], labels),
    }
    if raw.any() and not raw.all():
        evaluation["raw_text"] = metrics(y_held[raw], calibrated["mixed"][raw], labels)
    keys = ("accuracy", "macro_f1", "coverage_at_precision")
    summary = {name: _pick(metrics(y_held, proba, labels), keys) for name, proba in calibrated.items()}
    report = {
        **final.describe(),
        "epochs": config.fine_tune_epochs,
        "mix": how,
        "mixing_weight_of_stack": w,
        "held_out_rows": int(held.sum()),
        "held_out": summary,
        "seconds": {
            "frozen_layers": round(tuner.frozen_seconds, 1),
            "held_out_fit": round(held_seconds, 1),
            "final_fit": round(tuner.fit_seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "evaluation": evaluation,
    }
    return final, w, confidence, report


def _pick(report: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: report[key] for key in keys}


def feature_blocks(config: ClassifierConfig) -> list[str]:
    blocks = [f"char_tfidf{list(config.char_ngrams)}"]
    if config.word_ngrams:
        blocks.append(f"word_tfidf{list(config.word_ngrams)}")
    if config.title_weight > 0:
        blocks.append(f"title_tfidf{list(config.char_ngrams)}")
    if config.encoder:
        tuned = f"+fine-tuned{config.fine_tune_layers}" if config.fine_tune else ""
        blocks.append(f"encoder:{config.encoder}{tuned}")
    return blocks


def _internal_evaluation(
    stacked: np.ndarray,
    y: np.ndarray,
    original: np.ndarray,
    fold: np.ndarray,
    texts: Sequence[str],
    labels: list[str],
    config: ClassifierConfig,
) -> dict[str, Any]:
    """Grouped CV of the whole stack, re-using the out-of-fold stack probabilities (``_stack_oof``).

    The combiner was refitted per fold on the other folds' rows, so each row is scored by a model that saw
    neither it nor its near-duplicates; the confidence calibration is refitted the same way, on the other
    folds' full messages. (Vocabulary and IDF were fitted on everything: a negligible leak.)
    """
    proba = stacked.copy()
    if config.confidence != "none":
        for f in np.unique(fold):
            tr, te = (fold != f) & original, fold == f
            conf = _fit_confidence(stacked[tr], y[tr], config)
            if conf is not None:
                proba[te] = conf.transform(stacked[te])
    raw_form = original & np.array([not looks_segmented(t) for t in texts])
    report: dict[str, Any] = {
        "method": f"grouped {len(np.unique(fold))}-fold CV (near-duplicates kept in one fold)",
        "all": metrics(y[original], proba[original], labels),
    }
    if raw_form.any() and raw_form.sum() < original.sum():
        report["raw_text"] = metrics(y[raw_form], proba[raw_form], labels)
    if (~original).any():
        report["title_only"] = metrics(y[~original], proba[~original], labels)
    return report


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("cityhub", "scikit-learn", "numpy", "scipy", "rjieba", "joblib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _data_summary(
    records: Sequence[LabelledOrder], groups: np.ndarray, sources: Sequence[CsvReport], *, n_augmented: int
) -> dict[str, Any]:
    per_class = Counter(r.category for r in records)
    group_class = Counter(r.category for r in {int(g): r for g, r in zip(groups, records, strict=True)}.values())
    exact = len({(r.category, normalize(r.text)) for r in records})
    return {
        "files": [
            {"path": s.path, "sha256": s.sha256, "rows": s.rows, "kept": s.kept, "skipped": len(s.skipped)}
            for s in sources
        ],
        "n": len(records),
        "n_per_class": dict(sorted(per_class.items())),
        "dedup": {
            "distinct_texts": exact,
            "near_duplicate_groups": len(np.unique(groups)),
            "groups_per_class": dict(sorted(group_class.items())),
            "segmented_rows": sum(looks_segmented(r.text) for r in records),
        },
        "title_only_copies": n_augmented,
    }


# --------------------------------------------------------------------------- evaluation


def coverage_at_precision(
    correct: Sequence[bool] | np.ndarray, confidence: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Largest share of cases answerable automatically, most confident first, at each precision level.

    Cuts are only allowed between different confidence values (a threshold cannot split ties). Returns
    ``{"coverage": {level: share}, "threshold": {level: min confidence or None}}``.
    """
    ok = np.asarray(correct, dtype=bool)
    conf = np.asarray(confidence, dtype=np.float64)
    n = len(ok)
    cov: dict[str, float] = {}
    thr: dict[str, float | None] = {}
    if n == 0:
        return {"coverage": dict.fromkeys(PRECISION_LEVELS, 0.0), "threshold": dict.fromkeys(PRECISION_LEVELS)}
    order = np.argsort(-conf, kind="stable")
    ok_sorted, conf_sorted = ok[order], conf[order]
    hits = np.cumsum(ok_sorted)
    taken = np.arange(1, n + 1)
    # A cut after position i is valid when the next confidence is strictly lower (or i is the last).
    valid = np.r_[conf_sorted[1:] < conf_sorted[:-1], True]
    precision = hits / taken
    for level in PRECISION_LEVELS:
        good = np.nonzero(valid & (precision >= float(level) - 1e-12))[0]
        if len(good):
            i = int(good.max())
            cov[level] = float(taken[i] / n)
            thr[level] = float(conf_sorted[i])
        else:
            cov[level] = 0.0
            thr[level] = None
    return {"coverage": cov, "threshold": thr}


# The automatic-dispatch thresholds whose effect the evaluation reports (``at_threshold``): 0.50 … 0.99.
THRESHOLD_GRID = tuple(round(t / 100, 2) for t in range(50, 100))


def at_threshold(y: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """What each threshold of :data:`THRESHOLD_GRID` would do, overall and per predicted class: the share of the
    orders whose confidence reaches it (those dispatched automatically at that threshold, as far as the classifier
    decides) and the precision among them (None where none reaches it). Per class, of the orders predicted to be
    of that class (``n``), since a category's threshold applies to the orders predicted to be of it."""
    pred, conf = proba.argmax(axis=1), proba.max(axis=1)
    right = pred == y

    def curve(rows: np.ndarray) -> dict[str, Any]:
        n = int(rows.sum())
        share, precision = [], []
        for t in THRESHOLD_GRID:
            taken = rows & (conf >= t - 1e-12)
            k = int(taken.sum())
            share.append(round(k / n, 4) if n else 0.0)
            precision.append(round(float(right[taken].mean()), 4) if k else None)
        return {"n": n, "share": share, "precision": precision}

    return {
        "thresholds": list(THRESHOLD_GRID),
        "all": curve(np.ones(len(y), dtype=bool)),
        "per_class": {label: curve(pred == i) for i, label in enumerate(labels)},
    }


CALIBRATION_BINS = 10


def calibration(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """How far the probabilities can be taken at their word.

    ``bins``: the messages by the probability of their most likely category (ten bins of width 0.1, ``(from, to]``,
    empty ones left out), each with ``n``, its mean ``confidence`` and its ``accuracy`` (how often that category was
    right) — a calibrated model's are equal. ``ece`` (expected calibration error): the bins' distances
    |accuracy − confidence| weighted by their share of messages. ``brier``: the mean over messages of
    Σₖ (pₖ − [k is the label])², 0 for certain and right, 2 for certain and wrong. ``log_loss``: the mean of
    −ln p(label), the label's probability floored at 1e-15. All None for no messages."""
    if not len(y):
        return {"ece": None, "brier": None, "log_loss": None, "bins": []}
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    # Rounded first, so that 0.3 (0.30000000000000004 × 10 in floating point) stays in (0.2, 0.3].
    which = np.clip(np.ceil(np.round(confidence * CALIBRATION_BINS, 9)).astype(int) - 1, 0, CALIBRATION_BINS - 1)
    bins, ece = [], 0.0
    for b in range(CALIBRATION_BINS):
        inside = which == b
        n = int(inside.sum())
        if not n:
            continue
        conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += n / len(y) * abs(acc - conf)
        bins.append(
            {
                "from": b / CALIBRATION_BINS,
                "to": (b + 1) / CALIBRATION_BINS,
                "n": n,
                "confidence": conf,
                "accuracy": acc,
            }
        )
    truth = np.zeros_like(proba)
    truth[np.arange(len(y)), y] = 1.0
    return {
        "ece": ece,
        "brier": float(((proba - truth) ** 2).sum(axis=1).mean()),
        "log_loss": float(-np.log(np.maximum(proba[np.arange(len(y)), y], 1e-15)).mean()),
        "bins": bins,
    }


def metrics(y: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class scores, coverage at precision, what each dispatch threshold would do
    (:func:`at_threshold`), calibration (:func:`calibration`) and confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    pred = proba.argmax(axis=1)
    idx = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    present = sorted(set(y.tolist()))
    cov = coverage_at_precision(pred == y, proba.max(axis=1))
    return {
        "n": len(y),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else 0.0,
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)) if len(y) else 0.0,
        "per_class": {
            labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in idx
        },
        "coverage_at_precision": cov["coverage"],
        "threshold_at_precision": cov["threshold"],
        "at_threshold": at_threshold(y, proba, labels),
        "calibration": calibration(y, proba),
        "confusion_matrix": {"labels": labels, "matrix": confusion_matrix(y, pred, labels=idx).tolist()},
    }


def evaluate(model: Model, records: Iterable[LabelledOrder]) -> dict[str, Any]:
    """Score ``model`` on labelled records. Categories unknown to the model count as errors."""
    recs = list(records)
    labels = list(model.labels)
    for extra in sorted({r.category for r in recs} - set(labels)):
        labels.append(extra)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[r.category] for r in recs], dtype=int)
    proba = np.zeros((len(recs), len(labels)))
    if recs:
        proba[:, : len(model.labels)] = model.predict_proba([r.text for r in recs])
    report = metrics(y, proba, labels)
    report["unknown_categories"] = labels[len(model.labels) :]
    return report


def with_overrides(config: ClassifierConfig, **changes: Any) -> ClassifierConfig:
    """A copy of ``config`` with some fields changed (for benchmarks and the CLI)."""
    return replace(config, **changes)
