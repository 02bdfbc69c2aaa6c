#!/usr/bin/env bash
# The figures that decide issue 6's `seed` training targets, measured the way the docs report them: ROUNDS rounds,
# each running `bert --threads T bench train --model-preset seed --steps 8` in fp32 then bf16 for every T in THREADS,
# one process per run (each MFU against the peak its own run measured). Prints every round and the medians:
# fp32 MFU (target >= 50 %) and bf16 / fp32 sequences/s (target >= 2x), per round and of the medians.
# With BEFORE_ENV set (e.g. BEFORE_ENV=BERTSHARP_MKL_DISPATCH=default), every run is made twice, first with that
# environment ("before"), then without ("after"), alternating, and both are summarised.
# Usage: bench/seed-rounds.sh [BERT_COMMAND]   (env: ROUNDS=6, THREADS="1 2", STEPS=8, BEFORE_ENV, OUT=folder for the JSON)
set -euo pipefail
BERT=${1:-"dotnet run -c Release --project $(dirname "$0")/../src/BertSharp.Cli --"}
ROUNDS=${ROUNDS:-6}; THREADS=${THREADS:-"1 2"}; STEPS=${STEPS:-8}; BEFORE_ENV=${BEFORE_ENV:-}
OUT=${OUT:-$(mktemp -d)}
VARIANTS="${BEFORE_ENV:+before }after"

for r in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    for p in fp32 bf16; do
      for v in $VARIANTS; do
        if [ "$v" = before ]; then run="env $BEFORE_ENV $BERT"; else run="$BERT"; fi
        $run --threads "$t" bench train --model-preset seed --steps "$STEPS" --precision "$p" --json \
          > "$OUT/r$r-t$t-$p-$v.json"
      done
    done
  done
done

python3 - "$OUT" "$ROUNDS" "$THREADS" "$VARIANTS" "$BEFORE_ENV" <<'PY'
import json, statistics, sys
out, rounds, threads, variants, before_env = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
def row(r, t, p, v):
    rows = json.load(open(f"{out}/r{r}-t{t}-{p}-{v}.json"))
    return next(x for x in rows if x["name"].startswith("train"))
for t in threads:
  for v in variants:
    label = f"{t} thread(s)" + ("" if len(variants) == 1 else f", {v}" + (f" ({before_env})" if v == "before" else ""))
    fp = [row(r, t, "fp32", v) for r in range(1, rounds + 1)]
    bf = [row(r, t, "bf16", v) for r in range(1, rounds + 1)]
    ratios = [b["sequences_per_second"] / f["sequences_per_second"] for f, b in zip(fp, bf)]
    print(f"{label}, by round: " + "; ".join(
        f"{f['sequences_per_second']:.0f} ({f['mfu']:.1%}) / {b['sequences_per_second']:.0f} ({q:.2f}x)"
        for f, b, q in zip(fp, bf, ratios)))
    mf, mb = (statistics.median(x["sequences_per_second"] for x in s) for s in (fp, bf))
    print(f"{label}, medians: fp32 {mf:.0f} seq/s, MFU {statistics.median(f['mfu'] for f in fp):.1%} "
          f"(range {min(f['mfu'] for f in fp):.1%}-{max(f['mfu'] for f in fp):.1%}); bf16 {mb:.0f} seq/s, "
          f"{mb / mf:.2f}x fp32 (per-round median {statistics.median(ratios):.2f}x, "
          f"{sum(q >= 2 for q in ratios)} of {rounds} rounds >= 2x)")
print(f"JSON: {out}")
PY
