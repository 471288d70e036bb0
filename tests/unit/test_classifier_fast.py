"""The classifier's fast prediction path must give scikit-learn's probabilities, and step aside where it cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.naive_bayes import MultinomialNB

from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, LabelledOrder
from cityhub.nlp.text import normalize

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "teddycup2020_c" / "dev"
# The default pipeline (char 1–3-grams, rjieba word 1–2-grams, svm + sgd + cnb, class confidence), made cheap.
SMALL = classifier.with_overrides(ClassifierConfig(), folds=2, max_char_features=40_000)
ATOL = 1e-9

EDGE = [
    "",
    " ",
    " \t\u3000\n  \r\n",  # whitespace only, mixed
    "☃☃☃ ⛄",  # only characters the model never saw
    "🚧🚧🚧",  # beyond the BMP
    "ＡＢＣ１２３，。（全角）路灯不亮",  # full-width forms
    "馬路燈壞了，請儘快處理，謝謝！",  # traditional characters
    "路灯不亮",  # title only
    "小区路灯不亮\n小区门口的路灯坏了一个星期，晚上出行很不方便，希望尽快维修。",  # title + content
    "路灯  不亮\t\t了 \n\n 请 处理 a  b\u00a0c",  # whitespace runs inside
    "市 西湖 建筑 集团 占 道 施工 安全隐患 路灯 杆",  # word-segmented form
    "abc 123 xyz",
    "\U0010ffff路灯",  # the last code point
    "路灯\udc80坏了，\ud800请维修",  # lone surrogates (bytes read with surrogateescape): rjieba takes only UTF-8
]


def _records() -> list[LabelledOrder]:
    path = DEV / "messages_labeled_raw.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    records, _ = classifier.read_labelled_csv(path)
    return records


@pytest.fixture(scope="module")
def real() -> tuple[classifier.Model, list[str]]:
    records = _records()
    train, held_out = records[::5], records[1::8]
    model = classifier.train(train, config=SMALL, evaluate_cv=False)
    long_text = "\n".join(r.text for r in held_out[:40])  # ~15,000 characters
    return model, [r.text for r in held_out[:300]] + EDGE + [long_text]


def _assert_same(model: classifier.Model, texts: list[str]) -> None:
    assert model._fast is not None, "the fast path should cover this model"
    reference = model.predict_proba(texts, reference=True)
    size = 32  # several rows in one sparse matrix
    batches = np.vstack([model.predict_proba(texts[i : i + size]) for i in range(0, len(texts), size)])
    one_by_one = np.vstack([model.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batches, reference, rtol=0, atol=ATOL)
    np.testing.assert_allclose(one_by_one, reference, rtol=0, atol=ATOL)
    np.testing.assert_allclose(model.predict_proba(texts), reference, rtol=0, atol=ATOL)  # taken in chunks
    # The evidence comes with the probabilities on either path: batched, one text at a time, and through scikit-learn.
    evidence = model.evidence(texts)
    assert list(model._read(texts, reference=True)[1]) == evidence
    assert [int(n) for t in texts for n in model._read([t])[1]] == evidence
    # Same arg-max wherever the reference has a clear one (exact ties may break either way at 1e-16).
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-9
    assert (one_by_one.argmax(axis=1) == reference.argmax(axis=1))[clear].all()


def test_fast_path_equals_sklearn_on_real_messages(real: tuple[classifier.Model, list[str]]) -> None:
    model, texts = real
    assert len(texts) > 300 and model.confidence is not None
    _assert_same(model, texts)
    reference = model.predict_proba(texts, reference=True)
    for pred, row in zip(model.predict(texts), reference, strict=True):
        assert pred.probability == pytest.approx(row.max(), abs=ATOL)
        assert [p for _, p in pred.top3] == pytest.approx(sorted(row, reverse=True)[:3], abs=ATOL)


def test_fast_features_equal_the_vectorizers_exactly(real: tuple[classifier.Model, list[str]]) -> None:
    model, texts = real
    fast = model._fast
    assert fast is not None
    for text in texts[:100] + EDGE:
        norm = normalize(text)
        reference = model.features.transform([norm])
        reference.sort_indices()
        x = fast.matrices(fast.features([norm]))[None]
        assert x.dtype == reference.dtype == np.float32
        assert np.array_equal(x.indices, reference.indices), text
        assert np.array_equal(x.data, reference.data), text  # bit for bit: counts, log, idf, L2 norm, block scale


def test_integer_ngram_keys_refuse_what_they_cannot_number() -> None:
    """A vocabulary entry that is not an n-gram of single units leaves that block to string look-ups."""
    keys = classifier._NgramKeys({"路灯": 0, "路": 1, "灯": 2, "坏": 3, "🚧": 4, "🚧路": 5}, 1, 2, char=True)
    assert _counted(keys, [keys.text_units("路灯路灯坏🚧路😀")]) == [{0: 2, 1: 3, 2: 2, 3: 1, 4: 1, 5: 1}]
    assert len(keys.table) <= 0x10000  # characters beyond the BMP are looked up apart
    with pytest.raises(ValueError):
        classifier._NgramKeys({"路灯 坏了 啊": 0}, 1, 2, char=False)  # three words in a (1, 2) vocabulary
    words = classifier._NgramKeys({"路灯": 0, "坏了": 1, "路灯 坏了": 2}, 1, 2, char=False)
    assert words.word_units(["路灯 坏了"]) is None  # a token with a space: looked up by its string instead
    units = words.word_units(["路灯", "坏了", "路灯"])
    assert units is not None and _counted(words, [units]) == [{0: 2, 1: 1, 2: 1}]


def test_integer_table_finds_every_key_and_no_other() -> None:
    """The hash table behind the integer look-up: keys that share slots (a table half full, keys crowded into a few
    hash values) are all found with their values, and keys it has not got (near, far, colliding) are -1."""
    rng = np.random.default_rng(3)
    keys = np.unique(rng.integers(1, 2**62, size=5_000))
    crowded = np.arange(1, 2_001, dtype=np.int64) * 2**40  # multiples of a large power of two: a hash's worst case
    for table_keys in (keys, crowded, np.array([7], dtype=np.int64), np.zeros(0, dtype=np.int64)):
        values = rng.permutation(len(table_keys))
        table = classifier._IntTable(table_keys, values)
        assert table.get(table_keys).tolist() == values.tolist()
        absent = np.setdiff1d(
            np.concatenate([table_keys + 1, table_keys * 3, rng.integers(1, 2**62, size=500)]), table_keys
        )
        assert (table.get(absent) == -1).all()
        both = rng.permutation(np.concatenate([table_keys, absent]))
        expected = {int(k): int(v) for k, v in zip(table_keys, values, strict=True)}
        assert table.get(both).tolist() == [expected.get(int(k), -1) for k in both]
    with pytest.raises(ValueError):
        classifier._IntTable(np.array([3, 0], dtype=np.int64), np.array([0, 1]))


def _counted(keys: classifier._NgramKeys, texts: list[np.ndarray]) -> list[dict[int, int]]:
    """``keys.count`` of the texts as a column → count dictionary per text (checking the columns ascend)."""
    indptr, columns, counts = keys.count(texts)
    assert len(indptr) == len(texts) + 1 and indptr[-1] == len(columns) == len(counts)
    out = []
    for i in range(len(texts)):
        row = columns[indptr[i] : indptr[i + 1]].tolist()
        assert row == sorted(row)
        out.append(dict(zip(row, counts[indptr[i] : indptr[i + 1]].tolist(), strict=True)))
    return out


def test_integer_ngram_keys_count_what_string_look_ups_count() -> None:
    """Texts with characters the vocabulary has not got at the start, the end and side by side: every n-gram that
    holds one is skipped, every other one counted, as a dictionary look-up of each n-gram's string counts them."""
    rng = np.random.default_rng(7)
    alphabet = "路灯坏了噪音扰民井盖"
    vocabulary: dict[str, int] = {}
    for n in (1, 2, 3):
        for _ in range(40):
            vocabulary.setdefault("".join(rng.choice(list(alphabet[:7]), size=n)), len(vocabulary))
    keys = classifier._NgramKeys(vocabulary, 1, 3, char=True)
    texts = ["".join(rng.choice(list(alphabet), size=int(rng.integers(0, 12)))) for _ in range(200)]
    expected: list[dict[int, int]] = []
    for text in texts:
        found: dict[int, int] = {}
        for n in (1, 2, 3):
            for i in range(len(text) - n + 1):
                if text[i : i + n] in vocabulary:
                    column = vocabulary[text[i : i + n]]
                    found[column] = found.get(column, 0) + 1
        expected.append(found)
    units = [keys.text_units(t) for t in texts]
    assert _counted(keys, units) == expected  # all at once: no n-gram runs from one text into the next
    assert [_counted(keys, [u])[0] for u in units] == expected  # one by one
    assert _counted(keys, []) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"members": ("svm", "sgd:word", "cnb:char")},  # members reading one block
        {"word_ngrams": None},  # one block: no block scale
        {"members": ("lr", "cnb"), "confidence": "none"},  # logistic-regression member, stacker probabilities
    ],
    ids=["one-block members", "char only", "lr member"],
)
def test_fast_path_equals_sklearn_for_other_covered_configurations(
    real: tuple[classifier.Model, list[str]], changes: dict[str, object]
) -> None:
    _, texts = real
    model = classifier.train(_records()[::12], config=classifier.with_overrides(SMALL, **changes), evaluate_cv=False)
    _assert_same(model, texts[:80] + EDGE)


