#!/usr/bin/env bash
# Install a pinned Ray into a project-local virtual environment and start or
# stop a local Ray head for the integration tests.
#
#   scripts/ray-head.sh start          # prints the dashboard address on the last line
#   scripts/ray-head.sh worker-start   # a second node on this machine, joined to the head,
#                                      # with the custom resource worker_node=1; prints the
#                                      # file holding its process IDs on the last line
#   scripts/ray-head.sh worker-stop    # stops that node only
#   scripts/ray-head.sh stop           # stops everything this script started
#
# Each node's processes see SYNAPSE_TEST_NODE=head or worker, so a test can tell where a run ran.
# The head runs Python >= 3.12 (SYNAPSE_RAY_PYTHON, else scripts/find-python.sh), so Python SDK
# plugins and their 3.12 clients can use it (Ray refuses a client of another minor version); its
# bin/ leads PATH on the nodes, so a job entrypoint's `python` is the head's Python, as on a Ray image.
# Environment: RAY_VERSION (default 2.60.0), RAY_EXTRAS (default "default,serve"),
# SYNAPSE_RAY_VENV (default .venv-ray), SYNAPSE_TEST_RAY_PORT (default 8265),
# SYNAPSE_TEST_RAY_GCS_PORT (default 6380).
set -euo pipefail
cd "$(dirname "$0")/.."

RAY_VERSION=${RAY_VERSION:-2.60.0}
RAY_EXTRAS=${RAY_EXTRAS:-default,serve}
VENV=${SYNAPSE_RAY_VENV:-.venv-ray}
PORT=${SYNAPSE_TEST_RAY_PORT:-8265}
GCS_PORT=${SYNAPSE_TEST_RAY_GCS_PORT:-6380}
WORKER_PIDS=.ray-worker-pids   # the worker node's process IDs, one a line
ADDRESS="http://127.0.0.1:${PORT}"
STATE=.ray-head-started   # present when this script started the head

log() { echo "ray-head: $*" >&2; }

install() {
  if [ -x "$VENV/bin/ray" ] && "$VENV/bin/python" -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION' or sys.version_info < (3, 12))" 2>/dev/null \
     && "$VENV/bin/python" -c "import ray.dashboard.modules.job.sdk, ray.serve, starlette" 2>/dev/null; then
    return
  fi
  local py
  py=${SYNAPSE_RAY_PYTHON:-$(scripts/find-python.sh)}
  log "installing ray[$RAY_EXTRAS]==$RAY_VERSION into $VENV with $("$py" --version 2>&1)"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
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
  if ! out=$(PATH="$PWD/$VENV/bin:$PATH" SYNAPSE_TEST_NODE=head RAY_USAGE_STATS_ENABLED=0 "$VENV/bin/ray" start --head --node-ip-address=127.0.0.1 --port="$GCS_PORT" \
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

# rayprocs lists the PIDs of this machine's Ray daemons (raylets, agents, log monitors).
rayprocs() { pgrep -f "$VENV/.*ray/(core/src/ray/raylet/raylet|dashboard/agent.py|_private/log_monitor.py|_private/runtime_env/agent/main.py)" | sort || true; }   # sorted as text, for comm

# worker_alive: Ray reports a live node with the worker_node resource.
worker_alive() {
  curl -s "$ADDRESS/nodes?view=summary" | "$VENV/bin/python" -c '
import json, sys
nodes = json.load(sys.stdin)["data"]["summary"]
sys.exit(not any(n.get("raylet", {}).get("state") == "ALIVE" and
                 set(n["raylet"].get("resourcesTotal", {})) & {"worker_node", "workerNode"} for n in nodes))' 2>/dev/null
}

worker_start() {
  install
  up || { log "no Ray head answers at $ADDRESS (start it first)"; exit 1; }
  local gcs="127.0.0.1:$GCS_PORT" before out   # the GCS listens on every interface
  before=$(rayprocs)
  log "starting a worker node (custom resource worker_node=1) joined to $gcs"
  if ! out=$(PATH="$PWD/$VENV/bin:$PATH" SYNAPSE_TEST_NODE=worker RAY_USAGE_STATS_ENABLED=0 "$VENV/bin/ray" start --address="$gcs" \
    --num-cpus="${SYNAPSE_TEST_RAY_WORKER_CPUS:-2}" --resources='{"worker_node": 1}' \
    --dashboard-agent-listen-port=$((PORT + 44101)) --object-store-memory=100000000 --disable-usage-stats 2>&1); then
    echo "$out" >&2
    log "ray start of the worker node failed"
    exit 1
  fi
  comm -13 <(echo "$before") <(rayprocs) > "$WORKER_PIDS"
  for _ in $(seq 60); do
    if worker_alive; then
      log "worker node ready (processes: $(tr '\n' ' ' < "$WORKER_PIDS"))"
      echo "$PWD/$WORKER_PIDS"
      return
    fi
    sleep 0.5
  done
  log "the worker node did not join within 30s"
  exit 1
}

worker_stop() {
  if [ -s "$WORKER_PIDS" ]; then
    log "stopping the worker node"
    while read -r pid; do
      pkill -9 -P "$pid" 2>/dev/null || true
      kill -9 "$pid" 2>/dev/null || true
    done < "$WORKER_PIDS"
    # Until Ray has noticed, it may still place runs on the dead node.
    for _ in $(seq 120); do
      up && worker_alive || break
      sleep 0.5
    done
  fi
  rm -f "$WORKER_PIDS"
}

stop() {
  worker_stop
  if [ -f "$STATE" ]; then
    log "stopping the Ray head"
    "$VENV/bin/ray" stop --force >/dev/null 2>&1 || log "ray stop failed"
    rm -f "$STATE"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  worker-start) worker_start ;;
  worker-stop) worker_stop ;;
  install) install ;;
  *) echo "usage: $0 start|stop|worker-start|worker-stop|install" >&2; exit 2 ;;
esac
