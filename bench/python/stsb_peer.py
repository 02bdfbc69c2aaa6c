#!/usr/bin/env python3
"""STS-B test peer check for all-MiniLM-L6-v2 with transformers 4.30.2 (slow BertTokenizer + BertModel).

run: PYTHONPATH=PEER/site /usr/bin/python3 bench/python/stsb_peer.py [BERTSHARP_PRED_JSONL]
(PEER: the output folder of ../shared/tools/python-peer/setup.sh; BERTSHARP_PRED_JSONL: `bert evaluate MODEL --data
sts-test.csv --predictions FILE`; paths below assume the shared folder at /work/shared)
Recipe (fixture README): each text alone, no padding, truncation at 256, mean pooling over all tokens, L2 norm,
cosine vs gold score, Spearman x100. Also evaluates variants (csv parsing, truncation length, padded batches).
"""
import csv, json, sys, io
import numpy as np
import torch
from scipy.stats import spearmanr, pearsonr
from transformers import BertModel, BertTokenizer

torch.set_num_threads(1)
MODEL = "/work/shared/data/models/all-MiniLM-L6-v2"
DATA = "/work/shared/data/stsb/sts-test.csv"
PRED = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sts-pred.jsonl"

tok = BertTokenizer.from_pretrained(MODEL)
model = BertModel.from_pretrained(MODEL).float().eval()


def read_split(strip=False):
    rows = []
    for line in open(DATA, encoding="utf-8"):
        c = line.rstrip("\n").split("\t")
        a, b = c[5], c[6]
        if strip:
            a, b = a.strip(), b.strip()
        rows.append((float(c[4]), a, b))
    return rows


def read_csv(quoting):
    with open(DATA, encoding="utf-8", newline="") as f:
        return [(float(r[4]), r[5], r[6]) for r in csv.reader(f, delimiter="\t", quoting=quoting)]


cache = {}


@torch.no_grad()
def embed_alone(text, max_len=256):
    key = (text, max_len)
    if key not in cache:
        enc = tok(text, truncation=True, max_length=max_len, return_tensors="pt")
        h = model(**enc).last_hidden_state[0]
        e = h.mean(0)
        cache[key] = (e / e.norm()).numpy(), enc["input_ids"][0].tolist(), h.numpy()
    return cache[key]


