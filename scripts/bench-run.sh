#!/usr/bin/env bash
# Benchmark `synapse plugin run` in local mode (docs/benchmarks.md):
# wall time and peak memory with a warm plugin cache, next to running the
# cached plugin binary directly (the floor), plus cold-build times.
#
#   scripts/bench-run.sh [RUNS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SYNAPSE_CACHE_DIR="$work/cache"

go build -o "$work/synapse" ./cmd/synapse
plugin=examples/train
args=(plugin run evaluate --path "$plugin" --params '{"model":"m1"}' --mode local -o json)

ms() { echo $(( ($2 - $1) / 1000000 )); }

# Cold build with the Go build cache as it is (a typical first run of a new plugin).
t0=$(date +%s%N); "$work/synapse" "${args[@]}" >/dev/null 2>&1; t1=$(date +%s%N)
cold_warmgo=$(ms "$t0" "$t1")
# Cold build with an empty Go build cache too (first plugin on a fresh machine).
rm -rf "$SYNAPSE_CACHE_DIR"
t0=$(date +%s%N); GOCACHE="$work/gocache" "$work/synapse" "${args[@]}" >/dev/null 2>&1; t1=$(date +%s%N)
cold_emptygo=$(ms "$t0" "$t1")

bin=$("$work/synapse" -v "${args[@]}" 2>&1 >/dev/null | sed -n 's/^plugin binary: \(.*\) (cached)$/\1/p')
[ -x "$bin" ] || { echo "could not find the cached plugin binary" >&2; exit 1; }

# measure NAME CMD...: prints "NAME p50_ms mean_ms max_rss_kb"
measure() {
  local name=$1; shift
  local times=() rss=0
  for _ in $(seq "$runs"); do
    local t0 t1 r
    t0=$(date +%s%N)
    r=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1)
    t1=$(date +%s%N)
    times+=( $(( (t1 - t0) / 1000 )) )   # microseconds
    (( r > rss )) && rss=$r
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" -v rss="$rss" '
    { a[NR] = $1; s += $1 }
    END { printf "%s %.1f %.1f %d\n", name, a[int((NR + 1) / 2)] / 1000, s / NR / 1000, rss }'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(go version | cut -d' ' -f3)"
echo "date: $(date -u +%Y-%m-%d)"
echo "runs: $runs"
echo
echo "| command | p50 (ms) | mean (ms) | peak RSS (KiB) |"
echo "|---|---|---|---|"
measure "synapse-plugin-run" "$work/synapse" "${args[@]}" | awk '{printf "| `synapse plugin run` (warm cache) | %s | %s | %s |\n", $2, $3, $4}'
measure "binary" "$bin" "${args[@]}" | awk '{printf "| plugin binary directly (floor) | %s | %s | %s |\n", $2, $3, $4}'
echo
echo "cold build + run: ${cold_warmgo} ms with a warm Go build cache, ${cold_emptygo} ms with an empty one"
