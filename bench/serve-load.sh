#!/usr/bin/env bash
# The load test of docs/SERVING.md: `bert serve MODEL` under `hey` (Debian's HTTP load generator, installed if
# missing) with 1, 8 and 64 concurrent clients for DURATION each, POST /embed of one sentence per request; then
# SOAK seconds at 8 clients with the server's resident memory sampled every 10 s. Prints a markdown table
# (requests/s, p50/p99 latency, non-200 answers) and the RSS samples.
#
#   bench/serve-load.sh [MODEL] [DATA_DIR]   (env: DURATION=60s, SOAK=600, PORT=18090, THREADS=2, BERT=path of a bert build)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${2:-${BERTSHARP_DATA_DIR:-../shared/data}}
model=${1:-$data/models/all-MiniLM-L6-v2}
DURATION=${DURATION:-60s}; SOAK=${SOAK:-600}; PORT=${PORT:-18090}; THREADS=${THREADS:-2}
command -v hey >/dev/null || apt-get install -y -qq hey >/dev/null
if [[ -z ${BERT:-} ]]; then
  dotnet build src/BertSharp.Cli -c Release -v q -nologo >/dev/null
  BERT=src/BertSharp.Cli/bin/Release/net10.0/bert
fi
work=$(mktemp -d)
"$BERT" --threads "$THREADS" serve "$model" --port "$PORT" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 0.5; done
url="http://localhost:$PORT/embed"
body='{"inputs": "A man is playing a guitar on the stage while the crowd sings along."}'
hey -n 200 -c 8 -m POST -T application/json -d "$body" "$url" >/dev/null   # warm-up

summary() {   # hey's text report → requests/s, p50 ms, p99 ms, non-200 count
  local rps p50 p99 ok total
  rps=$(awk '/Requests\/sec:/ {print $2}' "$1")
  p50=$(awk '/50% in/ {print $3 * 1000}' "$1")
  p99=$(awk '/99% in/ {print $3 * 1000}' "$1")
  ok=$(awk '$1 == "[200]" {print $2}' "$1"); ok=${ok:-0}   # hey separates "[200]" and the count with a tab
  total=$(awk '/^ *\[[0-9]+\]/ {s += $2} END {print s + 0}' "$1")
  echo "$rps|$p50|$p99|$(( total - ok ))|$total"
}
echo "| clients | requests/s | p50 ms | p99 ms | non-200 | requests |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for c in 1 8 64; do
  hey -z "$DURATION" -c "$c" -m POST -T application/json -d "$body" "$url" >"$work/hey-$c.txt"
  IFS='|' read -r rps p50 p99 bad total <<<"$(summary "$work/hey-$c.txt")"
  echo "| $c | $rps | $p50 | $p99 | $bad | $total |"
done
if (( SOAK > 0 )); then
  hey -z "${SOAK}s" -c 8 -m POST -T application/json -d "$body" "$url" >"$work/hey-soak.txt" &
  load=$!
  rss=()
  for _ in $(seq 0 10 "$SOAK"); do rss+=("$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status")"); sleep 10; done
  wait $load
  IFS='|' read -r rps p50 p99 bad total <<<"$(summary "$work/hey-soak.txt")"
  echo
  echo "soak: ${SOAK} s at 8 clients: $rps requests/s, p50 $p50 ms, p99 $p99 ms, $bad non-200 of $total"
  echo "server RSS (MiB) every 10 s: ${rss[*]}"
fi
