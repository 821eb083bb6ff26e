#!/usr/bin/env bash
# Benchmark task mode on a local Ray head with Serve (docs/benchmarks.md):
# the first call (deploy + run) and warm calls (p50/p95) of a trivial action,
# next to local mode and job mode in the same run.
#
#   scripts/bench-task.sh [WARM_CALLS]   (default 200; starts a Ray head if none answers)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-200}
work=$(mktemp -d)
trap './scripts/ray-head.sh stop; rm -rf "$work"' EXIT
address=$(./scripts/ray-head.sh start | tail -n1)
export RAY_ADDRESS="$address" SYNAPSE_TEST_RAY_ADDRESS="$address" SYNAPSE_CACHE_DIR="$work/cache"
go build -o "$work/synapse" ./cmd/synapse
plugin=testdata/plugins/jobtest
ms() { echo $(( ($2 - $1) / 1000000 )); }

"$work/synapse" plugin task down jobtest >/dev/null
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode task --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
first=$(ms "$t0" "$t1")
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode task --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
cli_warm=$(ms "$t0" "$t1")
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode local --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode local --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
local_cli=$(ms "$t0" "$t1")
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode job --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
job_cli=$(ms "$t0" "$t1")
warm=$(go test -tags integration -run '^$' -bench 'TaskWarmCall' -benchtime "${calls}x" . | grep BenchmarkTaskWarmCall)
local_go=$(go test -run '^$' -bench 'BenchmarkLocalExecute$' -benchtime 2s . | grep BenchmarkLocalExecute)

echo "machine: $(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3), date $(date -u +%Y-%m-%d)"
echo
echo "| what | time |"
echo "|---|---|"
echo "| task: first call, CLI (build, package, upload, deploy, run) | ${first} ms |"
echo "| task: warm call, TaskExecutor.Run ($calls calls) | p50 $(awk '{for(i=1;i<=NF;i++) if($i=="p50-ms") print $(i-1)}' <<<"$warm") ms, p95 $(awk '{for(i=1;i<=NF;i++) if($i=="p95-ms") print $(i-1)}' <<<"$warm") ms |"
echo "| task: warm call, CLI (\`synapse plugin run --mode task\`) | ${cli_warm} ms |"
echo "| local: \`synapse plugin run --mode local\` (warm cache) | ${local_cli} ms |"
echo "| local: LocalExecutor.Execute in-process | $(awk '{print $3, $4}' <<<"$local_go") |"
echo "| job: \`synapse plugin run --mode job\` (warm) | ${job_cli} ms |"
