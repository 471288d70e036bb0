"""Order category classifier: artefact round trip, probabilities, metrics and the CLI."""

from __future__ import annotations

import csv
import gzip
import json
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cityhub.errors import NotFound, ValidationFailed
from cityhub.formatting import calibration_text
from cityhub.nlp import classifier
from cityhub.nlp.classifier import ClassifierConfig, LabelledOrder, coverage_at_precision
from cityhub.nlp.cli import app
from cityhub.nlp.text import JoinedForm, looks_segmented, near_duplicate_groups, normalize

# Small vocabulary per category; synthetic messages mix topic words with shared filler.
TOPICS = {
    "交通运输": ["公交车", "出租车", "红绿灯", "高速公路", "驾驶证", "地铁站", "停车场", "车辆违停"],
    "教育文体": ["学校", "老师", "学生", "补课", "幼儿园", "招生", "体育馆", "图书馆"],
    "环境保护": ["噪音", "污水", "排放", "垃圾焚烧", "空气污染", "扬尘", "河道", "废气"],
    "卫生计生": ["医院", "医生", "疫苗", "药品", "病人", "计划生育", "诊所", "护士"],
}
FILLER = ["请问", "领导", "您好", "小区", "附近", "希望", "尽快", "处理", "反映", "问题", "我们", "每天"]
FAST = ClassifierConfig(folds=3, char_ngrams=(1, 2), min_df=1)


def _message(rng: random.Random, label: str, n_words: int = 12) -> str:
    topic = TOPICS[label]
    return "".join(rng.choice(topic) if rng.random() < 0.4 else rng.choice(FILLER) for _ in range(n_words))


def _records(n_per_class: int = 40, seed: int = 1) -> list[LabelledOrder]:
    rng = random.Random(seed)
    out = []
    for label in TOPICS:
        for i in range(n_per_class):
            title = _message(rng, label, 4) if i % 2 else ""
            out.append(LabelledOrder(id=f"{label}{i}", title=title, content=_message(rng, label), category=label))
    return out


@pytest.fixture(scope="module")
def model() -> classifier.Model:
    return classifier.train(_records(), config=FAST)


def _write_csv(path: Path, records: list[LabelledOrder], extra_rows: list[list[str]] = ()) -> Path:  # type: ignore[assignment]
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "content", "created_at", "category"])
        for r in records:
            w.writerow([r.id, r.title, r.content, "", r.category])
        for row in extra_rows:
            w.writerow(row)
    return path


def test_probabilities_sum_to_one_and_top3_sorted(model: classifier.Model) -> None:
    preds = model.predict(["公交车红绿灯出租车请问领导", "医院医生疫苗", "只有标题"])
    assert len(preds) == 3
    for p in preds:
        probs = [q for _, q in p.top3]
        assert probs == sorted(probs, reverse=True)
        assert p.label == p.top3[0][0] and p.probability == pytest.approx(probs[0])
        assert len({label for label, _ in p.top3}) == 3
    proba = model.predict_proba(["公交车红绿灯", "学校老师"])
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert preds[0].label == "交通运输" and preds[1].label == "卫生计生"


def test_evidence_counts_the_phrases_the_model_knows(model: classifier.Model) -> None:
    """Distinct known n-grams of two or more characters with a letter or hanzi: what a greeting or gibberish lacks."""
    known, twice, greeting, gibberish, digits, empty = model.evidence(
        ["公交车红绿灯", "公交车红绿灯，公交车红绿灯", "早上好", "qwertyuiop", "1234512345", ""]
    )
    # The char (1, 2) model has seen 公交, 交车, 红绿, 绿灯 (and 车红 if the two words met in training).
    assert known >= 4 and twice == known  # distinct phrases, not occurrences
    assert greeting == 0 and gibberish == 0 and empty == 0
    assert digits == 0  # numbers say nothing of the category, known or not
    prediction = model.predict(["公交车红绿灯", "qwertyuiop"])
    assert [p.evidence for p in prediction] == [known, 0]
    assert prediction[1].as_dict()["evidence"] == 0 and prediction[1].label in model.labels
    assert model.evidence([]) == [] and model.predict([]) == []
    # A model whose char features are single characters cannot tell: its predictions carry no evidence (None), so
    # dispatch goes by the probability alone instead of holding every order.
    unigrams = classifier.train(_records(), config=classifier.with_overrides(FAST, char_ngrams=(1, 1)))
    assert unigrams.predict(["公交车红绿灯"])[0].evidence is None


def test_label_set_comes_from_data() -> None:
    recs = [r for r in _records(20) if r.category in ("交通运输", "教育文体")]
    m = classifier.train(recs, config=FAST)
    assert m.labels == ["交通运输", "教育文体"]
    pred = m.predict(["学校招生老师"])[0]
    assert pred.label == "教育文体" and len(pred.top3) == 2


