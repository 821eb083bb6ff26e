#!/usr/bin/env bash
# Benchmark `synapse plugin run --mode job` on a local Ray head (docs/benchmarks.md):
# time from invoking the CLI to the printed result, split into build/package,
# upload, submit, submit-to-first-event and first-event-to-result; for a first
# submission (cold plugin cache) and for resubmitting an unchanged plugin;
# next to `ray job submit` of a trivial Python entrypoint on the same head.
#
#   scripts/bench-job.sh [RUNS]     (default 5; starts a Ray head if none answers)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=$(mktemp -d)
trap './scripts/ray-head.sh stop; rm -rf "$work"' EXIT
address=$(./scripts/ray-head.sh start | tail -n1)
export RAY_ADDRESS="$address"
ray=${SYNAPSE_RAY_VENV:-.venv-ray}/bin/ray
go build -o "$work/synapse" ./cmd/synapse
args=(plugin run evaluate --path examples/train --params '{"model":"m1"}' --mode job -v)

ms() { echo $(( ($2 - $1) / 1000000 )); }
# dur "1.234s" or "15ms" -> milliseconds
dur() { awk -v d="$1" 'BEGIN { if (d ~ /ms$/) { sub(/ms$/, "", d); print d+0 } else if (d ~ /µs$/) { print 0 } else { sub(/s$/, "", d); print d*1000 } }'; }

# one_run LABEL: runs the CLI once, prints "LABEL total build package upload submit to_first to_result"
one_run() {
  local t0 t1 out
  t0=$(date +%s%N)
  out=$("$work/synapse" "${args[@]}" 2>&1 >/dev/null)
  t1=$(date +%s%N)
  local build package upload submit first result
  build=$(sed -n 's/^timings: build \([^ ]*\) .*/\1/p' <<<"$out")
  package=$(sed -n 's/.*, package \([^ ,]*\)[ ,].*/\1/p' <<<"$out")
  upload=$(sed -n 's/.*, upload \([^ ]*\) .*/\1/p' <<<"$out")
  submit=$(sed -n 's/.*, submit \(.*\)$/\1/p' <<<"$out")
  first=$(sed -n 's/^timings: submitted to first event \(.*\)$/\1/p' <<<"$out")
  result=$(sed -n 's/^timings: submitted to result \(.*\)$/\1/p' <<<"$out")
  echo "$1 $(ms "$t0" "$t1") $(dur "$build") $(dur "$package") $(dur "$upload") $(dur "$submit") $(dur "$first") $(( $(dur "$result") - $(dur "$first") ))"
}

p50() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -a cold warm
for i in $(seq "$runs"); do
  export SYNAPSE_CACHE_DIR="$work/cache-$i"   # a fresh plugin cache: rebuild and re-upload
  touch examples/train/actions.go             # change nothing, but invalidate nothing either
  cold+=("$(one_run cold)")
  warm+=("$(one_run warm)")                   # same cache: nothing rebuilt or uploaded
done

ray_times=()
for i in $(seq "$runs"); do
  t0=$(date +%s%N)
  "$ray" job submit --address "$address" -- python -c 'print("hi")' >/dev/null 2>&1
  t1=$(date +%s%N)
  ray_times+=("$(ms "$t0" "$t1")")
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(go version | cut -d' ' -f3), ray $("$ray" --version | awk '{print $3}')"
echo "date: $(date -u +%Y-%m-%d), runs: $runs, p50 in ms"
echo
echo "| run | total | build | package | upload | submit | submit → first event | first event → result |"
echo "|---|---|---|---|---|---|---|---|"
for label in cold warm; do
  if [ "$label" = cold ]; then rows=("${cold[@]}"); else rows=("${warm[@]}"); fi
  line="| $label"
  for col in 2 3 4 5 6 7 8; do
    line+=" | $(printf '%s\n' "${rows[@]}" | awk -v c="$col" '{print $c}' | p50)"
  done
  echo "$line |"
done
echo "| \`ray job submit -- python -c 'print(\"hi\")'\` | $(printf '%s\n' "${ray_times[@]}" | p50) | | | | | | |"
