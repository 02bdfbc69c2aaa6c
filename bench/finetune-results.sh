#!/usr/bin/env bash
# The fine-tuning measurements of docs/RESULTS.md: SNLI (1% train sample), STS-B, the NLTK Penn Treebank sample (POS),
# CoNLL-2000 chunking and SQuAD v1.1 (dev file split by article), each fine-tuned from a model folder (or Hub id) and
# from random initialization of the same size and vocabulary.
#
#   bench/finetune-results.sh MODEL [OUT_DIR] [DATA_DIR]
#
# MODEL: a `bert pretrain` run folder or a published checkpoint; OUT_DIR (default runs/finetune-results) gets one run
# folder per measurement; DATA_DIR defaults to $BERTSHARP_DATA_DIR, else ../shared/data. Prints a markdown table with
# the wall-clock time of each run. Environment:
#   TASKS="snli stsb pos chunk qa"   which tasks (default: snli stsb pos)
#   STARTS="pretrained random"       which starts (default: both)
#   SEEDS="42 7 13"                  repeat every run with each seed (run folders TASK-START-sSEED; the table gives
#                                    each seed's value and the mean)
#   FINETUNE_ARGS, ARGS_snli, ARGS_stsb, ARGS_pos, ARGS_chunk, ARGS_qa: extra `bert finetune` options, for all runs or
#                                    one task's
#   PARALLEL=1                       run each task's two starts side by side (on 2 cores, with FINETUNE_ARGS="--threads 1")
#   TABLE_ONLY=1                     print the table of the runs already in OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

pre=${1:?usage: bench/finetune-results.sh MODEL [OUT_DIR] [DATA_DIR]}
out=${2:-runs/finetune-results}
data=${3:-${BERTSHARP_DATA_DIR:-../shared/data}}
mkdir -p "$out"

[[ -n ${TABLE_ONLY:-} ]] || dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
bert=src/BertSharp.Cli/bin/Release/net10.0/bert

snli=(classify --train "$data/snli/snli_1.0_train_0.01.jsonl.gz" --dev "$data/snli/snli_1.0_dev.jsonl.gz" --test "$data/snli/snli_1.0_test.jsonl.gz")
stsb=(similarity --train "$data/stsb/sts-train.csv" --dev "$data/stsb/sts-dev.csv" --test "$data/stsb/sts-test.csv")
pos=(tag --train "$data/ptb-pos/treebank.zip")
chunk=(tag --train "$data/ptb-pos/conll2000.zip")
qa=(qa --train "$data/squad/dev-v1.1.json" --split-articles 38)

init_pre=(--model "$pre")
init_rand=(--init random --model "$pre")   # the model's config and vocabulary, none of its weights

run() {   # name, then the finetune arguments
  local name=$1; shift
  rm -rf "${out:?}/$name"
  local start=$(date +%s)
  echo "== bert finetune $* --output $out/$name ${FINETUNE_ARGS:-}" >&2
  # shellcheck disable=SC2086
  local task_args=ARGS_${name%%-*}
  "$bert" finetune "$@" --output "$out/$name" --json ${FINETUNE_ARGS:-} ${!task_args:-} >"$out/$name.json" 2>"$out/$name.log"
  echo $(( $(date +%s) - start )) >"$out/$name.seconds"
}

seeds=(${SEEDS:-42})
tasks=(${TASKS:-snli stsb pos})
starts=(${STARTS:-pretrained random})
pair() {   # task name, seed, then its arguments
  local task=$1 seed=$2 pids=() start; shift 2
  for start in "${starts[@]}"; do
    local init=init_pre; [[ $start == random ]] && init=init_rand
    local -n init_args=$init
    if [[ ${PARALLEL:-0} == 1 ]]; then run "$task-$start-s$seed" "$@" "${init_args[@]}" --seed "$seed" & pids+=($!)
    else run "$task-$start-s$seed" "$@" "${init_args[@]}" --seed "$seed"; fi
  done
  local p; for p in "${pids[@]}"; do wait "$p"; done
}
if [[ -z ${TABLE_ONLY:-} ]]; then
  for seed in "${seeds[@]}"; do
    for task in "${tasks[@]}"; do
      declare -n task_args=$task
      pair "$task" "$seed" "${task_args[@]}"
      unset -n task_args
    done
  done
fi

# One cell: each seed's value (×100, one decimal) and, with several seeds, their mean in bold.
cell() {   # run prefix (task-start), split, metric, scale (default 100: fractions shown ×100; QA's EM/F1 are percentages)
  local vals=() f
  for seed in "${seeds[@]}"; do vals+=("$(jq -r ".$2.$3 * ${4:-100}" "$out/$1-s$seed.json" | awk '{printf "%.1f", $1}')"); done
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
row() {   # task, label, metric, with time?
  local start; for start in "${starts[@]}"; do
    local test_cell=; [[ $1 == qa ]] || test_cell=$(cell "$1-$start" test "$3")
    local scale=100; [[ $1 == qa ]] && scale=1
    echo "| $2 | $start | $(cell "$1-$start" dev "$3" $scale) | $test_cell | $([[ -n ${4:-} ]] && t "$1-$start") |"
  done
}
for task in "${tasks[@]}"; do
  case $task in
    snli) row snli "SNLI accuracy %" accuracy time; row snli "SNLI macro-F1 ×100" macro_f1 ;;
    stsb) row stsb "STS-B Pearson ×100" pearson time; row stsb "STS-B Spearman ×100" spearman ;;
    pos) row pos "PTB POS tag accuracy %" accuracy time ;;
    chunk) row chunk "CoNLL-2000 chunk F1 ×100" f1 time; row chunk "CoNLL-2000 tag accuracy %" accuracy ;;
    qa) row qa "SQuAD F1 (held-out articles in the dev column)" f1 time; row qa "SQuAD EM (held-out articles in the dev column)" exact_match ;;
  esac
done