def test_save_load_round_trip(model: classifier.Model, tmp_path: Path) -> None:
    texts = ["噪音扰民污水排放", "驾驶证补办", "学校补课"]
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))
    assert meta["format_version"] == classifier.FORMAT_VERSION
    assert meta["training_data"]["n"] == len(_records())
    assert "scikit-learn" in meta["libraries"] and meta["created_at"]
    assert set(meta["evaluation"]["all"]["coverage_at_precision"]) == {"0.85", "0.90", "0.95", "0.97"}
    loaded = classifier.load(tmp_path / "m")
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.labels == model.labels


def test_a_save_that_fails_leaves_the_artefact_as_it_was(model: classifier.Model, tmp_path: Path) -> None:
    """Files are written beside their names and moved into place: a server loading the live directory while it is
    rewritten never reads half a file, and a failed write leaves the old artefact whole."""
    import copy

    target = model.save(tmp_path / "m")
    before = {f.name: f.read_bytes() for f in target.iterdir()}
    broken = copy.copy(model)
    broken.members = [lambda: None]  # cannot be pickled
    with pytest.raises((pickle.PicklingError, AttributeError)):
        broken.save(target)
    assert {f.name: f.read_bytes() for f in target.iterdir()} == before  # no partial file, nothing replaced
    texts = ["噪音扰民污水排放", "驾驶证补办"]
    assert np.allclose(classifier.load(target).predict_proba(texts), model.predict_proba(texts))


def test_load_refuses_other_format_version(model: classifier.Model, tmp_path: Path) -> None:
    target = model.save(tmp_path / "m")
    meta_path = target / "model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format_version"] = classifier.FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValidationFailed, match="format version"):
        classifier.load(target)
    with pytest.raises(ValidationFailed, match="not a classifier model"):
        classifier.load(tmp_path)  # a directory, without the files
    with pytest.raises(NotFound, match="nowhere: model not found"):
        classifier.load(tmp_path / "nowhere")


def test_the_nb_weighted_svm_is_one_linear_svm_per_class_over_ratio_scaled_features() -> None:
    """``NBLinearSVC`` keeps each class's SVM over ``x ∘ r_c`` as the one linear function ``x · (r_c ∘ w)``: its
    scores are those SVMs' own, and a feature only one class uses gets that class's largest ratio."""
    from scipy.sparse import csr_matrix, diags
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(3)
    dense = rng.random((60, 8)) * (rng.random((60, 8)) < 0.4)
    y = np.repeat([0, 1, 2], 20)
    dense[:, 7] = (y == 2).astype(float)  # class 2's own feature
    x = csr_matrix(dense)
    member = classifier.NBLinearSVC(c=0.5, alpha=1.0).fit(x, y)
    present = (x > 0).astype(float)
    for label in (0, 1, 2):
        p = 1.0 + np.asarray(present[y == label].sum(axis=0)).ravel()
        q = 1.0 + np.asarray(present[y != label].sum(axis=0)).ravel()
        ratio = np.log((p / p.sum()) / (q / q.sum()))
        svm = SGDClassifier(
            loss="hinge", alpha=1 / (0.5 * 60), max_iter=30, tol=None, class_weight="balanced", random_state=0
        )
        svm.fit(x @ diags(ratio), (y == label).astype(int))
        expected = svm.decision_function(x @ diags(ratio))
        assert np.allclose(member.decision_function(x)[:, label], expected, atol=1e-9)
        if label == 2:
            assert ratio.argmax() == 7
    assert (member.decision_function(x)[y == 2].argmax(axis=1) == 2).all()  # classes 0 and 1 are noise alike
    assert member.coef_.flags.f_contiguous  # what the fast path reads without a copy


def test_coverage_at_precision_hand_made() -> None:
    # Sorted by confidence: ✓ ✓ ✓ ✓ ✗ ✓ ✓ ✓ ✗ ✗  → precision after k: 1,1,1,1,.8,.833,.857,.875,.778,.7
    correct = [True, True, True, True, False, True, True, True, False, False]
    conf = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.90]
    order = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6]  # shuffled input must not matter
    res = coverage_at_precision([correct[i] for i in order], [conf[i] for i in order])
    assert res["coverage"] == {"0.85": 0.8, "0.90": 0.4, "0.95": 0.4, "0.97": 0.4}
    assert res["threshold"]["0.85"] == 0.92 and res["threshold"]["0.97"] == 0.96
    # A tie cannot be split by a threshold: all four share one confidence, precision .75 < .85.
    tied = coverage_at_precision([True, True, True, False], [0.9, 0.9, 0.9, 0.9])
    assert tied["coverage"]["0.85"] == 0.0 and tied["threshold"]["0.85"] is None
    assert coverage_at_precision([True, False], [0.9, 0.1])["coverage"]["0.97"] == 0.5