def test_fast_path_equals_sklearn_with_a_joined_form(real: tuple[classifier.Model, list[str]]) -> None:
    """Trained on both forms of the real data, the model drops learned words from raw texts on both paths."""
    _, texts = real
    segmented = DEV / "messages_labeled_segmented.csv"
    if not segmented.is_file():
        pytest.skip(f"{segmented} not present")
    records = _records()[::6] + classifier.read_labelled_csv(segmented)[0][::12]
    model = classifier.train(records, config=SMALL, evaluate_cv=False)
    assert {"的", "了", "我们"} <= model.form.dropped
    _assert_same(model, texts[:80] + EDGE)


def test_fast_path_on_a_binary_model(real: tuple[classifier.Model, list[str]]) -> None:
    _, texts = real
    records = [r for r in _records()[::2] if r.category in ("交通运输", "教育文体")]
    model = classifier.train(records, config=SMALL, evaluate_cv=False)
    assert len(model.labels) == 2 and model.members[0].coef_.shape[0] == 1  # one decision column
    _assert_same(model, texts[:80] + EDGE)


def test_loaded_artefact_takes_the_fast_path(real: tuple[classifier.Model, list[str]], tmp_path: Path) -> None:
    model, texts = real
    loaded = classifier.load(model.save(tmp_path / "m"))
    assert loaded._fast is not None
    np.testing.assert_allclose(loaded.predict_proba(texts[:50]), model.predict_proba(texts[:50]), rtol=0, atol=ATOL)


