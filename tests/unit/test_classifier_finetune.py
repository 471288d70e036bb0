"""Classifier with a fine-tuned encoder member (``ClassifierConfig.fine_tune``, ``cityhub.nlp.finetune``).

Training runs only where the m3e-small weights (the ``embed`` extra) and PyTorch (the ``finetune`` extra) are
installed; elsewhere those tests skip with that reason. Prediction of a fine-tuned model needs no torch, which one
test checks by hiding torch after training.
"""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_classifier import _records, _write_csv
from test_classifier_encoder import BigramEncoder
from typer.testing import CliRunner

from cityhub.errors import ValidationFailed
from cityhub.nlp import classifier, encoder, finetune
from cityhub.nlp.classifier import ClassifierConfig
from cityhub.nlp.cli import app

M3E = encoder.M3E_SMALL in encoder.available_encoders()
TORCH = find_spec("torch") is not None
needs_finetune = pytest.mark.skipif(
    not (M3E and TORCH), reason=f"needs m3e-small ({encoder.INSTALL_HINT}) and PyTorch ({finetune.INSTALL_HINT})"
)
# One layer, half an epoch, two folds: seconds, not minutes; the figures of the real settings are in bench/.
TINY = ClassifierConfig(
    folds=2,
    char_ngrams=(1, 2),
    min_df=1,
    encoder=encoder.M3E_SMALL,
    fine_tune=True,
    fine_tune_layers=1,
    fine_tune_epochs=1.0,
)
TEXTS = ["公交车红绿灯出租车", "医院医生疫苗", "学校老师补课", "只有标题"]


def _mixed_forms(records: list[classifier.LabelledOrder]) -> list[classifier.LabelledOrder]:
    """The records, and a word-segmented copy (characters spaced) of every third, as the dev files mix both forms."""
    from dataclasses import replace

    return records + [replace(r, id=r.id + "s", content=" ".join(r.content)) for r in records[::3]]


@pytest.fixture(scope="module")
def tuned_model() -> classifier.Model:
    return classifier.train(_mixed_forms(_records(30)), config=TINY)