def test_what_each_threshold_would_dispatch_hand_made() -> None:
    labels = ["甲", "乙"]
    # Predicted 甲 at 0.95 (right), 0.80 (right), 0.60 (wrong, truly 乙); predicted 乙 at 0.70 (right).
    proba = np.array([[0.95, 0.05], [0.80, 0.20], [0.60, 0.40], [0.30, 0.70]])
    y = np.array([0, 0, 1, 1])
    curves = classifier.at_threshold(y, proba, labels)
    grid = curves["thresholds"]
    assert grid[0] == 0.5 and grid[-1] == 0.99 and len(grid) == 50

    def at(curve: dict[str, Any], t: float) -> tuple[float, float | None]:
        i = grid.index(t)
        return curve["share"][i], curve["precision"][i]

    first, second = curves["per_class"]["甲"], curves["per_class"]["乙"]
    assert (first["n"], second["n"], curves["all"]["n"]) == (3, 1, 4)
    assert at(first, 0.5) == (1.0, round(2 / 3, 4)) and at(first, 0.6) == (1.0, round(2 / 3, 4))
    assert at(first, 0.61) == (round(2 / 3, 4), 1.0) and at(first, 0.95) == (round(1 / 3, 4), 1.0)
    assert at(first, 0.96) == (0.0, None) and at(second, 0.7) == (1.0, 1.0) and at(second, 0.71) == (0.0, None)
    assert at(curves["all"], 0.7) == (0.75, 1.0) and at(curves["all"], 0.5) == (1.0, 0.75)
    assert classifier.at_threshold(np.zeros(0, dtype=int), np.zeros((0, 2)), labels)["all"]["share"][0] == 0.0


