#!/usr/bin/env bash
# The fine-tuning measurements of docs/RESULTS.md: SNLI (1% train sample), STS-B and the NLTK Penn Treebank
# sample (POS), each fine-tuned from a pre-trained model folder and from random initialization of the same size.
#
#   bench/finetune-results.sh PRETRAINED_DIR [OUT_DIR] [DATA_DIR]
#
# PRETRAINED_DIR: a `bert pretrain` run folder (the seed preset); OUT_DIR (default runs/finetune-results) gets one
# run folder per measurement; DATA_DIR defaults to $BERTSHARP_DATA_DIR, else ../shared/data. Prints a markdown
# table with the wall-clock time of each run. Extra `bert finetune` options can be given in $FINETUNE_ARGS;
# PARALLEL=1 runs the pre-trained and random-init runs of a task at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."

pre=${1:?usage: bench/finetune-results.sh PRETRAINED_DIR [OUT_DIR] [DATA_DIR]}
out=${2:-runs/finetune-results}
data=${3:-${BERTSHARP_DATA_DIR:-../shared/data}}
preset=${PRESET:-seed}
mkdir -p "$out"

dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
bert=src/BertSharp.Cli/bin/Release/net10.0/bert

snli=(classify --train "$data/snli/snli_1.0_train_0.01.jsonl.gz" --dev "$data/snli/snli_1.0_dev.jsonl.gz" --test "$data/snli/snli_1.0_test.jsonl.gz")
stsb=(similarity --train "$data/stsb/sts-train.csv" --dev "$data/stsb/sts-dev.csv" --test "$data/stsb/sts-test.csv")
pos=(tag --train "$data/ptb-pos/treebank.zip")

init_pre=(--model "$pre")
init_rand=(--init random --model-preset "$preset" --vocab "$pre/vocab.txt")

run() {   # name, then the finetune arguments
  local name=$1; shift
  rm -rf "${out:?}/$name"
  local start=$(date +%s)
  echo "== bert finetune $* --output $out/$name ${FINETUNE_ARGS:-}" >&2
  # shellcheck disable=SC2086
  "$bert" finetune "$@" --output "$out/$name" --json ${FINETUNE_ARGS:-} >"$out/$name.json" 2>"$out/$name.log"
  echo $(( $(date +%s) - start )) >"$out/$name.seconds"
}

# PARALLEL=1 runs each task's two starts side by side (on 2 cores, with FINETUNE_ARGS="--threads 1").
pair() {   # task name, then its arguments
  local task=$1; shift
  if [[ ${PARALLEL:-0} == 1 ]]; then
    run "$task-pretrained" "$@" "${init_pre[@]}" & local p=$!
    run "$task-random" "$@" "${init_rand[@]}" & local r=$!
    wait $p && wait $r
  else
    run "$task-pretrained" "$@" "${init_pre[@]}"
    run "$task-random" "$@" "${init_rand[@]}"
  fi
}
pair snli "${snli[@]}"
pair stsb "${stsb[@]}"
pair pos "${pos[@]}"

m() { jq -r ".$2.$3 * 100 | . * 10 | round / 10" "$out/$1.json"; }   # a metric as a percentage, one decimal
t() { local s; s=$(cat "$out/$1.seconds"); printf '%d:%02d' $((s / 60)) $((s % 60)); }
echo "| task | start | dev | test | time (m:s) |"
echo "| --- | --- | --- | --- | --- |"
for init in pretrained random; do
  echo "| SNLI (accuracy %) | $init | $(m snli-$init dev accuracy) | $(m snli-$init test accuracy) | $(t snli-$init) |"
done
for init in pretrained random; do
  echo "| STS-B (Pearson / Spearman ×100) | $init | $(m stsb-$init dev pearson) / $(m stsb-$init dev spearman) | $(m stsb-$init test pearson) / $(m stsb-$init test spearman) | $(t stsb-$init) |"
done
for init in pretrained random; do
  echo "| PTB POS (tag accuracy %) | $init | $(m pos-$init dev accuracy) | $(m pos-$init test accuracy) | $(t pos-$init) |"
done