def test_title_block_falls_back_to_sklearn(real: tuple[classifier.Model, list[str]]) -> None:
    _, texts = real
    model = classifier.train(
        _records()[::12], config=classifier.with_overrides(SMALL, title_weight=1.0), evaluate_cv=False
    )
    assert model.features.needs_titles and model._fast is None
    titled = [t for t in texts if classifier.title_of(t)][:40]
    proba = model.predict_proba(titled + EDGE)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba, model.predict_proba(titled + EDGE, reference=True))
    # The title block changes the features of a titled text: a path ignoring it would not give these probabilities.
    norm = [normalize(t) for t in titled]
    with_title = model.features.transform(norm, [classifier.title_of(t) for t in titled])
    without = model.features.transform(norm, [""] * len(titled))
    assert abs(with_title - without).sum() > 1.0


def test_unknown_member_types_fall_back_to_sklearn(real: tuple[classifier.Model, list[str]]) -> None:
    model, texts = real
    assert model.confidence is not None
    sample = texts[:60] + EDGE
    x_sample = model.features.transform([normalize(t) for t in sample])
    x_fit = model.features.transform([normalize(t) for t in texts[:200]])
    y_fit = model.predict_proba(texts[:200]).argmax(axis=1)
    # Types the fast path does not know, one scored by decision_function, one by log-probabilities with a prior.
    for position, member in ((0, RidgeClassifier().fit(x_fit, y_fit)), (2, MultinomialNB().fit(x_fit, y_fit))):
        assert len(member.classes_) == len(model.labels)
        members = list(model.members)
        members[position] = member
        mixed = classifier.Model(
            config=model.config,
            labels=model.labels,
            features=model.features,
            members=members,
            combiner=model.combiner,
            confidence=model.confidence,
        )
        assert mixed._fast is None
        stack = mixed._stack_input(x_sample, None)
        full = np.zeros((len(sample), len(model.labels)))
        full[:, mixed.combiner.classes_] = mixed.combiner.predict_proba(stack)
        full /= full.sum(axis=1, keepdims=True)
        expected = model.confidence.transform(full)
        np.testing.assert_allclose(mixed.predict_proba(sample), expected, rtol=0, atol=1e-12)
        assert not np.allclose(expected, model.predict_proba(sample), atol=1e-6)  # the new member does count