def test_calibration_hand_made() -> None:
    # Top probabilities 0.95 (right), 0.92 (wrong), 0.55 (right), 0.51 (wrong): bins (0.9, 1.0] and (0.5, 0.6].
    proba = np.array([[0.95, 0.05], [0.92, 0.08], [0.45, 0.55], [0.51, 0.49]])
    y = np.array([0, 1, 1, 1])
    cal = classifier.calibration(y, proba)
    assert [(b["from"], b["to"], b["n"]) for b in cal["bins"]] == [(0.5, 0.6, 2), (0.9, 1.0, 2)]
    assert cal["bins"][0]["confidence"] == pytest.approx(0.53) and cal["bins"][0]["accuracy"] == 0.5
    assert cal["bins"][1]["confidence"] == pytest.approx(0.935) and cal["bins"][1]["accuracy"] == 0.5
    assert cal["ece"] == pytest.approx(0.5 * 0.03 + 0.5 * 0.435)
    truth = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    assert cal["brier"] == pytest.approx(((proba - truth) ** 2).sum(axis=1).mean())
    assert cal["log_loss"] == pytest.approx(-np.mean(np.log([0.95, 0.08, 0.55, 0.49])))
    # Certain and right: no error at all; a confidence of exactly 1.0 or 0.1 stays in the last or first bin.
    perfect = classifier.calibration(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert perfect["ece"] == 0.0 and perfect["brier"] == 0.0 and perfect["bins"][0]["to"] == 1.0
    tenths = np.full((1, 10), 0.1)
    assert classifier.calibration(np.array([3]), tenths)["bins"][0]["to"] == pytest.approx(0.1)
    assert classifier.calibration(np.zeros(0, dtype=int), np.zeros((0, 2))) == {
        "ece": None,
        "brier": None,
        "log_loss": None,
        "bins": [],
    }


def test_evaluate_report_keys(model: classifier.Model) -> None:
    test = _records(10, seed=7)
    rep = classifier.evaluate(model, test)
    assert rep["n"] == len(test)
    assert 0.0 <= rep["macro_f1"] <= 1.0 and rep["accuracy"] > 0.5
    assert set(rep["per_class"]) == set(TOPICS)
    assert set(rep["per_class"]["交通运输"]) == {"precision", "recall", "f1", "support"}
    matrix = np.array(rep["confusion_matrix"]["matrix"])
    assert matrix.sum() == len(test) and np.trace(matrix) == round(rep["accuracy"] * len(test))


def test_text_helpers() -> None:
    seg = "市 西湖 建筑 集团 占 道 施工 安全隐患 A3 区 大道"
    assert looks_segmented(seg) and not looks_segmented("A市西湖建筑集团占道施工有安全隐患")
    assert normalize(seg) == "市西湖建筑集团占道施工安全隐患a3区大道"
    assert normalize("ＡＢＣ  公交 车\n站") == "abc公交车站"
    texts = [
        "A市西湖建筑集团占道施工有安全隐患，人行道被圈进施工围墙内，每天上下班人流车流极多",
        "市 西湖 建筑 集团 占 道 施工 安全隐患 人行道 圈 施工 围墙 每天 上下班 人流 车流",
        "请问下A市哪个社区有13价肺炎疫苗可以打，外市的人可不可以来社区医院接种",
        "A市西湖建筑集团占道施工有安全隐患，人行道被圈进施工围墙内，每天上下班人流车流极多！",
    ]
    g = near_duplicate_groups(texts)
    assert g[0] == g[1] == g[3] and g[2] != g[0]


# Raw messages and the form an earlier pipeline left them in: segmented, stop words and punctuation dropped.
STOP_WORDS = ["的", "了", "是", "在", "都", "这样"]


def _mixed_records(n_per_class: int = 40, seed: int = 3) -> list[LabelledOrder]:
    """Synthetic orders in both forms: each raw message with stop words and punctuation, and a segmented copy of
    another message of its class with them dropped (so the copies never duplicate the raw rows)."""
    rng = random.Random(seed)
    out = []
    for label, topic in TOPICS.items():
        for i in range(n_per_class):
            parts = [rng.choice(topic) if rng.random() < 0.4 else rng.choice(FILLER) for _ in range(12)]
            raw = "".join(w + (rng.choice(STOP_WORDS) if rng.random() < 0.5 else "") for w in parts) + "，谢谢。"
            out.append(LabelledOrder(id=f"r{label}{i}", title="", content=raw, category=label))
            seg = " ".join(rng.choice(topic) if rng.random() < 0.4 else rng.choice(FILLER) for _ in range(12))
            out.append(LabelledOrder(id=f"s{label}{i}", title="", content=seg + " 谢谢", category=label))
    return out


def test_joined_form_learns_what_the_segmented_texts_lack() -> None:
    texts = [r.text for r in _mixed_records()]
    form = JoinedForm.learn(texts)
    assert set(STOP_WORDS) <= form.dropped
    # Content words occur in both forms; the segmented texts' words are never dropped.
    assert not form.dropped & {w for words in TOPICS.values() for w in words} and not form.dropped & set(FILLER)
    assert form("我们小区的路灯坏了，请尽快处理！") == "我们小区路灯坏请尽快处理"  # 我们 is in both forms
    seg = "市 西湖 建筑 集团 占 道 施工 安全隐患 A3 区 大道"
    assert form(seg) == normalize(seg)  # already in that form
    # One form only (a district's own orders), or too few of the other: nothing learned, plain normalisation.
    raw_only = [t for t in texts if not looks_segmented(t)]
    assert JoinedForm.learn(raw_only).dropped == frozenset()
    assert JoinedForm.learn(raw_only + [t for t in texts if looks_segmented(t)][:10]).dropped == frozenset()
    assert JoinedForm()("我们小区的路灯坏了，请尽快处理！") == normalize("我们小区的路灯坏了，请尽快处理！")


def test_joined_form_keeps_a_word_the_segmented_texts_hold_inside_longer_words() -> None:
    # 保险 is its own word in the raw texts and only inside 养老保险 in the segmented ones: cut differently, not
    # dropped. 这样, in no segmented text at all, is dropped.
    texts = [r.text for r in _mixed_records()]
    raw = [t + "我买了保险，这样行吗" for t in texts if not looks_segmented(t)]
    seg = [t + " 养老保险" for t in texts if looks_segmented(t)]
    form = JoinedForm.learn(raw + seg)
    assert "这样" in form.dropped and "保险" not in form.dropped
    assert "保险" in JoinedForm.learn(raw + [t for t in texts if looks_segmented(t)]).dropped


def test_model_applies_its_joined_form_and_keeps_it(tmp_path: Path) -> None:
    model = classifier.train(_mixed_records(), config=FAST)
    assert set(STOP_WORDS) <= model.form.dropped
    assert model.meta["joined_form"]["dropped_words"] == len(model.form.dropped)
    raw = "我们学校的老师是在补课，学生都累了。"
    assert model.form(raw) == "我们学校老师补课学生累"
    # Both prediction paths read a raw text in its joined form: without the dropped words and punctuation.
    seen: list[str] = []
    fast, transform = model._fast, model.features.transform
    assert fast is not None
    stack = fast.stack
    fast.stack = lambda norm: seen.extend(norm) or stack(norm)  # type: ignore[method-assign]
    model.features.transform = lambda norm, titles=None: seen.extend(norm) or transform(norm, titles)  # type: ignore[method-assign]
    try:
        model.predict_proba([raw])
        model.predict_proba([raw], reference=True)
    finally:
        del fast.stack, model.features.transform
    assert seen == ["我们学校老师补课学生累"] * 2
    loaded = classifier.load(model.save(tmp_path / "m"))
    assert loaded.form == model.form and loaded.config.joined_form
    texts = [raw, "噪音 污水 排放", "医院的医生"]
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), rtol=0, atol=1e-12)
    off = classifier.train(_mixed_records(), config=classifier.with_overrides(FAST, joined_form=False))
    assert off.form.dropped == frozenset() and off.meta["joined_form"]["dropped_words"] == 0


