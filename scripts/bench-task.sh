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
# Warm CLI calls, alternating: straight to the worker, and --proxy-only.
cli_runs=${CLI_RUNS:-21}
: >"$work/direct"; : >"$work/proxy"
for _ in $(seq "$cli_runs"); do
  t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode task --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
  ms "$t0" "$t1" >>"$work/direct"
  t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode task --proxy-only --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
  ms "$t0" "$t1" >>"$work/proxy"
done
p50() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cli_warm=$(p50 "$work/direct")
cli_proxy=$(p50 "$work/proxy")
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode local --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode local --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
local_cli=$(ms "$t0" "$t1")
t0=$(date +%s%N); "$work/synapse" plugin run echo --path "$plugin" --mode job --params '{"steps":0}' >/dev/null 2>&1; t1=$(date +%s%N)
job_cli=$(ms "$t0" "$t1")
warm_all=$(go test -tags integration -run '^$' -bench 'TaskWarmCall' -benchtime "${calls}x" ./ray/)
warm=$(grep 'BenchmarkTaskWarmCall/direct' <<<"$warm_all")
warm_proxy=$(grep 'BenchmarkTaskWarmCall/proxy' <<<"$warm_all")
local_go=$(go test -run '^$' -bench 'BenchmarkLocalExecute$' -benchtime 2s . | grep BenchmarkLocalExecute)

echo "machine: $(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3), date $(date -u +%Y-%m-%d)"
echo
echo "| what | time |"
echo "|---|---|"
echo "| task: first call, CLI (build, package, upload, deploy, run) | ${first} ms |"
metric() { awk -v m="$1" '{for(i=1;i<=NF;i++) if($i==m) print $(i-1)}' <<<"$2"; }
echo "| task: warm call, TaskExecutor.Run, straight to the worker ($calls calls) | p50 $(metric p50-ms "$warm") ms, p95 $(metric p95-ms "$warm") ms (direct ratio $(metric direct-ratio "$warm")) |"
echo "| task: warm call, TaskExecutor.Run, through the Serve proxy (baseline) | p50 $(metric p50-ms "$warm_proxy") ms, p95 $(metric p95-ms "$warm_proxy") ms |"
echo "| task: warm CLI call (\`synapse plugin run --mode task\`, p50 of $cli_runs) | ${cli_warm} ms |"
echo "| task: warm CLI call with \`--proxy-only\` (baseline, alternating) | ${cli_proxy} ms |"
echo "| local: \`synapse plugin run --mode local\` (warm cache) | ${local_cli} ms |"
echo "| local: LocalExecutor.Execute in-process | $(awk '{print $3, $4}' <<<"$local_go") |"
echo "| job: \`synapse plugin run --mode job\` (warm) | ${job_cli} ms |"