def test_a_label_typed_in_two_widths_is_one_class(tmp_path):
    """交通运输（公交） and 交通运输(公交), or a path with spaces around its slash, name one category: one class
    to learn and to evaluate, not two that split its examples."""
    path = tmp_path / "labelled.csv"
    path.write_text(
        "id,title,content,created_at,category\n"
        "1,公交线路,12路公交车班次太少,,交通运输（公交）\n"
        "2,公交站台,站台没有遮雨棚,,交通运输(公交)\n"
        "3,公交司机,司机态度差,,交通运输 / 公交\n"
        "4,公交司机,司机开车太猛,,交通运输/公交\n",
        encoding="utf-8",
    )
    records, _ = classifier.read_labelled_csv(path)
    assert [r.category for r in records] == ["交通运输(公交)", "交通运输(公交)", "交通运输/公交", "交通运输/公交"]


def _as_dictionaries(model: classifier.Model) -> list[dict[str, int]]:
    """Each vectorizer's vocabulary as the dictionary scikit-learn's fit made."""
    vectorizers = [model.features.char] + ([model.features.word] if model.features.word is not None else [])
    return [dict(vec.vocabulary_) for vec in vectorizers]


def test_vocabulary_read_from_integer_tables_answers_as_its_dictionary() -> None:
    """``_Vocabulary`` stands for a vectorizer's ``vocabulary_`` dictionary: every entry found at its column, every
    other string (unknown units, too many or too few of them, a split that makes an empty unit, not a string at all)
    not found, the entries in column order."""
    chars = {"路灯": 3, "路": 0, "灯": 1, "坏": 2, "🚧": 4, "路灯坏": 5, " 路": 6}
    words = {"路灯": 1, "坏了": 0, "路灯 坏了": 2, "a": 3}
    for vocabulary, char in ((chars, True), (words, False)):
        compact = classifier._Vocabulary(classifier._NgramKeys(vocabulary, 1, 3 if char else 2, char=char))
        assert len(compact) == len(vocabulary)
        assert list(compact) == sorted(vocabulary, key=vocabulary.__getitem__)  # column order
        assert dict(compact) == dict(compact.items()) == vocabulary and compact == vocabulary
        for gram, column in vocabulary.items():
            assert compact[gram] == column and gram in compact
        absent = ["", "灯路", "路灯坏坏", "电", "路灯坏了", "坏了 路灯", "路灯  坏了", "路灯 坏了 a", " ", "a "]
        for gram in [g for g in absent if g not in vocabulary]:
            assert gram not in compact and compact.get(gram) is None
            with pytest.raises(KeyError):
                compact[gram]
        assert 3 not in compact  # type: ignore[comparison-overlap]


