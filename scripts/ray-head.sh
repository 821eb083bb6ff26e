#!/usr/bin/env bash
# Install a pinned Ray into a project-local virtual environment and start or
# stop a local Ray head for the integration tests.
#
#   scripts/ray-head.sh start   # prints the dashboard address on the last line
#   scripts/ray-head.sh stop
#
# Environment: RAY_VERSION (default 2.60.0), RAY_EXTRAS (default "default,serve"),
# SYNAPSE_RAY_VENV (default .venv-ray), SYNAPSE_TEST_RAY_PORT (default 8265).
set -euo pipefail
cd "$(dirname "$0")/.."

RAY_VERSION=${RAY_VERSION:-2.60.0}
RAY_EXTRAS=${RAY_EXTRAS:-default,serve}
VENV=${SYNAPSE_RAY_VENV:-.venv-ray}
PORT=${SYNAPSE_TEST_RAY_PORT:-8265}
ADDRESS="http://127.0.0.1:${PORT}"
STATE=.ray-head-started   # present when this script started the head

log() { echo "ray-head: $*" >&2; }

install() {
  if [ -x "$VENV/bin/ray" ] && "$VENV/bin/python" -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION')" 2>/dev/null \
     && "$VENV/bin/python" -c "import ray.dashboard.modules.job.sdk, ray.serve, starlette" 2>/dev/null; then
    return
  fi
  log "installing ray[$RAY_EXTRAS]==$RAY_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "ray[$RAY_EXTRAS]==$RAY_VERSION"
}

up() { curl -sf --max-time 2 "$ADDRESS/api/version" >/dev/null 2>&1; }

start() {
  install
  if up; then
    log "a Ray head already answers at $ADDRESS; using it (it will not be stopped)"
    rm -f "$STATE"
    echo "$ADDRESS"
    return
  fi
  log "starting a Ray $RAY_VERSION head (dashboard $ADDRESS)"
  local out
  if ! out=$(RAY_USAGE_STATS_ENABLED=0 "$VENV/bin/ray" start --head --node-ip-address=127.0.0.1 --port=0 \
    --num-cpus="${SYNAPSE_TEST_RAY_CPUS:-4}" --include-dashboard=true --dashboard-host=127.0.0.1 \
    --dashboard-port="$PORT" --disable-usage-stats --object-store-memory=100000000 2>&1); then
    echo "$out" >&2
    log "ray start failed"
    exit 1
  fi
  touch "$STATE"
  for _ in $(seq 120); do
    if up; then
      log "ready: $(curl -s "$ADDRESS/api/version")"
      echo "$ADDRESS"
      return
    fi
    sleep 0.5
  done
  log "the dashboard did not answer at $ADDRESS within 60s"
  exit 1
}

stop() {
  if [ -f "$STATE" ]; then
    log "stopping the Ray head"
    "$VENV/bin/ray" stop --force >/dev/null 2>&1 || log "ray stop failed"
    rm -f "$STATE"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
