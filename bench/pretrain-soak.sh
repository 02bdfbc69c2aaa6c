#!/usr/bin/env bash
# Soak for unexpected exits of `bert pretrain` (issue 24): runs the README's job and shorter variants that cross
# epoch boundaries, evaluate and checkpoint often, on 1 and 2 threads, fp32 and bf16, each with --verbose so an
# unexpected exception leaves its stack trace in the run's log. Every log is kept. A run that exits with anything
# but 0 is a failure; each failed run is then resumed with --resume to show that the checkpoint it left continues.
# Usage: bench/pretrain-soak.sh [BERT_COMMAND]
#   env: RUNS=50 (short runs), MEDIUM=0 (the README's batches for 100 steps), FULL=0 (README jobs), ISSUE=0 (the job
#        that exited with code 2 in issue 24: the README job of build 417c174, 500 steps of 512 in fp32, evaluated
#        every 25 steps), OUT=folder for logs and run folders, DATA=the data folder
set -uo pipefail
BERT=${1:-"dotnet run -c Release --project $(dirname "$0")/../src/BertSharp.Cli --"}
RUNS=${RUNS:-50}; MEDIUM=${MEDIUM:-0}; FULL=${FULL:-0}; ISSUE=${ISSUE:-0}
DATA=${DATA:-${BERTSHARP_DATA_DIR:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}}
OUT=${OUT:-$(mktemp -d /tmp/pretrain-soak.XXXXXX)}
mkdir -p "$OUT"
# A small corpus (the first 800 lines of WikiText-2's training split): an epoch is a few steps, so the prefetch
# thread starts a new shuffle right after most evaluations, as at step 385 of the README's job.
corpus="$OUT/small.tokens"
[ -f "$corpus" ] || gzip -dc "$DATA/wikitext-2/wiki.train.tokens.gz" | head -n 800 > "$corpus"

summary="$OUT/summary.tsv"
: > "$summary"
run() {   # name, then the pretrain arguments
  local name=$1; shift
  local start=$SECONDS
  $BERT --verbose "$@" --output "$OUT/$name" > "$OUT/$name.out" 2> "$OUT/$name.log"
  local rc=$?
  printf '%s\t%s\t%ss\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$*" | tee -a "$summary"
  if [ "$rc" -ne 0 ]; then
    $BERT --verbose pretrain --resume --output "$OUT/$name" > "$OUT/$name.resume.out" 2> "$OUT/$name.resume.log"
    printf '%s.resume\t%s\n' "$name" "$?" | tee -a "$summary"
  fi
}

for i in $(seq 1 "$RUNS"); do
  threads=$(( i % 2 + 1 )); precision=$([ $(( i % 4 )) -lt 2 ] && echo fp32 || echo bf16)
  batch=$([ $(( i % 3 )) -eq 0 ] && echo 64 || echo 32)
  run "short-$i" --threads "$threads" --precision "$precision" --seed "$i" pretrain --corpus "$corpus" \
    --data-dir "$DATA" --vocab-size 4000 --batch-size "$batch" --max-steps 120 --eval-every 5 --max-eval-examples 128
done
# The README's data and batches of 512, evaluating every 5 steps: the first epoch ends at step 77, two steps after an
# evaluation, as the sixth did at step 385 in the run that exited with code 2.
for i in $(seq 1 "$MEDIUM"); do
  run "medium-$i" --threads "$(( i % 2 + 1 ))" --seed "$i" pretrain --data-dir "$DATA" --max-steps 100 --eval-every 5 --max-eval-examples 1024
done
for i in $(seq 1 "$FULL"); do
  run "readme-$i" pretrain --data-dir "$DATA"
done
for i in $(seq 1 "$ISSUE"); do
  run "issue24-$i" --precision fp32 pretrain --data-dir "$DATA" --batch-size 512 --max-steps 500 --eval-every 25 \
    --learning-rate 1e-3 --max-eval-examples 4096
done

total=$(grep -vc '\.resume' "$summary"); bad=$(grep -v '\.resume' "$summary" | awk -F'\t' '$2 != 0' | wc -l)
echo "$total runs, $bad unexpected exits; logs in $OUT"
[ "$bad" -eq 0 ]
