#!/usr/bin/env bash
# The measurements of docs/EMBEDDINGS.md: all-MiniLM-L6-v2 on STS-B test as published, fine-tuned on STS-B train
# (CoSENT) and on the SNLI 1 % sample (in-batch negatives); a `bert pretrain` seed model and random initialization of
# its size fine-tuned the same way. Every fine-tuning run evaluates on sts-dev.csv each epoch (the best model by dev
# Spearman) and reports sts-test.csv once at the end. Prints a markdown table with each run's wall time.
#
#   bench/embedding-results.sh [OUT_DIR] [DATA_DIR]
#
# OUT_DIR (default runs/embedding-results) gets one run folder per measurement; DATA_DIR defaults to
# $BERTSHARP_DATA_DIR, else ../shared/data. SEED_MODEL=DIR uses an existing `bert pretrain` folder instead of running
# the README's pre-training; LR_MINILM / EPOCHS_MINILM / LR_SEED / EPOCHS_SEED set the schedules (chosen on dev);
# ONLY="minilm" skips the seed-model rows; TABLE_ONLY=1 prints the table of existing runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/embedding-results}
data=${2:-${BERTSHARP_DATA_DIR:-../shared/data}}
mkdir -p "$out"
# BERT=path runs another build (e.g. a `dotnet publish` copy, so that rebuilding the tree mid-run changes nothing)
if [[ -z ${BERT:-} ]]; then
  [[ -n ${TABLE_ONLY:-} ]] || dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
  BERT=src/BertSharp.Cli/bin/Release/net10.0/bert
fi
bert=$BERT
minilm=$data/models/all-MiniLM-L6-v2
sts=(--dev "$data/stsb/sts-dev.csv" --test "$data/stsb/sts-test.csv")
stsb=(--train "$data/stsb/sts-train.csv" "${sts[@]}")
snli=(--train "$data/snli/snli_1.0_train_0.01.jsonl.gz" "${sts[@]}")

run() {   # name, then the finetune embed arguments
  local name=$1; shift
  [[ -n ${TABLE_ONLY:-} ]] && return
  rm -rf "${out:?}/$name"
  local start=$(date +%s)
  echo "== bert finetune embed $* --output $out/$name" >&2
  "$bert" finetune embed "$@" --output "$out/$name" --json >"$out/$name.json" 2>"$out/$name.log"
  echo $(( $(date +%s) - start )) >"$out/$name.seconds"
}

if [[ -z ${TABLE_ONLY:-} ]]; then
  "$bert" evaluate "$minilm" --data "$data/stsb/sts-test.csv" --json >"$out/minilm-asis.json" 2>"$out/minilm-asis.log"
  "$bert" evaluate "$minilm" --data "$data/stsb/sts-dev.csv" --json >"$out/minilm-asis-dev.json" 2>"$out/minilm-asis-dev.log"
fi
m=(--model "$minilm" --learning-rate "${LR_MINILM:-2e-5}" --epochs "${EPOCHS_MINILM:-4}" --batch-size 32)
run minilm-stsb "${m[@]}" "${stsb[@]}"
run minilm-snli "${m[@]}" "${snli[@]}"

if [[ ${ONLY:-} != minilm ]]; then
  seedmodel=${SEED_MODEL:-$out/pretrain-seed}
  if [[ -z ${SEED_MODEL:-} && -z ${TABLE_ONLY:-} ]]; then
    start=$(date +%s)
    "$bert" pretrain --data-dir "$data" --output "$seedmodel" >"$out/pretrain-seed.log" 2>&1
    echo $(( $(date +%s) - start )) >"$out/pretrain-seed.seconds"
  fi
  s=(--learning-rate "${LR_SEED:-5e-4}" --epochs "${EPOCHS_SEED:-10}" --batch-size 32)
  run seed-stsb --model "$seedmodel" "${s[@]}" "${stsb[@]}"
  run seed-snli --model "$seedmodel" "${s[@]}" "${snli[@]}"
  run random-stsb --init random --model-preset seed --vocab "$seedmodel/vocab.txt" "${s[@]}" "${stsb[@]}"
  run random-snli --init random --model-preset seed --vocab "$seedmodel/vocab.txt" "${s[@]}" "${snli[@]}"
fi

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None
def secs(name):
    p = os.path.join(out, name + ".seconds")
    return open(p).read().strip() + " s" if os.path.exists(p) else ""
print("| model | trained on | dev Spearman | test Spearman | test Pearson | wall time |")
print("| --- | --- | --- | --- | --- | --- |")
a, d = load("minilm-asis"), load("minilm-asis-dev")
if a and d:
    print(f"| all-MiniLM-L6-v2 | (as published) | {100 * d['metrics']['spearman']:.2f} | {100 * a['metrics']['spearman']:.2f} | {100 * a['metrics']['pearson']:.2f} | |")
for name, model, data in [("minilm-stsb", "all-MiniLM-L6-v2", "STS-B train, CoSENT"), ("minilm-snli", "all-MiniLM-L6-v2", "SNLI 1 %, in-batch negatives"),
                          ("seed-stsb", "seed (bert pretrain)", "STS-B train, CoSENT"), ("seed-snli", "seed (bert pretrain)", "SNLI 1 %, in-batch negatives"),
                          ("random-stsb", "seed size, random init", "STS-B train, CoSENT"), ("random-snli", "seed size, random init", "SNLI 1 %, in-batch negatives")]:
    r = load(name)
    if r:
        print(f"| {model} | {data} | {100 * r['dev']['spearman']:.2f} | {100 * r['test']['spearman']:.2f} | {100 * r['test']['pearson']:.2f} | {secs(name)} |")
PY
