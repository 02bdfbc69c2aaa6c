#!/usr/bin/env bash
# The README's ONNX Runtime program (bench/OnnxExample/Program.cs, a test keeps it identical to the README's code
# block), compiled and run on an exported classifier, next to `bert predict` on the model folder it came from.
#
#   bench/onnx-example.sh MODEL_DIR TEXT [PAIR]
#
# Exports MODEL_DIR (a classify folder) with `bert export onnx` into a temporary folder, runs the example there and
# `bert predict` on MODEL_DIR; prints both and exits 1 when their labels differ.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/onnx-example.sh MODEL_DIR TEXT [PAIR]}
text=${2:?usage: bench/onnx-example.sh MODEL_DIR TEXT [PAIR]}
pair=${3:-}

dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/OnnxExample -c Release -v q -nologo >/dev/null
bert=src/BertSharp.Cli/bin/Release/net10.0/bert
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$bert" export onnx "$model" --output "$out/onnx" >/dev/null 2>"$out/export.log" || { cat "$out/export.log" >&2; exit 1; }
# The example's folder holds no libtorch: it runs with ONNX Runtime and BertSharp's tokenizer only.
if ls bench/OnnxExample/bin/Release/net10.0/runtimes/*/native/libtorch_cpu.* >/dev/null 2>&1; then echo "error: libtorch in the example's output" >&2; exit 1; fi
if [[ -n $pair ]]; then example=$(dotnet bench/OnnxExample/bin/Release/net10.0/OnnxExample.dll "$out/onnx" "$text" "$pair")
else example=$(dotnet bench/OnnxExample/bin/Release/net10.0/OnnxExample.dll "$out/onnx" "$text"); fi
predict=$(printf '%s\t%s\n' "$text" "$pair" | "$bert" predict "$model" 2>/dev/null | head -1)
[[ -n $pair ]] || predict=$(printf '%s\n' "$text" | "$bert" predict "$model" 2>/dev/null | head -1)
echo "OnnxExample (ONNX Runtime): $example"
echo "bert predict (BertSharp):   $predict"
label=${example%% *}
[[ $predict == *"\"label\":\"$label\""* ]] || { echo "error: the labels differ" >&2; exit 1; }