def test_loaded_model_holds_integer_vocabularies_and_predicts_exactly_as_trained(
    real: tuple[classifier.Model, list[str]], tmp_path: Path
) -> None:
    """The vocabularies the fast path reads as integers are held only as those integers, before and after a save:
    the same probabilities bit for bit on both paths, the same evidence (counted from the characters of each n-gram,
    not its string), and ComplementNB keeps only what it predicts with."""
    model, texts = real
    dictionaries = _as_dictionaries(model)
    loaded = classifier.load(model.save(tmp_path / "m"))
    for m in (model, loaded):
        assert isinstance(m.features.char.vocabulary_, classifier._Vocabulary)
        assert isinstance(m.features.word.vocabulary_, classifier._Vocabulary)
        cnb = m.members[m.member_names.index("cnb")]
        assert not hasattr(cnb, "feature_count_") and not hasattr(cnb, "feature_all_")
    assert _as_dictionaries(loaded) == dictionaries
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert np.array_equal(loaded.predict_proba(texts, reference=True), model.predict_proba(texts, reference=True))
    assert loaded.predict(texts) == model.predict(texts)
    by_string = np.zeros(len(dictionaries[0]), dtype=bool)
    for gram, column in dictionaries[0].items():
        by_string[column] = len(gram) > 1 and classifier._informative(gram)
    assert np.array_equal(loaded._informative_columns(), by_string) and by_string.any()


def test_an_artefact_with_vocabulary_dictionaries_still_loads(
    real: tuple[classifier.Model, list[str]], tmp_path: Path
) -> None:
    """A format-6 artefact (what installs hold: the vocabularies pickled as dictionaries, ComplementNB with its
    counts) loads, predicts as the model it was saved from, and is held as the current format holds it."""
    import gzip
    import json
    import pickle

    model, texts = real
    target = model.save(tmp_path / "m")
    blob = classifier.read_fitted(target / classifier.MODEL_FILE)
    for vec, dictionary in zip((blob["features"].char, blob["features"].word), _as_dictionaries(model), strict=True):
        vec.vocabulary_ = dictionary
    cnb = blob["members"][model.member_names.index("cnb")]
    cnb.feature_count_ = np.ones_like(cnb.feature_log_prob_)
    cnb.feature_all_ = cnb.feature_count_.sum(axis=0)
    meta = json.loads((target / classifier.META_FILE).read_text(encoding="utf-8"))
    meta["format_version"] = blob["format_version"] = 6
    (target / classifier.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with gzip.open(target / classifier.MODEL_FILE, "wb") as fh:
        pickle.dump(blob, fh, protocol=5)
    loaded = classifier.load(target)
    assert loaded.meta["format_version"] == 6 and loaded._fast is not None
    assert isinstance(loaded.features.char.vocabulary_, classifier._Vocabulary)
    assert not hasattr(loaded.members[model.member_names.index("cnb")], "feature_count_")
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.predict(texts) == model.predict(texts)


def test_a_loaded_model_holds_little_beyond_its_arrays(
    real: tuple[classifier.Model, list[str]], tmp_path: Path
) -> None:
    """What loading keeps in memory is the arrays prediction reads — the members' weights, the n-gram tables, the idf —
    and less beside them than one Python string per vocabulary entry would take (the dictionaries of strings
    that stood beside the tables held ~100 MB of the default model in every process)."""
    import gc
    import sys
    import tracemalloc

    model, _ = real
    target = model.save(tmp_path / "m")
    classifier.load(target)  # the imports and caches of a first load are not the model's
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        loaded = classifier.load(target)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert loaded._fast is not None
    weights = sum(getattr(m, "feature_log_prob_", getattr(m, "coef_", None)).nbytes for m in loaded.members)
    tables = sum(b.keys.columns.keys.nbytes + b.keys.columns.values.nbytes for b in loaded._fast.blocks if b.keys)
    idf = loaded.features.char.idf_.nbytes + loaded.features.word.idf_.nbytes
    entries = len(loaded.features.char.vocabulary_) + len(loaded.features.word.vocabulary_)
    one_string = sys.getsizeof("路灯坏")
    assert held - (weights + tables + idf) < entries * one_string, (held, weights, tables, idf, entries)