@needs_finetune
def test_fine_tuned_model_mixes_its_member_with_the_stack(tuned_model: classifier.Model) -> None:
    model = tuned_model
    assert model.tuned is not None and len(model.tuned.layers) == 1 and model.tuned.n_frozen == 3
    assert "emb" not in model.member_names  # the fine-tuned member replaces the frozen-embedding one
    assert model.meta["feature_blocks"][-1] == "encoder:m3e-small+fine-tuned1"
    report = model.meta["fine_tune"]
    assert 0.1 <= report["mixing_weight_of_stack"] <= 0.9 and report["mixing_weight_of_stack"] == model.tuned_weight
    assert 0 < report["held_out_rows"] < len(_mixed_forms(_records(30)))
    # The model's own mix (geometric by default), and the other one beside it for comparison.
    assert report["mix"] == "geometric" and set(report["held_out"]) == {"stack", "tuned", "mixed", "mixed_mean"}
    assert model.meta["evaluation"]["method"].startswith("hold-out")
    assert model.meta["evaluation"]["all"]["n"] == report["held_out_rows"]
    assert 0 < model.meta["evaluation"]["raw_text"]["n"] < report["held_out_rows"]  # the raw-form rows among them
    assert "all" in model.meta["evaluation_sparse_stack"]

    proba = model.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), len(model.labels)) and np.allclose(proba.sum(axis=1), 1.0)
    # The mix, before the confidence step, is stack^w · fine-tuned^(1-w), renormalised.
    confidence, tuned = model.confidence, model.tuned
    try:
        model.confidence = None
        mixed = model.predict_proba(TEXTS)
        model.tuned = None
        stack = model.predict_proba(TEXTS)
    finally:
        model.confidence, model.tuned = confidence, tuned
    w = model.tuned_weight
    expected = stack**w * tuned.proba(model.encoder, [model.form(t) for t in TEXTS]) ** (1 - w)
    # (each member's probabilities are floored at 1e-12 before the logarithm)
    assert np.allclose(mixed, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    assert not np.allclose(mixed, stack)
    assert [p.label for p in model.predict(TEXTS[:3])] == ["交通运输", "卫生计生", "教育文体"]


@needs_finetune
def test_torch_training_forward_and_numpy_prediction_agree() -> None:
    texts = [r.text for r in _records(6)]
    m3e = encoder.get_encoder(encoder.M3E_SMALL)
    tuner = finetune.FineTuner(m3e, texts, finetune.FineTuneSettings(layers=2, epochs=1.0))
    y = np.arange(len(texts)) % 3
    head = tuner.fit(np.arange(len(texts)), y, 3)
    assert head.n_frozen == 2 and len(head.layers) == 2
    # The weights moved, and NumPy runs them to what torch computed (float32 arithmetic in both).
    assert not np.allclose(head.layers[0]["qkv"], m3e.bert.layers[2]["qkv"])
    assert np.abs(tuner.proba(head, np.arange(len(texts))) - head.proba(m3e, texts)).max() < 1e-4


@needs_finetune
def test_artefact_round_trip_predicts_without_torch(
    tuned_model: classifier.Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tuned_model.save(tmp_path / "m")
    meta = json.loads((target / "model.json").read_text(encoding="utf-8"))
    assert meta["config"]["fine_tune"] is True and meta["format_version"] == classifier.FORMAT_VERSION
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as where it is not installed
    with pytest.raises(ImportError):
        import torch  # noqa: F401
    loaded = classifier.load(target)
    assert loaded.tuned_weight == tuned_model.tuned_weight
    assert np.allclose(loaded.predict_proba(TEXTS), tuned_model.predict_proba(TEXTS), atol=1e-6)


@needs_finetune
def test_a_fine_tuned_artefact_from_before_the_mix_setting_still_mixes_by_the_mean(
    tuned_model: classifier.Model, tmp_path: Path
) -> None:
    import gzip
    import pickle

    target = tuned_model.save(tmp_path / "m")
    meta = json.loads((target / "model.json").read_text(encoding="utf-8"))
    del meta["config"]["fine_tune_mix"]  # as the fifteenth session's artefacts were written
    (target / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with gzip.open(target / classifier.MODEL_FILE, "rb") as fh:
        blob = pickle.load(fh)
    del blob["config"]["fine_tune_mix"]
    with gzip.open(target / classifier.MODEL_FILE, "wb") as fh:
        pickle.dump(blob, fh, protocol=5)
    old = classifier.load(target)
    assert tuned_model.config.fine_tune_mix == "geometric" and old.config.fine_tune_mix == "mean"
    old.confidence = None
    mixed = old.predict_proba(TEXTS)
    tuned, old.tuned = old.tuned, None
    stack = old.predict_proba(TEXTS)
    assert tuned is not None
    w = old.tuned_weight
    assert np.allclose(mixed, w * stack + (1 - w) * tuned.proba(old.encoder, [old.form(t) for t in TEXTS]))


@needs_finetune
def test_cli_trains_a_fine_tuned_model(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "train.csv", _records(20))
    out = tmp_path / "model"
    args = ["train", "--data", str(data), "--out", str(out), "--cv", "2", "--fine-tune", "--fine-tune-layers", "1"]
    result = CliRunner().invoke(app, [*args, "--fine-tune-epochs", "0.5", "--fine-tune-mix", "mean", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["encoder"]["name"] == "m3e-small"  # --fine-tune implies the encoder
    assert summary["fine_tune"]["tuned_layers"] == 1 and summary["fine_tune"]["epochs"] == 0.5
    assert summary["fine_tune"]["mix"] == "mean" and "mixed_geometric" in summary["fine_tune"]["held_out"]
    # The saved model mixes by the mean: w·stack + (1-w)·tuned, before the confidence step.
    model = classifier.load(out)
    assert model.config.fine_tune_mix == "mean" and model.tuned is not None
    model.confidence = None
    mixed = model.predict_proba(TEXTS)
    tuned, model.tuned = model.tuned, None
    stack = model.predict_proba(TEXTS)
    w = model.tuned_weight
    assert np.allclose(mixed, w * stack + (1 - w) * tuned.proba(model.encoder, [model.form(t) for t in TEXTS]))
    assert summary["evaluation"]["all"]["n"] == summary["fine_tune"]["held_out_rows"]
    evaluated = CliRunner().invoke(app, ["evaluate", "--model", str(out), "--data", str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["feature_blocks"][-1] == "encoder:m3e-small+fine-tuned1"
    # Under an embedding cache the fine-tuned member still runs its own layers (the cache holds frozen embeddings).
    cached = CliRunner().invoke(
        app, ["evaluate", "--model", str(out), "--data", str(data), "--json", "--embed-cache", str(tmp_path / "c")]
    )
    assert cached.exit_code == 0, cached.output
    assert json.loads(cached.output)["accuracy"] == report["accuracy"]
    # The text summary scores both mixes on the held-out rows, the model's own named.
    args[args.index(str(out))] = str(tmp_path / "model-geometric")
    text = CliRunner().invoke(app, [*args, "--fine-tune-epochs", "0.5"])
    assert text.exit_code == 0, text.output
    line = next(row for row in text.output.splitlines() if row.startswith("fine-tuned 1 encoder layers"))
    assert "geometric mix (this model) " in line and "mean mix " in line and "held-out macro F1 / cov@0.97" in line


def test_fine_tune_without_torch_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    data = _write_csv(tmp_path / "train.csv", _records(10))
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--fine-tune"])
    assert result.exit_code == 1
    assert "fine-tuning the encoder needs PyTorch" in result.output and "cityhub[finetune]" in result.output
    assert not (tmp_path / "m").exists()
    with pytest.raises(finetune.FineTuneUnavailable, match="needs PyTorch"):
        finetune.require_torch()


def test_fine_tune_needs_an_encoder_with_transformer_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationFailed, match="fine-tuning needs an encoder"):
        classifier.train(_records(10), config=ClassifierConfig(folds=2, min_df=1, fine_tune=True))
    if not TORCH:
        return
    encoder.register_encoder(BigramEncoder.name, BigramEncoder)
    try:
        config = ClassifierConfig(folds=2, min_df=1, encoder=BigramEncoder.name, fine_tune=True)
        with pytest.raises(ValidationFailed, match="no transformer layers to fine-tune"):
            classifier.train(_records(10), config=config)
    finally:
        encoder.unregister_encoder(BigramEncoder.name)


def test_model_configured_for_fine_tuning_needs_its_member() -> None:
    model = classifier.train(_records(10), config=ClassifierConfig(folds=2, min_df=1))
    parts: dict[str, Any] = {
        "labels": model.labels,
        "features": model.features,
        "members": model.members,
        "combiner": model.combiner,
    }
    config = ClassifierConfig(folds=2, min_df=1, encoder="m3e-small", fine_tune=True)
    with pytest.raises(ValidationFailed, match="fine-tuned encoder but has none"):
        classifier.Model(config=config, encoder=BigramEncoder(), **parts)


def test_mixing_weight_follows_the_better_member_on_held_out_rows() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.05)
    good[np.arange(300), y] = 0.9
    noise = rng.dirichlet(np.ones(3), 300)
    assert finetune.mixing_weight(good, noise, y) == 0.9
    assert finetune.mixing_weight(noise, good, y) == 0.1
    assert finetune.mixing_weight(good, good, y) == 0.5
    assert finetune.mixing_weight(good, noise, y, "geometric") == 0.9
    assert finetune.mixing_weight(noise, good, y, "geometric") == 0.1


def test_geometric_mix_keeps_only_what_both_members_support() -> None:
    stack = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    tuned = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    mean = finetune.mix(stack, tuned, 0.5, "mean")
    geo = finetune.mix(stack, tuned, 0.5, "geometric")
    assert np.allclose(mean, (stack + tuned) / 2) and np.allclose(geo.sum(axis=1), 1.0)
    assert np.allclose(geo[1], stack[1])  # members that agree are left as they are
    assert geo[0, 2] < 1e-4 < mean[0, 2]  # a label one member rules out stays out
    assert geo[0, 0] > mean[0, 0]
    with pytest.raises(ValidationFailed, match="unknown mix 'median'"):
        finetune.mix(stack, tuned, 0.5, "median")


def test_unknown_fine_tune_mix_is_refused_before_training() -> None:
    config = ClassifierConfig(folds=2, min_df=1, encoder="m3e-small", fine_tune=True, fine_tune_mix="median")
    with pytest.raises(ValidationFailed, match="unknown fine-tune mix 'median' \\(known: mean, geometric\\)"):
        classifier.train(_records(10), config=config)


@needs_finetune
def test_retraining_a_fine_tuned_model_keeps_fine_tuning_and_needs_torch(
    tuned_model: classifier.Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.dispatch.retrain import retrain

    base = _write_csv(tmp_path / "base.csv", _mixed_forms(_records(30)))
    live = tuned_model.save(tmp_path / "m")
    before = (live / classifier.MODEL_FILE).read_bytes()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch", None)
        with pytest.raises(ValidationFailed, match="needs PyTorch"):
            retrain(base=[base], corrections=[], model_dir=live, force=True, folds=2)
    assert (live / classifier.MODEL_FILE).read_bytes() == before  # the live model untouched
    result = retrain(base=[base], corrections=[], model_dir=live, force=True, folds=2)
    assert result.promoted
    again = classifier.load(live)
    assert again.tuned is not None and again.config.fine_tune_layers == 1 and "fine_tune" in again.meta
