#!/usr/bin/env bash
# `bert embed` throughput on the STS-B test sentences (2,758 texts, both sides of every pair), as docs/EMBEDDINGS.md
# reports it: texts/s of the encoding itself (the model load is excluded; `bert embed` prints the rate on stderr), at
# batch 1 and 64, on 1 and 2 threads, ROUNDS rounds each (median reported). The ONNX Runtime comparison is issue 21's.
#
#   bench/embed-throughput.sh [MODEL] [DATA_DIR]      (env: ROUNDS=3, BERT=path of a bert build, PRECISION=fp32)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${2:-${BERTSHARP_DATA_DIR:-../shared/data}}
model=${1:-$data/models/all-MiniLM-L6-v2}
ROUNDS=${ROUNDS:-3}
if [[ -z ${BERT:-} ]]; then
  dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
  BERT=src/BertSharp.Cli/bin/Release/net10.0/bert
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cut -f6,7 "$data/stsb/sts-test.csv" | tr '\t' '\n' >"$work/sentences.txt"
echo "| threads | batch | texts/s (median of $ROUNDS) | rounds |"
echo "| ---: | ---: | ---: | --- |"
for t in 1 2; do
  for b in 1 64; do
    rates=()
    for r in $(seq 1 "$ROUNDS"); do
      rate=$("$BERT" --threads "$t" --precision "${PRECISION:-fp32}" embed "$model" --input "$work/sentences.txt" --batch-size "$b" --output "$work/x.npy" 2>&1 >/dev/null |
        sed -n 's/.* s (\([0-9]*\) texts\/s).*/\1/p')
      rates+=("$rate")
    done
    median=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p")
    echo "| $t | $b | $median | ${rates[*]} |"
  done
done
