#!/usr/bin/env bash
# The measurements of docs/EXPORT.md: all-MiniLM-L6-v2 and a fine-tuned classifier exported plain, --optimize and
# --quantize int8, each verified against BertSharp on a dev file (the int8 accuracy change), then ONNX Runtime's
# latency (batch 1) and throughput (batch 32) next to BertSharp's own forward pass, in alternating rounds
# (bench/OnnxBench).
#
#   bench/onnx-results.sh CLASSIFIER_DIR [OUT_DIR] [DATA_DIR]
#
# CLASSIFIER_DIR: a classify folder whose dev file is SNLI's (docs/EXPORT.md fine-tunes all-MiniLM-L6-v2 on the SNLI
# 1 % sample; the command is there). OUT_DIR (default runs/onnx-results) gets the exported folders, their logs and
# the bench tables; DATA_DIR defaults to $BERTSHARP_DATA_DIR, else ../shared/data. THREADS (default 2) and ROUNDS
# (default 7) set the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
classifier=${1:?usage: bench/onnx-results.sh CLASSIFIER_DIR [OUT_DIR] [DATA_DIR]}
out=${2:-runs/onnx-results}
data=${3:-${BERTSHARP_DATA_DIR:-../shared/data}}
threads=${THREADS:-2}
rounds=${ROUNDS:-7}
mkdir -p "$out"

dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/OnnxBench -c Release -v q -nologo >/dev/null
bert=src/BertSharp.Cli/bin/Release/net10.0/bert
bench=bench/OnnxBench/bin/Release/net10.0/OnnxBench

measure() {   # name, model folder, dev file
  local name=$1 model=$2 dev=$3
  for variant in plain optimize int8; do
    local flags=()
    [[ $variant == optimize ]] && flags=(--optimize)
    [[ $variant == int8 ]] && flags=(--quantize int8)
    echo "== bert export onnx $model --output $out/$name-$variant ${flags[*]} --verify-data $dev --threads $threads" >&2
    "$bert" export onnx "$model" --output "$out/$name-$variant" "${flags[@]}" --verify-data "$dev" --threads "$threads" 2>&1 | tee "$out/$name-$variant.log" >&2
  done
  echo "== $bench --model $model --data $dev ... --threads $threads --rounds $rounds" >&2
  "$bench" --model "$model" --data "$dev" --threads "$threads" --rounds "$rounds" \
    --onnx "plain=$out/$name-plain" --onnx "plain, ORT basic rewrites only=$out/$name-plain@basic" \
    --onnx "--optimize=$out/$name-optimize" --onnx "--quantize int8=$out/$name-int8" \
    --json "$out/$name-bench.json" | tee "$out/$name-bench.md"
}

measure minilm "$data/models/all-MiniLM-L6-v2" "$data/stsb/sts-dev.csv"
measure classifier "$classifier" "$data/snli/snli_1.0_dev.jsonl.gz"
