"""Fine-tuning of the sentence encoder's top layers into a classification member (``ClassifierConfig.fine_tune``).

The frozen m3e-small embedding adds little to the sparse stack (+0.3 macro F1 points); a transformer whose top
layers are trained on the orders learns which words decide the department, and its errors differ from the
sparse members'. Averaged with the stack it gained +2.0 points of macro F1 and +4 of coverage at precision 0.97 on
the strict grouped proxy (``bench/results/classifier_exploration.md``, sweep 9).

Training needs PyTorch (the ``finetune`` extra; CPU is enough): the bottom ``n_layers - layers`` transformer layers
stay frozen and run once per text (their outputs are kept in memory, half precision), the top ``layers`` layers,
mean pooling and a linear head are trained with AdamW. The result, ``TunedHead``, is plain NumPy arrays in the
layout of ``encoder.NumpyBert``: prediction runs on the NumPy encoder as the ``embed`` extra does, without torch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from cityhub.errors import ValidationFailed
from cityhub.nlp.encoder import CachedEncoder, padded

_log = logging.getLogger(__name__)
INSTALL_HINT = (
    "install PyTorch (CPU build is enough) with `pip install 'cityhub[finetune]'` "
    "(on Linux, `pip install torch --index-url https://download.pytorch.org/whl/cpu` first avoids the CUDA build)"
)


class FineTuneUnavailable(ValidationFailed):
    """PyTorch is not installed, or the encoder cannot be fine-tuned."""


def require_torch() -> None:
    """``FineTuneUnavailable`` unless PyTorch can be imported."""
    _torch()


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise FineTuneUnavailable(f"fine-tuning the encoder needs PyTorch: {INSTALL_HINT}") from None
    return torch


def base_encoder(encoder: Any) -> Any:
    """The encoder itself, under an embedding cache (``CachedEncoder``) if there is one."""
    return encoder.encoder if isinstance(encoder, CachedEncoder) else encoder


def _bert(encoder: Any) -> Any:
    bert = getattr(base_encoder(encoder), "bert", None)
    if bert is None or not hasattr(bert, "layers"):
        raise FineTuneUnavailable(f"encoder '{encoder.name}' has no transformer layers to fine-tune")
    return bert


@dataclass
class TunedHead:
    """The fine-tuned top layers and linear head: class probabilities from the encoder's NumPy forward pass."""

    n_frozen: int  # the encoder's own bottom layers, used as they are
    layers: list[dict[str, Any]]  # the fine-tuned top layers, in ``NumpyBert.layers`` form (float32)
    weight: np.ndarray  # (dim, n_classes)
    bias: np.ndarray  # (n_classes,)

    def proba(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_classes) softmax probabilities of normalised texts."""
        base = base_encoder(encoder)
        pooled = base.encode(texts, layers=[*base.bert.layers[: self.n_frozen], *self.layers])
        return _softmax(pooled @ self.weight + self.bias)

    def describe(self) -> dict[str, Any]:
        return {"frozen_layers": self.n_frozen, "tuned_layers": len(self.layers), "classes": int(self.bias.shape[0])}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True)
class FineTuneSettings:
    layers: int = 2
    epochs: float = 2.0
    batch_size: int = 32
    lr_layers: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    dropout: float = 0.1
    seed: int = 0
    threads: int = 2


_MATRICES = ("qkv", "qkv_b", "out", "out_b", "up", "up_b", "down", "down_b")  # ``NumpyBert`` layer keys, besides ln1/2


def _torch_layer_class(torch: Any) -> Any:
    nn, fn = torch.nn, torch.nn.functional

    class TorchLayer(nn.Module):  # type: ignore[name-defined]
        """One post-LN BERT layer over a ``NumpyBert`` layer dictionary: the same arithmetic, trainable."""

        def __init__(self, layer: dict[str, Any], heads: int, eps: float, dropout: float) -> None:
            super().__init__()
            self.heads, self.eps, self.p = heads, eps, dropout
            for key in _MATRICES:
                setattr(self, key, nn.Parameter(torch.tensor(np.array(layer[key], dtype=np.float32))))
            for key in ("ln1", "ln2"):
                gamma, beta = layer[key]
                setattr(self, key + "_g", nn.Parameter(torch.tensor(np.array(gamma, dtype=np.float32))))
                setattr(self, key + "_b", nn.Parameter(torch.tensor(np.array(beta, dtype=np.float32))))

        def forward(self, h: Any, bias: Any) -> Any:
            b, t, d = h.shape
            nh = self.heads
            hd = d // nh
            qkv = (h @ self.qkv + self.qkv_b).view(b, t, 3, nh, hd).permute(2, 0, 3, 1, 4)
            scores = (qkv[0] * (1.0 / math.sqrt(hd))) @ qkv[1].transpose(-1, -2) + bias
            attn = fn.dropout(torch.softmax(scores, dim=-1), self.p, self.training)
            ctx = (attn @ qkv[2]).transpose(1, 2).reshape(b, t, d)
            attn_out = fn.dropout(ctx @ self.out + self.out_b, self.p, self.training)
            h = fn.layer_norm(h + attn_out, (d,), self.ln1_g, self.ln1_b, self.eps)
            ffn_out = fn.dropout(fn.gelu(h @ self.up + self.up_b) @ self.down + self.down_b, self.p, self.training)
            return fn.layer_norm(h + ffn_out, (d,), self.ln2_g, self.ln2_b, self.eps)

        def export(self) -> dict[str, Any]:
            def a(p: Any) -> np.ndarray:
                return np.ascontiguousarray(p.detach().cpu().numpy(), dtype=np.float32)

            out: dict[str, Any] = {key: a(getattr(self, key)) for key in _MATRICES}
            out["ln1"] = (a(self.ln1_g), a(self.ln1_b))
            out["ln2"] = (a(self.ln2_g), a(self.ln2_b))
            return out

    return TorchLayer


class FineTuner:
    """Fine-tunes the encoder's top layers on one fixed set of texts; ``fit`` may run on several subsets of them.

    The frozen bottom layers run once for all texts at construction (in torch, no gradient), so a hold-out fit and
    the final fit share that cost.
    """

    def __init__(self, encoder: Any, texts: Sequence[str], settings: FineTuneSettings | None = None) -> None:
        self.torch = torch = _torch()
        self.settings = s = settings or FineTuneSettings()
        self.bert = bert = _bert(encoder)
        n_layers = len(bert.layers)
        if not 1 <= s.layers <= n_layers:
            raise ValidationFailed(f"fine-tune layers must be between 1 and {n_layers}, got {s.layers}")
        self.n_frozen = n_layers - s.layers
        self.Layer = _torch_layer_class(torch)
        started = time.perf_counter()
        ids = base_encoder(encoder).token_ids(texts)
        self.lengths = np.array([len(i) for i in ids])
        self.hidden: list[Any] = [None] * len(ids)
        frozen = [self.Layer(layer, bert.heads, bert.eps, 0.0).eval() for layer in bert.layers[: self.n_frozen]]
        order = np.argsort(self.lengths, kind="stable")
        with self._threads(), torch.no_grad():
            for start in range(0, len(order), 64):
                idx = order[start : start + 64]
                tok, mask = padded(ids, idx)
                h = torch.tensor(bert.embed(tok))
                bias = self._bias(torch.tensor(mask, dtype=torch.float32))
                for layer in frozen:
                    h = layer(h, bias)
                for r, i in enumerate(idx):
                    self.hidden[i] = h[r, : self.lengths[i]].to(torch.float16).clone()
        self.frozen_seconds = time.perf_counter() - started
        _log.info("fine-tune: %d frozen layers run on %d texts in %.0f s", self.n_frozen, len(ids), self.frozen_seconds)

    def _bias(self, mask: Any) -> Any:
        return (1.0 - mask[:, None, None, :]) * -1e9

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """torch's intra-op threads set to ``settings.threads`` for the block, then back."""
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(max(1, self.settings.threads))
        try:
            yield
        finally:
            self.torch.set_num_threads(before)

    def _batch(self, rows: np.ndarray) -> tuple[Any, Any, Any]:
        torch = self.torch
        t = int(self.lengths[rows].max())
        h = torch.zeros((len(rows), t, self.bert.dim))
        mask = torch.zeros((len(rows), t))
        for r, i in enumerate(rows):
            n = int(self.lengths[i])
            h[r, :n] = self.hidden[i].float()
            mask[r, :n] = 1.0
        return h, mask, self._bias(mask)

    def _pooled(self, layers: Any, rows: np.ndarray) -> Any:
        """Texts ``rows`` through the top ``layers`` from their kept frozen outputs, mean-pooled over real tokens."""
        h, mask, bias = self._batch(rows)
        for layer in layers:
            h = layer(h, bias)
        m = mask[:, :, None]
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def fit(self, rows: np.ndarray, y: np.ndarray, n_classes: int) -> TunedHead:
        """Train the top layers and a head on texts ``rows`` (indices into the constructor's texts), labels ``y``."""
        torch, s = self.torch, self.settings
        rows = np.asarray(rows)
        y = np.asarray(y)
        torch.manual_seed(s.seed)
        bert = self.bert
        layers = torch.nn.ModuleList(
            [self.Layer(layer, bert.heads, bert.eps, s.dropout) for layer in bert.layers[self.n_frozen :]]
        )
        head = torch.nn.Linear(self.bert.dim, n_classes)
        drop = torch.nn.Dropout(s.dropout)
        opt = torch.optim.AdamW(
            [{"params": layers.parameters(), "lr": s.lr_layers}, {"params": head.parameters(), "lr": s.lr_head}],
            weight_decay=s.weight_decay,
        )
        steps = max(1, int(math.ceil(len(rows) / s.batch_size) * s.epochs))
        warm = max(1.0, s.warmup * steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: min(1.0, (k + 1) / warm) * max(0.0, (steps - k) / steps)
        )
        rng = np.random.default_rng(s.seed)
        target = torch.as_tensor(y, dtype=torch.long)
        started = time.perf_counter()
        step = 0
        layers.train()
        drop.train()
        with self._threads():
            while step < steps:
                perm = rng.permutation(len(rows))
                for start in range(0, len(perm), s.batch_size):
                    if step >= steps:
                        break
                    pick = perm[start : start + s.batch_size]
                    logits = head(drop(self._pooled(layers, rows[pick])))
                    loss = torch.nn.functional.cross_entropy(logits, target[pick])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    step += 1
                    if step % 100 == 0:
                        took = time.perf_counter() - started
                        _log.info("fine-tune: step %d/%d loss %.3f (%.0f s)", step, steps, loss.item(), took)
        self.fit_seconds = time.perf_counter() - started
        return TunedHead(
            n_frozen=self.n_frozen,
            layers=[layer.export() for layer in layers],
            weight=np.ascontiguousarray(head.weight.detach().numpy().T, dtype=np.float32),
            bias=np.ascontiguousarray(head.bias.detach().numpy(), dtype=np.float32),
        )

    def proba(self, tuned: TunedHead, rows: np.ndarray) -> np.ndarray:
        """Probabilities of a fitted head for texts ``rows``, from the kept frozen outputs (torch, no gradient)."""
        torch = self.torch
        layers = [self.Layer(layer, self.bert.heads, self.bert.eps, 0.0).eval() for layer in tuned.layers]
        out = np.zeros((len(rows), tuned.bias.shape[0]))
        rows = np.asarray(rows)
        order = np.argsort(self.lengths[rows], kind="stable")
        with self._threads(), torch.no_grad():
            for start in range(0, len(order), 128):
                pick = order[start : start + 128]
                pooled = self._pooled(layers, rows[pick]).numpy()
                out[pick] = _softmax(pooled @ tuned.weight + tuned.bias)
        return out


