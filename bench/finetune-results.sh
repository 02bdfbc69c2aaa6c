#!/usr/bin/env bash
# The fine-tuning measurements of docs/RESULTS.md: SNLI (1% train sample), STS-B and the NLTK Penn Treebank
# sample (POS), each fine-tuned from a pre-trained model folder and from random initialization of the same size.
#
#   bench/finetune-results.sh PRETRAINED_DIR [OUT_DIR] [DATA_DIR]
#
# PRETRAINED_DIR: a `bert pretrain` run folder (the seed preset); OUT_DIR (default runs/finetune-results) gets one
# run folder per measurement; DATA_DIR defaults to $BERTSHARP_DATA_DIR, else ../shared/data. Prints a markdown
# table with the wall-clock time of each run. Extra `bert finetune` options can be given in $FINETUNE_ARGS;
# PARALLEL=1 runs the pre-trained and random-init runs of a task at the same time; SEEDS="42 7 13" repeats every
# run with each seed (run folders TASK-START-sSEED) and the table gives each seed's value and the mean.
set -euo pipefail
cd "$(dirname "$0")/.."

pre=${1:?usage: bench/finetune-results.sh PRETRAINED_DIR [OUT_DIR] [DATA_DIR]}
out=${2:-runs/finetune-results}
data=${3:-${BERTSHARP_DATA_DIR:-../shared/data}}
preset=${PRESET:-seed}
mkdir -p "$out"

[[ -n ${TABLE_ONLY:-} ]] || dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
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
seeds=(${SEEDS:-42})
pair() {   # task name, seed, then its arguments
  local task=$1 seed=$2; shift 2
  if [[ ${PARALLEL:-0} == 1 ]]; then
    run "$task-pretrained-s$seed" "$@" "${init_pre[@]}" --seed "$seed" & local p=$!
    run "$task-random-s$seed" "$@" "${init_rand[@]}" --seed "$seed" & local r=$!
    wait $p && wait $r
  else
    run "$task-pretrained-s$seed" "$@" "${init_pre[@]}" --seed "$seed"
    run "$task-random-s$seed" "$@" "${init_rand[@]}" --seed "$seed"
  fi
}
if [[ -z ${TABLE_ONLY:-} ]]; then   # TABLE_ONLY=1 prints the table of runs already in OUT_DIR
  for seed in "${seeds[@]}"; do
    pair snli "$seed" "${snli[@]}"
    pair stsb "$seed" "${stsb[@]}"
    pair pos "$seed" "${pos[@]}"
  done
fi

# One cell: each seed's value (×100, one decimal) and, with several seeds, their mean in bold.
cell() {   # run prefix (task-start), split, metric
  local vals=() f
  for seed in "${seeds[@]}"; do vals+=("$(jq -r ".$2.$3 * 100" "$out/$1-s$seed.json" | awk '{printf "%.1f", $1}')"); done
  if (( ${#vals[@]} == 1 )); then echo "${vals[0]}"; return; fi
  local mean; mean=$(printf '%s\n' "${vals[@]}" | awk '{s += $1} END {printf "%.1f", s / NR}')
  echo "${vals[*]} → **$mean**" | sed 's/ / · /g; s/ · → · / → /'
}
t() {   # total wall time of a task-start's runs
  local s=0 seed; for seed in "${seeds[@]}"; do s=$(( s + $(cat "$out/$1-s$seed.seconds") )); done
  printf '%d:%02d' $((s / 60)) $((s % 60))
}
echo "seeds: ${seeds[*]}"
echo "| task | start | dev | test | time (m:s) |"
echo "| --- | --- | --- | --- | --- |"
for init in pretrained random; do
  echo "| SNLI accuracy % | $init | $(cell snli-$init dev accuracy) | $(cell snli-$init test accuracy) | $(t snli-$init) |"
done
for init in pretrained random; do
  echo "| STS-B Pearson ×100 | $init | $(cell stsb-$init dev pearson) | $(cell stsb-$init test pearson) | $(t stsb-$init) |"
done
for init in pretrained random; do
  echo "| STS-B Spearman ×100 | $init | $(cell stsb-$init dev spearman) | $(cell stsb-$init test spearman) | |"
done
for init in pretrained random; do
  echo "| PTB POS tag accuracy % | $init | $(cell pos-$init dev accuracy) | $(cell pos-$init test accuracy) | $(t pos-$init) |"
done
