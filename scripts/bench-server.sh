#!/usr/bin/env bash
# The synapse server benchmarks (internal/server/bench_test.go; docs/benchmarks.md, "synapse
# server"): run latency, a console log followed over SSE, a queue drained; each on SQLite and
# PostgreSQL beside its baseline (the plugin binary run directly), in one `go test` run.
#
#   scripts/bench-server.sh [-server.runs=50 -server.rate=10000 -server.seconds=10
#                            -server.followers=100 -server.jobs=1000 -server.max-jobs=4]
#
# PostgreSQL: SYNAPSE_TEST_POSTGRES_DSN when set; else a throwaway server is started with
# scripts/postgres.sh (and stopped at the end, unless it was running already); with
# SYNAPSE_BENCH_POSTGRES=off, none. Without one, the PostgreSQL benchmarks print
# "PostgreSQL NOT MEASURED" and are skipped. Output: bench-server.out (benchstat reads it).
# Environment: BENCH_COUNT (default 1): -count of go test.
set -euo pipefail
cd "$(dirname "$0")/.."
stop_pg=
cleanup() {
  if [ -n "$stop_pg" ]; then ./scripts/postgres.sh stop || true; fi
  rm -f "${pgerr:-}"
}
trap cleanup EXIT

if [ -n "${SYNAPSE_TEST_POSTGRES_DSN:-}" ]; then
  pg="PostgreSQL: SYNAPSE_TEST_POSTGRES_DSN"
elif [ "${SYNAPSE_BENCH_POSTGRES:-}" = off ]; then
  pg="PostgreSQL NOT MEASURED (SYNAPSE_BENCH_POSTGRES=off)"
else
  pgerr=$(mktemp)
  if dsn=$(./scripts/postgres.sh start 2>"$pgerr" | tail -n1) && [ -n "$dsn" ]; then
    export SYNAPSE_TEST_POSTGRES_DSN="$dsn"
    # Stop only a server this run started.
    if grep -q "already answers" "$pgerr"; then
      pg="PostgreSQL: a server already running, $dsn"
    else
      stop_pg=1
      pg="PostgreSQL: $(sed -n 's/^postgres: ready: //p' "$pgerr"), started by scripts/postgres.sh, $dsn"
    fi
  else
    cat "$pgerr" >&2
    pg="PostgreSQL NOT MEASURED: scripts/postgres.sh could not start a server (above); set SYNAPSE_TEST_POSTGRES_DSN"
  fi
fi

{
  echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(free -m | awk '/^Mem:/ {print $2}') MiB, $(uname -sm), $(go version | cut -d' ' -f3)"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$pg"
} | tee bench-server.out
go test -run '^$' -bench '^BenchmarkServer' -benchtime 1x -count "${BENCH_COUNT:-1}" -timeout 0 \
  ./internal/server/ -args "$@" | tee -a bench-server.out