MIXES = ("mean", "geometric")


def mix(stack: np.ndarray, tuned: np.ndarray, w: float, how: str = "mean") -> np.ndarray:
    """The stack's and the fine-tuned member's probabilities mixed, the stack at weight ``w``.

    ``mean``: ``w·stack + (1-w)·tuned``. ``geometric``: ``stack^w · tuned^(1-w)``, renormalised per row — a label
    stays likely only when both members give it weight, so fewer confident mistakes: more orders above a high
    precision (sweeps 11 and 13 of ``bench/results/classifier_exploration.md``; the default since sweep 13).
    """
    if how == "mean":
        return w * stack + (1.0 - w) * tuned
    if how != "geometric":
        raise ValidationFailed(f"unknown mix '{how}' (known: {', '.join(MIXES)})")
    log_p = w * np.log(np.clip(stack, 1e-12, None)) + (1.0 - w) * np.log(np.clip(tuned, 1e-12, None))
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def mixing_weight(stack: np.ndarray, tuned: np.ndarray, y: np.ndarray, how: str = "mean") -> float:
    """The weight of the stack in the mix (``mix``) with the least log loss on held-out rows (grid 0.1–0.9).

    Ties go to the weight nearest 0.5: without evidence either way, the two count alike.
    """
    best_w, best_loss = 0.5, math.inf
    rows = np.arange(len(y))
    for w in sorted(np.round(np.arange(0.1, 0.91, 0.05), 2), key=lambda v: abs(v - 0.5)):
        p = mix(stack, tuned, float(w), how)[rows, y]
        loss = float(-np.log(np.clip(p, 1e-12, None)).mean())
        if loss < best_loss - 1e-9:
            best_w, best_loss = float(w), loss
    return best_w
