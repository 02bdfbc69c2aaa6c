#!/usr/bin/env bash
# The inference table of docs/SERVING.md: `bert bench infer` for all-MiniLM-L6-v2 and a BERT-base-sized classifier,
# 1 and 2 threads, batch 1 and 32, with each of BertSharp's engines (torch fp32, torch bf16, onnxruntime) against
# ONNX Runtime on the model's plain export in the same process, rounds alternating.
#
#   bench/infer-vs-ort.sh [OUT_DIR] [DATA_DIR]
#
# OUT_DIR (default runs/infer-vs-ort) gets the exports, the base-sized classifier, every run's output and table.md;
# DATA_DIR defaults to $BERTSHARP_DATA_DIR, else ../shared/data. ROUNDS (default 5) sets the rounds per run. The
# base-sized classifier is BERT-base's shape (12 layers, hidden 768, bert-base-uncased's vocabulary) fine-tuned from
# random weights for 2 steps on SNLI: its speed is that of any fine-tuned BERT-base, whatever its weights.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/infer-vs-ort}
data=${2:-${BERTSHARP_DATA_DIR:-../shared/data}}
rounds=${ROUNDS:-5}
mkdir -p "$out"
dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
bert=src/BertSharp.Cli/bin/Release/net10.0/bert
minilm=$data/models/all-MiniLM-L6-v2

awk -F'\t' 'NR <= 300 { print $6 }' "$data/stsb/sts-test.csv" > "$out/sts300.txt"
python3 - "$data/snli/snli_1.0_test.jsonl.gz" > "$out/snli100.txt" <<'EOF'
import gzip, itertools, json, sys
for line in itertools.islice(gzip.open(sys.argv[1], "rt"), 100):
    d = json.loads(line)
    print(d["sentence1"] + "\t" + d["sentence2"])
EOF
if [[ ! -f $out/base-classifier/model.safetensors ]]; then
  "$bert" finetune classify --init random --model-preset base --vocab "$data/vocab/bert-base-uncased/vocab.txt" \
    --train "$data/snli/snli_1.0_train_0.01.jsonl.gz" --dev "$data/snli/snli_1.0_dev.jsonl.gz" \
    --max-train-examples 64 --max-eval-examples 64 --max-steps 2 --batch-size 8 --output "$out/base-classifier" > "$out/base-classifier.log" 2>&1
fi
[[ -f $out/minilm-onnx/model.onnx ]] || "$bert" export onnx "$minilm" --output "$out/minilm-onnx" > "$out/minilm-onnx.log" 2>&1
[[ -f $out/base-onnx/model.onnx ]] || "$bert" export onnx "$out/base-classifier" --output "$out/base-onnx" > "$out/base-onnx.log" 2>&1

table=$out/table.md
echo "| model | threads | batch | BertSharp engine | BertSharp seq/s | ONNX Runtime seq/s | BertSharp p50 ms | ONNX Runtime p50 ms | throughput ratio |" > "$table"
echo "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |" >> "$table"
for model in minilm base; do
  if [[ $model == minilm ]]; then dir=$minilm; input=$out/sts300.txt; else dir=$out/base-classifier; input=$out/snli100.txt; fi
  for threads in 1 2; do
    for batch in 1 32; do
      for engine in "torch fp32" "torch bf16" "onnxruntime fp32"; do
        set -- $engine
        log=$out/$model-t$threads-b$batch-$1-$2.json
        echo "== $bert --threads $threads --precision $2 bench infer --model $dir --input $input --batch-size $batch --rounds $rounds --engine $1 --onnx $out/$model-onnx/model.onnx --json" >&2
        "$bert" --threads "$threads" --precision "$2" bench infer --model "$dir" --input "$input" --batch-size "$batch" --rounds "$rounds" \
          --engine "$1" --onnx "$out/$model-onnx/model.onnx" --json > "$log"
        python3 - "$log" "$model" "$threads" "$batch" "$1 $2" >> "$table" <<'EOF'
import json, sys
bert, ort = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {bert['sequences_per_second']:.1f} | {ort['sequences_per_second']:.1f} | "
      f"{bert['p50_ms']:.2f} | {ort['p50_ms']:.2f} | {bert['sequences_per_second'] / ort['sequences_per_second']:.2f} |")
EOF
        tail -1 "$table" >&2
      done
    done
  done
done
cat "$table"