@torch.no_grad()
def embed_batched(texts, max_len=256, bs=32):
    out = []
    for i in range(0, len(texts), bs):
        enc = tok(texts[i:i + bs], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        out.extend(torch.nn.functional.normalize(e, p=2, dim=1).numpy())
    return out


def cosines(rows, max_len=256):
    return np.array([float(np.dot(embed_alone(a, max_len)[0], embed_alone(b, max_len)[0])) for _, a, b in rows])


def sp(gold, cos):
    return 100 * spearmanr(gold, cos).correlation


rows = read_split()
assert len(rows) == 1379
gold = np.array([r[0] for r in rows])
cos = cosines(rows)
print("README recipe (split on tab, slow tok, alone, trunc 256): spearman x100 = %.4f  pearson x100 = %.4f"
      % (sp(gold, cos), 100 * pearsonr(gold, cos)[0]))
maxlen = max(len(embed_alone(t)[1]) for r in rows for t in r[1:])
print("longest tokenized text:", maxlen, "tokens (incl. CLS/SEP)")
print("  scores as float32:              %.4f" % sp(gold.astype(np.float32), cos))
print("  cosines float32:                %.4f" % sp(gold, cos.astype(np.float32)))
print("  cosines rounded to 6 decimals:  %.4f" % sp(gold, np.round(cos, 6)))

variants = {}
variants["strip whitespace"] = read_split(strip=True)
try:
    variants["csv QUOTE_NONE"] = read_csv(csv.QUOTE_NONE)
except Exception as ex:
    print("csv QUOTE_NONE failed:", ex)
try:
    r = read_csv(csv.QUOTE_MINIMAL)
    print("csv default quoting: %d rows" % len(r))
    variants["csv default quoting"] = r
except Exception as ex:
    print("csv default quoting failed:", ex)
    with open(DATA, encoding="utf-8", newline="") as f:
        rr = [r for r in csv.reader(f, delimiter="\t") ]
    variants["csv default quoting, skip short rows"] = [(float(r[4]), r[5], r[6]) for r in rr if len(r) >= 7]
for name, rv in variants.items():
    g = np.array([x[0] for x in rv])
    print("  %-30s %d rows, changed texts %d: %.4f" % (
        name, len(rv), sum(1 for x, y in zip(rv, rows) if x != y), sp(g, cosines(rv))))
for ml in (128, 512):
    print("  max_length %d:                 %.4f" % (ml, sp(gold, cosines(rows, ml))))

def pooled_cos(pool):
    out = []
    for _, a, b in rows:
        ea, eb_ = pool(embed_alone(a)[2]), pool(embed_alone(b)[2])
        out.append(float(np.dot(ea, eb_) / np.linalg.norm(ea) / np.linalg.norm(eb_)))
    return np.array(out)
print("  CLS pooling:                    %.4f" % sp(gold, pooled_cos(lambda h: h[0])))
print("  max pooling:                    %.4f" % sp(gold, pooled_cos(lambda h: h.max(0))))
print("  mean without CLS/SEP:           %.4f" % sp(gold, pooled_cos(lambda h: h[1:-1].mean(0) if len(h) > 2 else h.mean(0))))
E = lambda t: embed_alone(t)[0]
print("  -euclidean (normalised):        %.4f" % sp(gold, -np.array([np.linalg.norm(E(a) - E(b)) for _, a, b in rows])))
print("  -manhattan (normalised):        %.4f" % sp(gold, -np.array([np.abs(E(a) - E(b)).sum() for _, a, b in rows])))

# Spearman implementations (ties: gold has only 70 distinct values)
from scipy.stats import rankdata
print("Spearman variants on the README-recipe cosines:")
print("  scipy spearmanr (average ranks for ties): %.4f" % sp(gold, cos))
for m in ("ordinal", "min", "max", "dense"):
    print("  pearson of rankdata(method=%-7s):    %.4f" % (m, 100 * np.corrcoef(rankdata(gold, method=m), rankdata(cos, method=m))[0, 1]))
for k in ("quicksort", "heapsort", "stable"):
    r = lambda x: np.argsort(np.argsort(x, kind=k), kind=k)
    print("  pearson of np.argsort(np.argsort(x, kind=%-9s)): %.4f  (numpy %s)" % (k, 100 * np.corrcoef(r(gold), r(cos))[0, 1], np.__version__))
rt = lambda x: torch.argsort(torch.argsort(torch.tensor(x))).numpy()
print("  pearson of torch.argsort(torch.argsort(x)):           %.4f  (torch %s)" % (100 * np.corrcoef(rt(gold), rt(cos))[0, 1], torch.__version__))

uniq = sorted({t for r in rows for t in r[1:]})
eb = dict(zip(uniq, embed_batched(uniq)))
cb = np.array([float(np.dot(eb[a], eb[b])) for _, a, b in rows])
print("  padded batches of 32 (sorted uniq): %.4f  max|dcos| vs alone %.2e" % (sp(gold, cb), abs(cb - cos).max()))

# per-pair comparison with BertSharp
try:
    pred = [json.loads(l) for l in open(PRED, encoding="utf-8")]
except FileNotFoundError:
    sys.exit(0)
assert len(pred) == len(rows)
bs_cos = np.array([p["cosine"] for p in pred])
bs_gold = np.array([p["score"] for p in pred])
same_text = sum(1 for p, r in zip(pred, rows) if p["text"] == r[1] and p["pair"] == r[2])
print("\nBertSharp predictions %s: texts identical to file: %d/%d, gold equal: %s" % (
    PRED, same_text, len(rows), bool((bs_gold == gold).all())))
print("BertSharp cosines -> spearman x100 = %.4f" % sp(gold, bs_cos))
d = np.abs(bs_cos - cos)
print("max |cos_bertsharp - cos_transformers| = %.3e (BertSharp cosines are rounded to 6 decimals)" % d.max())
print("spearman of transformers cosines with BertSharp's rounding: %.4f" % sp(gold, np.round(cos, 6)))
for i in np.where(d > 1e-5)[0]:
    _, a, b = rows[i]
    print("pair %d (line %d): bertsharp %.6f transformers %.6f gold %s" % (i, i + 1, bs_cos[i], cos[i], gold[i]))
    print("   A %r ids %s" % (a, embed_alone(a)[1]))
    print("   B %r ids %s" % (b, embed_alone(b)[1]))
