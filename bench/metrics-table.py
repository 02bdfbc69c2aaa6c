#!/usr/bin/env python3
"""Prints a run folder's evaluation rows as a Markdown table: step, wall time since the first row, validation
MLM accuracy, perplexity, NSP accuracy, losses. Usage: bench/metrics-table.py RUN_DIR"""
import json, sys
from datetime import datetime

rows = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
t0 = datetime.fromisoformat(rows[0]["time"].replace("Z", "+00:00"))
print("| step | epoch | wall time | val MLM accuracy | val perplexity | val NSP accuracy | val MLM loss | val NSP loss |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["split"] != "eval":
        continue
    t = (datetime.fromisoformat(r["time"].replace("Z", "+00:00")) - t0).total_seconds()
    print(f"| {r['step']} | {r.get('epoch', 0):.2f} | {int(t // 60)}:{int(t % 60):02d} | {r['val_mlm_accuracy']:.2%} | "
          f"{r['val_perplexity']:.0f} | {r['val_nsp_accuracy']:.2%} | {r['val_mlm_loss']:.3f} | {r['val_nsp_loss']:.3f} |")
