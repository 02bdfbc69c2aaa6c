#!/usr/bin/env python3
"""Cross-check: does sentence-transformers load a BertSharp `bert finetune embed` folder, and does it give the
same embeddings as `bert embed`?

usage (ST 2.2.2 sources extracted under ST_SITE; transformers 4.30.2 peer under /tmp/peer/site):
  PYTHONPATH=/tmp/peer/site:ST_SITE /usr/bin/python3 st_check.py TEXTS.txt FOLDER [FOLDER...]
options (env):
  ST_PATCH_POOLING=1  if Pooling(**config) rejects keys it does not know (ST < 2.3 and pooling_mode_weightedmean_tokens /
                      pooling_mode_lasttoken), drop those keys and retry (a clearly reported shim, for the numeric check only)
  BERT_DLL            the BertSharp CLI (default /work/main/src/BertSharp.Cli/bin/Release/net10.0/bert.dll)
"""
import inspect, json, logging, os, subprocess, sys, tempfile, warnings

import numpy as np
import torch

torch.set_num_threads(1)

BERT_DLL = os.environ.get("BERT_DLL", "/work/main/src/BertSharp.Cli/bin/Release/net10.0/bert.dll")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelname, record.name, record.getMessage()))


cap = Capture()
logging.getLogger().addHandler(cap)
logging.getLogger().setLevel(logging.INFO)
import transformers  # noqa: E402
from transformers.utils import logging as tlog  # noqa: E402

tlog.set_verbosity_info()          # so "All model checkpoint weights were used" etc. are captured too
tlog.add_handler(cap)
tlog.disable_default_handler()
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.models import Pooling  # noqa: E402

try:
    import tokenizers  # noqa: F401
except ImportError:
    # Environment shim, not about the folder: without the Rust `tokenizers` package AutoTokenizer still picks the
    # (dummy) BertTokenizerFast and raises ImportError; ask for the slow BertTokenizer instead.
    _orig_auto_tok = transformers.AutoTokenizer.from_pretrained.__func__

    @classmethod
    def _slow_auto_tok(cls, *args, **kwargs):
        kwargs.setdefault("use_fast", False)
        return _orig_auto_tok(cls, *args, **kwargs)

    transformers.AutoTokenizer.from_pretrained = _slow_auto_tok
    print("SHIM: no `tokenizers` package, so AutoTokenizer is called with use_fast=False (slow BertTokenizer)")

print(f"transformers {transformers.__version__}, sentence-transformers {sentence_transformers.__version__}, "
      f"torch {torch.__version__}")


def patch_pooling():
    known = set(inspect.signature(Pooling.__init__).parameters) - {"self"}
    orig = Pooling.load

    @staticmethod
    def load(input_path):
        with open(os.path.join(input_path, "config.json")) as f:
            config = json.load(f)
        dropped = {k: v for k, v in config.items() if k not in known}
        if dropped:
            print(f"  SHIM: dropping Pooling keys unknown to this ST version: {dropped}")
        return Pooling(**{k: v for k, v in config.items() if k in known})

    Pooling.load = load
    return orig


def interesting(records):
    out = []
    for lvl, name, msg in records:
        if lvl in ("WARNING", "ERROR", "CRITICAL") or any(s in msg for s in (
                "newly initialized", "were not used", "not initialized", "All model checkpoint weights",
                "All the weights")):
            out.append(f"[{lvl} {name}] {msg.strip()[:600]}")
    return out


def bertsharp_embed(folder, texts_path):
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as t:
        out = t.name
    r = subprocess.run(["dotnet", BERT_DLL, "embed", folder, "--input", texts_path, "-o", out, "--threads", "1",
                        "--batch-size", "4"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"bert embed failed rc={r.returncode}: {r.stderr[-2000:]}")
    rows = [json.loads(l) for l in open(out) if l.strip()]
    os.unlink(out)
    rows.sort(key=lambda d: d["index"])
    return np.array([d["embedding"] for d in rows], dtype=np.float32), r.stderr.strip()


def check(folder, texts, texts_path):
    print(f"\n=== {folder}")
    cap.records.clear()
    with warnings.catch_warnings(record=True) as pyw:
        warnings.simplefilter("always")
        try:
            model = SentenceTransformer(folder, device="cpu")
        except Exception as e:  # noqa: BLE001
            print(f"  LOAD FAILED: {type(e).__name__}: {e}")
            if os.environ.get("ST_PATCH_POOLING") != "1":
                return
            patch_pooling()
            cap.records.clear()
            model = SentenceTransformer(folder, device="cpu")
            print("  loaded with the Pooling shim")
    print("  modules:\n    " + str(model).replace("\n", "\n    "))
    for line in interesting(cap.records):
        print("  log:", line)
    for w in pyw:
        print(f"  py-warning: {w.category.__name__}: {str(w.message)[:300]}")
    print(f"  max_seq_length {model.max_seq_length}, tokenizer {type(model.tokenizer).__name__}")

    st = model.encode(texts, batch_size=4, convert_to_numpy=True, show_progress_bar=False)
    bs, bs_err = bertsharp_embed(folder, texts_path)
    if bs_err:
        print("  bert embed stderr:", bs_err.replace("\n", " | ")[:500])
    print(f"  shapes: ST {st.shape}, BertSharp {bs.shape}")
    if st.shape == bs.shape:
        d = np.abs(st - bs)
        print(f"  max abs diff {d.max():.3e} (per text: {', '.join(f'{x:.1e}' for x in d.max(axis=1))}); "
              f"max |emb| {np.abs(st).max():.3f}")
        cos = (st * bs).sum(1) / (np.linalg.norm(st, axis=1) * np.linalg.norm(bs, axis=1) + 1e-12)
        print(f"  min cosine(ST, BertSharp) {cos.min():.8f}")

    # plain transformers load: any missing (newly initialised) / unexpected / mismatched weights?
    cap.records.clear()
    m, info = transformers.AutoModel.from_pretrained(folder, output_loading_info=True)
    print(f"  AutoModel.from_pretrained: {type(m).__name__}; missing={info['missing_keys']} "
          f"unexpected={info['unexpected_keys']} mismatched={info['mismatched_keys']} "
          f"error_msgs={info['error_msgs']}")
    for line in interesting(cap.records):
        print("  log:", line)


def main():
    texts_path, folders = sys.argv[1], sys.argv[2:]
    texts = open(texts_path, encoding="utf-8").read().split("\n")
    if texts and texts[-1] == "":
        texts = texts[:-1]
    print(f"{len(texts)} texts")
    for f in folders:
        check(f, texts, texts_path)


if __name__ == "__main__":
    main()
