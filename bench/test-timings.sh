#!/usr/bin/env bash
# Timings that used to be pass/fail limits in the tests and are now only logged by them: reading WikiText-2's
# train split (the limit was 5 s) and the checkpoint fuzz's loads per second (3,000 mutations per format; the limit
# was 1,000 within 9 s); also the Hub client fetching all-MiniLM-L6-v2 from the local fake Hub (never a limit).
# Runs those tests and prints their log lines. Needs the datasets (BERTSHARP_DATA_DIR or ../shared/data); run it
# on an otherwise idle machine.
# Usage: bench/test-timings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet test tests/BertSharp.Tests -c Release \
  --filter "FullyQualifiedName~WikiText2RealDataTests.GzippedTrainSplit|FullyQualifiedName~CheckpointFuzzTests.Mutated|FullyQualifiedName~AllMiniLMHubTests" \
  --logger "console;verbosity=detailed" 2>&1 | grep -E "^ *(train: .* read in|[a-z]+: [0-9]+ mutations in|all-MiniLM-L6-v2 from the local fake Hub)|^ *(Passed|Failed|Skipped) "
