#!/usr/bin/env bash
# Kill a pre-training run with SIGKILL mid-run, resume it, and compare the next 100 logged losses with an
# uninterrupted run of the same seed. Usage: bench/resume-check.sh [BERT_COMMAND] (default: dotnet run the CLI).
set -euo pipefail
BERT=${1:-"dotnet run -c Release --project $(dirname "$0")/../src/BertSharp.Cli --"}
OUT=${OUT:-$(mktemp -d)}
ARGS="--batch-size 64 --max-steps 160 --eval-every 20 --max-eval-examples 256 --seed 7"

$BERT pretrain $ARGS --output "$OUT/straight" 2>"$OUT/straight.log"

$BERT pretrain $ARGS --output "$OUT/killed" 2>"$OUT/killed.log" &
pid=$!
# Wait until step 50 is logged (the last checkpoint is then step 40's), then SIGKILL: no chance to save.
until [ -f "$OUT/killed/metrics.jsonl" ] && grep -q '"step":50,' "$OUT/killed/metrics.jsonl"; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null || true
echo "killed at step $(grep -c '"split":"train"' "$OUT/killed/metrics.jsonl") (checkpoint: $(grep global_step "$OUT/killed/checkpoints/last/trainer_state.json"))"
$BERT pretrain --resume --output "$OUT/killed" 2>"$OUT/resumed.log"

python3 - "$OUT" <<'PY'
import json, sys
def losses(d):
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}
a, b = losses(sys.argv[1] + "/straight"), losses(sys.argv[1] + "/killed")
steps = list(range(41, 141))
diffs = [abs(a[s] - b[s]) for s in steps]
print(f"compared the {len(steps)} logged losses of steps 41-140: max |diff| = {max(diffs):.3g}, equal: {sum(d == 0 for d in diffs)}/{len(steps)}")
sys.exit(0 if max(diffs) <= 1e-5 else 1)
PY