def test_version_3_artefact_loads_with_plain_normalisation(tmp_path: Path) -> None:
    model = classifier.train(_mixed_records(), config=classifier.with_overrides(FAST, joined_form=False))
    target = model.save(tmp_path / "m")
    meta = json.loads((target / "model.json").read_text(encoding="utf-8"))
    blob = classifier.read_fitted(target / classifier.MODEL_FILE)
    meta["format_version"] = blob["format_version"] = 3
    for cfg in (meta["config"], blob["config"]):
        del cfg["joined_form"]
    del blob["form"]
    (target / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with gzip.open(target / classifier.MODEL_FILE, "wb") as fh:
        pickle.dump(blob, fh)
    loaded = classifier.load(target)
    assert loaded.form == JoinedForm() and not loaded.config.joined_form
    texts = ["我们学校的老师是在补课", "噪音污水排放"]
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts))


def test_cli_train_evaluate_classify(tmp_path: Path) -> None:
    runner = CliRunner()
    train_csv = _write_csv(
        tmp_path / "train.csv", _records(), [["bad1", "", "", "", "交通运输"], ["bad2", "t", "c", "", ""]]
    )
    test_csv = _write_csv(tmp_path / "test.csv", _records(8, seed=3))
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", "--data", str(train_csv), "--out", str(out), "--cv", "3", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["training_data"]["n"] == len(_records())
    assert summary["training_data"]["files"][0]["skipped"] == 2

    res = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(test_csv), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    for key in ("n", "accuracy", "macro_f1", "per_class", "coverage_at_precision", "confusion_matrix", "calibration"):
        assert key in rep
    assert set(rep["coverage_at_precision"]) == {"0.85", "0.90", "0.95", "0.97"}
    assert sum(b["n"] for b in rep["calibration"]["bins"]) == rep["n"] and 0 <= rep["calibration"]["ece"] <= 1
    plain = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(test_csv)])
    assert plain.exit_code == 0 and calibration_text(rep["calibration"]) in plain.stdout.splitlines()

    res = runner.invoke(app, ["classify", "--model", str(out), "--input", str(test_csv), "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 4 * 8 and {"id", "label", "probability", "top3", "evidence"} <= set(lines[0])

    res = runner.invoke(app, ["classify", "--model", str(out), "--text", "医院医生护士", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["label"] == "卫生计生"
    # A row with no text gets no made-up category: it is answered as such, by its id, in its place.
    holed = _write_csv(tmp_path / "holed.csv", _records(1, seed=4)[:1], [["T7", "", "", "", ""]])
    res = runner.invoke(app, ["classify", "--model", str(out), "--input", str(holed), "--json"])
    answered = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.exit_code == 0 and answered[-1] == {"id": "T7", "error": "no title or content"}
    assert "label" in answered[0]

    # Plain lines are answered with their line numbers, blank ones skipped; bad input is refused in one line.
    lines_txt = tmp_path / "lines.txt"
    lines_txt.write_text("医院医生护士\n\n学校老师补课\n", encoding="utf-8")
    res = runner.invoke(app, ["classify", "--model", str(out), "--input", str(lines_txt), "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["line"] for line in res.stdout.splitlines()] == [1, 3]
    empty = runner.invoke(app, ["classify", "--model", str(out), "--text", " ", "--json"])
    assert empty.exit_code == 1 and empty.output.strip() == "error: --text is empty: give the order's title and content"
    other = tmp_path / "other.csv"
    other.write_text("foo,bar\n1,2\n", encoding="utf-8")
    res = runner.invoke(app, ["classify", "--model", str(out), "--input", str(other)])
    assert res.exit_code == 1 and "header lacks a title or content column" in res.output and "foo, bar" in res.output


def test_cli_train_says_what_it_trains_on_and_how_long_it_took(tmp_path: Path) -> None:
    """`nlp train` worked minutes in silence: once the data is read it says on stderr how many rows from how many
    files and about how long, and at the end how long it took; stdout keeps the summary (with --json, JSON alone)."""
    records = _records(20)
    first = _write_csv(tmp_path / "a.csv", records[:50])
    second = _write_csv(tmp_path / "b.csv", records[50:])
    res = CliRunner().invoke(
        app, ["train", "--data", str(first), "--data", str(second), "--out", str(tmp_path / "m"), "--cv", "2", "--json"]
    )
    assert res.exit_code == 0, res.output
    said = res.stderr.splitlines()
    assert re.fullmatch(
        rf"training on {len(records)} rows from 2 files \(2-fold CV\): about \d+ s on 2 free cores, longer on a busy "
        r"machine …",
        said[0],
    ), said
    assert re.fullmatch(r"done in (\d+ min )?\d+ s", said[-1]) and len(said) == 2, said
    assert json.loads(res.stdout)["training_data"]["n"] == len(records)
    # A refusal is its one line, with nothing announced before it.
    res = CliRunner().invoke(
        app, ["train", "--data", str(_write_csv(tmp_path / "c.csv", _records(2))), "--out", str(tmp_path / "n")]
    )
    assert (
        res.exit_code == 1
        and res.stderr.startswith("error: need at least 2 categories")
        and res.stderr.count("\n") == 1
    )


def test_a_category_too_rare_to_learn_is_left_out_and_named(tmp_path: Path) -> None:
    texts = ("小区电梯困人半小时无人处理", "写字楼扶梯突然反转夹伤老人")
    rare = [LabelledOrder(id=f"e{i}", title="", content=text, category="电梯安全") for i, text in enumerate(texts)]
    model = classifier.train(_records(12) + rare, config=FAST)
    assert "电梯安全" not in model.labels and set(model.labels) == set(TOPICS)
    assert model.meta["training_data"]["left_out"] == {"电梯安全": 2}
    assert "电梯安全" not in model.meta["training_data"]["n_per_class"]
    with pytest.raises(ValidationFailed, match="need at least 2 categories with 3 or more distinct messages"):
        classifier.train(_records(2), config=FAST)


def test_cli_refuses_what_it_cannot_train_or_score_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    data = _write_csv(tmp_path / "train.csv", _records(2))
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--cv", "3"])
    assert res.exit_code == 1 and res.output.startswith("error: need at least 2 categories with 3 or more")
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(data)])
    assert res.exit_code == 1
    assert res.output.strip() == f"error: --out: {data} is a file; give a directory for the model"
    assert not (tmp_path / "m").exists()  # created to check it, removed when training failed
    # A directory that cannot be written is named before the training (which would fail on these data).
    for unwritable, why in (
        (Path("/proc/cityhub-model"), "No such file or directory"),
        (data / "m", "Not a directory"),
    ):
        res = runner.invoke(app, ["train", "--data", str(data), "--out", str(unwritable)])
        assert res.exit_code == 1
        assert res.output.strip() == f"error: --out: cannot write the model into {unwritable}: {why}"
    model_dir = classifier.train(_records(12), config=FAST).save(tmp_path / "model")
    header_only = _write_csv(tmp_path / "empty.csv", [])
    res = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(header_only)])
    assert res.exit_code == 1 and res.output.strip() == f"error: {header_only}: no labelled rows to score (0 skipped)"
    unknown = _write_csv(tmp_path / "unknown.csv", [*_records(2), LabelledOrder("x", "", "电梯困人", "电梯安全")])
    res = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--data", str(unknown)])
    assert res.exit_code == 0 and "categories the model does not know (counted as errors): 电梯安全" in res.output


def test_cli_train_reports_the_joined_form_and_can_leave_it_out(tmp_path: Path) -> None:
    runner = CliRunner()
    data = _write_csv(tmp_path / "mixed.csv", _mixed_records())
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--cv", "2"])
    assert res.exit_code == 0, res.output
    assert "joined form:" in res.stdout and "words dropped from raw texts" in res.stdout
    assert set(STOP_WORDS) <= classifier.load(tmp_path / "m").form.dropped
    args = ["train", "--data", str(data), "--out", str(tmp_path / "off"), "--cv", "2", "--no-joined-form", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["joined_form"]["dropped_words"] == 0
    off = classifier.load(tmp_path / "off")
    assert off.form == JoinedForm() and not off.config.joined_form


def test_cli_bad_csv_names_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,content,created_at,category\n1,t,c,,交通运输\n2,t,c,交通运输\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert res.exit_code != 0
    assert "bad.csv" in res.output and "row 3" in res.output
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "missing.csv" in res.output
    nohdr = tmp_path / "nohdr.csv"
    nohdr.write_text("a,b\n1,2\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "m"), "--data", str(nohdr)])
    assert res.exit_code != 0


def test_rows_that_cannot_be_read_are_skipped_by_number_and_the_rest_kept(tmp_path: Path) -> None:
    """A labelled file from elsewhere with a damaged row (bytes not in its encoding) and a quote never closed: training,
    scoring and classifying name those rows and go on with the others, as the order import does."""
    runner = CliRunner()
    train_csv = _write_csv(tmp_path / "train.csv", _records())
    lines = train_csv.read_bytes().splitlines(keepends=True)
    damaged = [*lines[:5], b"x1,\xff\xfe\xb3,c,,\xe4\xba\xa4\xe9\x80\x9a\xe8\xbf\x90\xe8\xbe\x93\n", *lines[5:]]
    damaged += ['x2,"公交车出租车,红绿灯,,交通运输\n'.encode(), *lines[1:4]]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"".join(damaged))
    records, report = classifier.read_labelled_csv(bad)
    assert len(records) == len(_records()) + 3 and report.rows == len(records) + 2
    assert [(s["row"], s["reason"].split(" (")[0]) for s in report.skipped] == [
        (6, "bytes that are not utf-8-sig"),
        (len(lines) + 2, f"a quoted field opened on line {len(lines) + 2} is not closed before the end of the file"),
    ]
    out = tmp_path / "m"
    res = runner.invoke(app, ["train", "--data", str(bad), "--out", str(out), "--cv", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["training_data"]["files"][0]["skipped"] == 2
    assert "skipped" in res.stderr and "row 6" in res.stderr
    res = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(bad), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["n"] == len(records) and [s["row"] for s in rep["skipped"]] == [6, len(lines) + 2]
    assert f"skipped {bad}: row 6 (id ): bytes that are not utf-8-sig" in res.stderr
    res = runner.invoke(app, ["classify", "--model", str(out), "--input", str(bad), "--json"])
    assert res.exit_code == 0, res.output
    answers = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(answers) == len(records) + 2 and answers[4] == {"row": 6, "error": answers[4]["error"]}
    assert answers[4]["error"].startswith("bytes that are not utf-8")
    assert answers[-4]["row"] == len(lines) + 2 and "not closed" in answers[-4]["error"]
    assert all("label" in a for i, a in enumerate(answers) if i not in (4, len(answers) - 4))


# --------------------------------------------------------------------------- per-class confidence


def _overconfident_sample(n: int, seed: int, n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Stack-like probabilities where the top score is P(correct) for every class but the last, whose
    predictions are right only half as often as its score says (a systematically over-confident class)."""
    rng = np.random.default_rng(seed)
    proba = np.zeros((n, n_classes))
    y = np.zeros(n, dtype=int)
    for i in range(n):
        top = int(rng.integers(n_classes))
        score = rng.uniform(0.4, 0.999)
        rest = rng.dirichlet(np.ones(n_classes - 1)) * (1 - score)
        others = [c for c in range(n_classes) if c != top]
        proba[i, top] = score
        proba[i, others] = rest
        p_correct = score * (0.5 if top == n_classes - 1 else 1.0)
        y[i] = top if rng.random() < p_correct else int(rng.choice(others))
    return proba, y


def test_class_confidence_corrects_an_overconfident_class() -> None:
    fit_p, fit_y = _overconfident_sample(4000, seed=1)
    test_p, test_y = _overconfident_sample(4000, seed=2)
    conf = classifier.ClassConfidence(4).fit(fit_p, fit_y)
    calibrated = conf.transform(test_p)
    top = test_p.argmax(axis=1)
    correct = top == test_y
    # Proper distributions, same top label, the other classes keep their order.
    assert np.allclose(calibrated.sum(axis=1), 1.0) and (calibrated >= 0).all()
    assert (calibrated.argmax(axis=1) == top).all()
    assert (np.argsort(-calibrated, axis=1)[:, 1:] == np.argsort(-test_p, axis=1)[:, 1:]).all()
    # The confidence now tracks how often each predicted class is right, the over-confident one included.
    # (``transform`` may raise a low confidence to the runner-up's level to keep the top label on top.)
    raw_q = conf.confidence(test_p)
    for c in range(4):
        rows = top == c
        assert abs(raw_q[rows].mean() - correct[rows].mean()) < 0.05, c
    q = calibrated.max(axis=1)
    assert (q >= raw_q - 1e-12).all()
    assert q[top == 3].mean() < test_p.max(axis=1)[top == 3].mean() - 0.2
    # So one global "most confident first" ranking covers more at each precision level.
    before = coverage_at_precision(correct, test_p.max(axis=1))["coverage"]
    after = coverage_at_precision(correct, q)["coverage"]
    assert after["0.90"] > before["0.90"] + 0.05 and after["0.95"] > before["0.95"] + 0.05
    assert all(after[level] >= before[level] for level in before)


def test_class_confidence_shrinks_small_classes_to_the_global_curve() -> None:
    fit_p, fit_y = _overconfident_sample(3000, seed=3)
    # Only a handful of rows predicted as class 2: its own curve must stay near the global one.
    keep = (fit_p.argmax(axis=1) != 2) | (np.arange(len(fit_y)) % 100 == 0)
    conf = classifier.ClassConfidence(4).fit(fit_p[keep], fit_y[keep])
    probe = np.array([[0.1, 0.1, 0.7, 0.1], [0.05, 0.1, 0.8, 0.05], [0.1, 0.1, 0.5, 0.3]])
    global_only = classifier.ClassConfidence(4, shrink=1e12).fit(fit_p[keep], fit_y[keep])
    assert np.allclose(global_only.class_w, 0.0, atol=1e-6)
    assert conf.n_fit[2] < 20
    assert np.abs(conf.confidence(probe) - global_only.confidence(probe)).max() < 0.05
    # The well-populated over-confident class does get its own, lower curve.
    probe3 = probe[:, [0, 1, 3, 2]]
    assert (conf.confidence(probe3) < global_only.confidence(probe3) - 0.1).all()
    # A class never predicted in the calibration data gets the global curve exactly.
    unseen = classifier.ClassConfidence(4).fit(fit_p[fit_p.argmax(axis=1) != 1], fit_y[fit_p.argmax(axis=1) != 1])
    assert np.allclose(unseen.class_w[1], 0.0)


def test_model_confidence_keeps_labels_and_top3(model: classifier.Model) -> None:
    texts = ["公交车红绿灯出租车请问领导", "医院医生疫苗", "只有标题", "学校噪音"]
    assert model.confidence is not None and model.config.confidence == "class"
    calibrated = model.predict_proba(texts)
    conf, model.confidence = model.confidence, None
    try:
        stacked = model.predict_proba(texts)
    finally:
        model.confidence = conf
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == stacked.argmax(axis=1)).all()
    for p in model.predict(texts):
        assert len(p.top3) == 3 and p.top3[0][0] == p.label
    plain = classifier.train(_records(), config=classifier.with_overrides(FAST, confidence="none"))
    assert plain.confidence is None
    assert np.allclose(plain.predict_proba(texts), stacked)
    with pytest.raises(ValidationFailed, match="unknown confidence"):
        classifier.train(_records(10), config=classifier.with_overrides(FAST, confidence="bogus"))


def test_training_is_reproducible() -> None:
    """The same data and configuration give the same model, though members are fitted in two threads at once
    (liblinear's random generator is process-wide: its fits take turns)."""
    texts = ["公交车红绿灯出租车请问领导", "医院医生疫苗", "只有标题", "学校噪音"]
    cfg = classifier.with_overrides(FAST, members=("svm", "svm", "sgd"), n_jobs=2)
    first = classifier.train(_records(), config=cfg).predict_proba(texts)
    for _ in range(5):
        assert np.array_equal(classifier.train(_records(), config=cfg).predict_proba(texts), first)


def test_version_2_artefact_loads_without_calibration(tmp_path: Path) -> None:
    import joblib

    model = classifier.train(_records(), config=classifier.with_overrides(FAST, title_weight=0.0))
    target = model.save(tmp_path / "m")
    meta = json.loads((target / "model.json").read_text(encoding="utf-8"))
    blob = classifier.read_fitted(target / classifier.MODEL_FILE)
    meta["format_version"] = blob["format_version"] = 2
    for cfg in (meta["config"], blob["config"]):
        del cfg["confidence"], cfg["confidence_shrink"], cfg["title_weight"]
    del blob["confidence"], blob["features"].title, blob["features"].title_weight
    (target / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    # Artefacts of that time held their fitted objects in joblib's format.
    joblib.dump(blob, target / classifier.LEGACY_MODEL_FILE)
    (target / classifier.MODEL_FILE).unlink()
    loaded = classifier.load(target)
    assert loaded.confidence is None and loaded.config.confidence == "none"
    assert loaded.config.title_weight == 0.0 and not loaded.features.needs_titles
    texts = ["噪音扰民污水排放", "驾驶证补办"]
    conf, model.confidence = model.confidence, None
    try:
        assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts))
    finally:
        model.confidence = conf


def test_title_block_reads_the_first_line(tmp_path: Path) -> None:
    assert classifier.title_of("公交 车站\n红绿灯坏了") == "公交车站"
    assert classifier.title_of("只有一行") == "" and classifier.title_of("标题\n  ") == ""
    cfg = classifier.with_overrides(FAST, title_weight=1.0)
    m = classifier.train(_records(), config=cfg)
    assert m.features.needs_titles and "title_tfidf[1, 2]" in m.meta["feature_blocks"]
    x = m.features.transform(["公交车红绿灯", "学校老师"], ["公交车", ""])
    title_cols = m.features.columns("title")
    assert x[0, title_cols].nnz > 0 and x[1, title_cols].nnz == 0
    texts = ["公交车\n红绿灯出租车请问领导", "医院医生疫苗"]
    loaded = classifier.load(m.save(tmp_path / "m"))
    assert np.allclose(loaded.predict_proba(texts), m.predict_proba(texts))
    assert [p.label for p in loaded.predict(texts)] == ["交通运输", "卫生计生"]


def test_member_on_one_feature_block() -> None:
    cfg = classifier.with_overrides(FAST, members=("svm", "sgd:word"))
    m = classifier.train(_records(), config=cfg)
    word = m.features.columns("word")
    assert m.members[1].coef_.shape[1] == word.stop - word.start
    assert m.predict(["学校老师学生补课"])[0].label == "教育文体"
    with pytest.raises(ValidationFailed, match="feature block 'nope'"):
        classifier.train(_records(10), config=classifier.with_overrides(FAST, members=("svm", "cnb:nope")))


def test_save_writes_the_pickled_artefact_and_drops_an_older_one(tmp_path: Path) -> None:
    model = classifier.train(_records(), config=FAST)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / classifier.LEGACY_MODEL_FILE).write_bytes(b"an older artefact's fitted objects")
    target = model.save(tmp_path / "m")
    assert (target / classifier.MODEL_FILE).is_file()
    assert not (target / classifier.LEGACY_MODEL_FILE).exists()  # no stale copy of older fitted objects beside it
    texts = ["噪音扰民污水排放", "驾驶证补办"]
    assert np.allclose(classifier.load(target).predict_proba(texts), model.predict_proba(texts))
