#!/usr/bin/env bash
# Side by side with the Python SDK (docs/benchmarks.md, "Side by side with the Python SDK"): the same
# trivial action (noop) and the same 1,000-event action (events: 1,000 log events) written with synapse-go
# (scripts/bench-peer/go-plugin) and with synapse-sdk (scripts/bench-peer/python-plugin), run both ways,
# alternating (ours, theirs, ours, theirs, ...), in
#   local    `synapse plugin run ACTION --mode local`, our CLI against the Python CLI;
#   job      `--mode job` on the Ray head (Ray Jobs API), submit → result, both CLIs;
#   task     per warm call: our Serve worker from a long-lived Go process (scripts/bench-peer/taskcall)
#            against the Python SDK's warm actor executor (RayActorExecutor; scripts/bench-peer/peer_task.py),
#            and `--mode task` from each CLI (ours warm; the Python CLI makes a new actor per call);
#   remote   both CLIs against a `synapse server` built from this checkout, with a process agent: each
#            CLI publishes its plugin, then submit → result (the Python CLI: `plugin run --mode remote`,
#            which returns the job, then `plugin job logs ID -f` to its end, as its user would).
# It prints p50 and p95 of each side, the ratio and the issue's aim beside it, with the machine, load
# and date; it never fails on speed. It fails (exit 1, saying what) when a component cannot run: the
# rows it could measure are still printed, a row it could not says NOT MEASURED with the command and error.
#
#   scripts/bench-peer.sh
#
# Environment:
#   SYNAPSE_BENCH_PEER_RUNS   CLI runs per side, action and mode (default 5)
#   SYNAPSE_BENCH_PEER_CALLS  warm task calls per side and action (default 100)
#   SYNAPSE_BENCH_PEER_MODES  which modes (default "local job task remote")
#   SYNAPSE_BENCH_PEER_DIR    the run directory (default .bench-peer): kept between runs and reused:
#                             venv/ (synapse-sdk + Ray, installed once), cache/ (our plugin cache),
#                             server-venvs/ (the server's Python environments); run/ holds the last
#                             run's logs and samples
#   SYNAPSE_SDK_VERSION       synapse-sdk version (default 2026.2.17)
#   SYNAPSE_TEST_RAY_ADDRESS  a running Ray head to use (its Python must be >= 3.12, as scripts/ray-head.sh
#                             starts it); else scripts/ray-head.sh starts one (and stops it at the end)
#   SYNAPSE_BENCH_PEER_RAY_GCS  the head's GCS address for ray.init (default: asked from the head)
# Output: the report on stdout and in bench-peer.out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=${SYNAPSE_BENCH_PEER_RUNS:-5}
calls=${SYNAPSE_BENCH_PEER_CALLS:-100}
modes=" ${SYNAPSE_BENCH_PEER_MODES:-local job task remote} "
dir=${SYNAPSE_BENCH_PEER_DIR:-.bench-peer}
sdk_version=${SYNAPSE_SDK_VERSION:-2026.2.17}
goplugin=scripts/bench-peer/go-plugin
for m in $modes; do
  case $m in local | job | task | remote) ;; *) echo "bench-peer: SYNAPSE_BENCH_PEER_MODES: unknown mode \"$m\" (want local, job, task, remote)" >&2; exit 2 ;; esac
done
for v in runs calls; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench-peer: SYNAPSE_BENCH_PEER_${v^^}: want a whole number >= 1 (got \"${!v}\")" >&2; exit 2; }
done

log() { echo "bench-peer: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
run=$dir/run
rm -rf "$run"
mkdir -p "$run/logs" "$run/home"
samples=$run/samples
: >"$samples"
failures=$run/failures # one line per row that could not be measured
: >"$failures"
: >"$run/load"

# --- cleanup: only what this run started ---------------------------------------------------------
stop_ray= server_pid= task_down= sampler=
cleanup() {
  set +e
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; fi
  if [ -n "$task_down" ]; then "$run/synapse" plugin task down bench-peer-go --ray-address "$address" >/dev/null 2>&1; fi
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  if [ -n "$stop_ray" ]; then ./scripts/ray-head.sh stop; fi
}
trap cleanup EXIT

# Both CLIs get a home of their own (~/.synapse/config.json); the Go toolchain keeps its caches and
# settings, pyenv its root, and the server's process agent the Python >= 3.12 found here.
[ -n "${PYENV_ROOT:-}" ] || [ ! -d "$HOME/.pyenv" ] || export PYENV_ROOT=$HOME/.pyenv
if [ -z "${SYNAPSE_PYTHON:-}" ] && py=$(./scripts/find-python.sh 2>/dev/null); then
  SYNAPSE_PYTHON=$("$py" -c 'import sys; print(sys.executable)') && export SYNAPSE_PYTHON
fi
export GOCACHE=${GOCACHE:-$(go env GOCACHE)} GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)}
export GOPATH=${GOPATH:-$(go env GOPATH)} GOENV=${GOENV:-$(go env GOENV)}
export HOME=$run/home SYNAPSE_CONFIG_FILE= SYNAPSE_HOST= SYNAPSE_ACCESS_TOKEN= SYNAPSE_PLUGIN_RUN_USER_TOKEN=
export SYNAPSE_CACHE_DIR=$dir/cache COLUMNS=200 RAY_USAGE_STATS_ENABLED=0
unset RAY_ADDRESS RAY_API_SERVER_ADDRESS

# --- the Ray head --------------------------------------------------------------------------------
address= gcs= ray_version=${RAY_VERSION:-2.60.0}
if [[ $modes == *" job "* || $modes == *" task "* ]]; then
  if [ -n "${SYNAPSE_TEST_RAY_ADDRESS:-}" ]; then
    address=$SYNAPSE_TEST_RAY_ADDRESS
    curl -sf --max-time 5 "$address/api/version" >/dev/null ||
      die "no Ray head answers at SYNAPSE_TEST_RAY_ADDRESS=$address (GET $address/api/version); unset it to start one with scripts/ray-head.sh"
    log "using the Ray head at $address (it will not be stopped)"
  else
    stop_ray=1 # ray-head.sh stop stops only a head its start started (not one it found running)
    address=$(./scripts/ray-head.sh start | tail -n1) || die "scripts/ray-head.sh start could not start a Ray head (above)"
  fi
  ray_version=$(curl -sf --max-time 5 "$address/api/version" | sed -n 's/.*"ray_version": *"\([^"]*\)".*/\1/p')
  [ -n "$ray_version" ] || die "the Ray head at $address does not say its version (GET $address/api/version)"
  gcs=${SYNAPSE_BENCH_PEER_RAY_GCS:-$(curl -sf --max-time 5 "$address/nodes?view=summary" |
    grep -o '"--gcs-address=[^"]*"' | head -n1 | sed 's/"--gcs-address=\(.*\)"/\1/')}
  [ -n "$gcs" ] || die "could not learn the GCS address of the Ray head at $address (GET /nodes?view=summary): set SYNAPSE_BENCH_PEER_RAY_GCS"
fi

# --- the Python SDK with Ray, in its own virtual environment (installed once, reused) -------------
venv=$dir/venv
want_ok() {
  "$venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(sys.version_info < (3, 12) or m.version('synapse-sdk') != '$sdk_version' or m.version('ray') != '$ray_version')" 2>/dev/null
}
if ! want_ok; then
  py=$(./scripts/find-python.sh) || die "no Python >= 3.12 for the Python SDK (scripts/find-python.sh, above)"
  log "installing synapse-sdk==$sdk_version and ray[default]==$ray_version into $venv with $("$py" --version 2>&1) (once; reused by later runs)"
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "$py -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "synapse-sdk==$sdk_version" "ray[default]==$ray_version" >"$run/logs/pip.log" 2>&1 ||
    { tail -n 20 "$run/logs/pip.log" >&2; die "pip install synapse-sdk==$sdk_version ray[default]==$ray_version failed (above; all of it in $run/logs/pip.log)"; }
  want_ok || die "$venv does not hold synapse-sdk $sdk_version and Ray $ray_version on Python >= 3.12 after the install"
fi
pycli=$venv/bin/synapse
# The Python CLI rewrites config.yaml when it publishes: it works on a copy.
cp -r scripts/bench-peer/python-plugin "$run/python-plugin"
pyplugin=$run/python-plugin

# --- ours: the CLI and the task-call driver, built from this checkout ------------------------------
go build -o "$run/synapse" ./cmd/synapse || die "go build ./cmd/synapse failed (above)"
go build -o "$run/taskcall" ./scripts/bench-peer/taskcall || die "go build ./scripts/bench-peer/taskcall failed (above)"
synapse=$run/synapse

# --- helpers -------------------------------------------------------------------------------------
ACTIONS=(noop events)
declare -A PARAMS=([noop]='{}' [events]='{"n":1000}')
declare -A WANT_OURS=([noop]='{"ok":true}' [events]='{"events":1000}')   # our -o json stdout
declare -A WANT_CLI=([noop]='ok: True' [events]='events: 1000')           # the Python CLI's "Result:" lines
declare -A WANT_RESULT=([noop]='{"ok": true}' [events]='{"events": 1000}') # the Python worker's result marker

n=0
# attempt LABEL CMD...: runs CMD once, stdout and stderr to $run/logs/N-LABEL.{out,err}; sets $out and
# $ms (wall time of CMD in milliseconds); returns CMD's exit status.
attempt() {
  local label=$1 t0 t1 rc=0
  shift
  n=$((n + 1))
  out=$run/logs/$(printf '%04d' "$n")-$label
  t0=$EPOCHREALTIME
  "$@" >"$out.out" 2>"$out.err" || rc=$?
  t1=$EPOCHREALTIME
  ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')
  return $rc
}

# failed ROW CMD_TEXT WHY: records a row that could not be measured (and the run fails at the end).
failed() {
  local row=$1 cmd=$2 why=$3 detail
  detail=$(grep -hiE 'error|exception|fail|traceback' "$out.err" "$out.out" 2>/dev/null | tail -n 3 | tr '\n' ' ' || true)
  [ -n "$detail" ] || detail=$(tail -n 3 "$out.err" 2>/dev/null | tr '\n' ' ' || true)
  detail=$(sed 's/\x1b\[[0-9;]*m//g' <<<"$detail" | cut -c1-400)
  echo "$row|$cmd|$why: ${detail:-no output} (logs: $out.err)" >>"$failures"
  log "NOT MEASURED: $row: \`$cmd\`: $why (logs: $out.out, $out.err)"
}
is_failed() { grep -q "^$1|" "$failures"; }
# note_load MODE: the 1-minute load average now, for the report's load column.
note_load() { echo "$1 $(cut -d' ' -f1 /proc/loadavg)" >>"$run/load"; }

# check_ours ACTION: our -o json printed the action's result.
check_ours() { [ "$(tr -d '\n' <"$out.out")" = "${WANT_OURS[$1]}" ]; }
# check_cli ACTION: the Python CLI printed the action's result. In task mode Ray forwards the actor's log
# lines to the same stdout while the CLI prints, so the result line may follow one on the same line.
check_cli() { grep -q "  ${WANT_CLI[$1]}$" "$out.out"; }

# measure MODE ACTION SIDE LABEL CHECK CMD...: one counted run; a failure marks the row.
measure() {
  local mode=$1 action=$2 side=$3 label=$4 check=$5 row
  shift 5
  row="$mode $action $side"
  is_failed "$row" && return 0
  local rc=0
  attempt "$mode-$action-$side" "$@" || rc=$?
  if ((rc != 0)); then
    failed "$row" "$label" "exit $rc"
  elif ! "$check" "$action"; then
    failed "$row" "$label" "exit 0, but its output lacks the result"
  else
    echo "$row $ms" >>"$samples"
  fi
}

ours_run() { "$synapse" plugin run "$1" --path "$goplugin" --params "${PARAMS[$1]}" -o json "${@:2}"; }
THEIRS_ENV=()
theirs_run() { (cd "$run" && env "${THEIRS_ENV[@]}" "$pycli" plugin run "$1" --path "$pyplugin" --params "${PARAMS[$1]}" "${@:2}"); }

# pair MODE: warm-up (not counted), then RUNS alternating runs of each action, ours first.
pair() {
  local mode=$1 i action
  shift
  for action in "${ACTIONS[@]}"; do
    measure "$mode-warmup" "$action" ours "synapse plugin run $action --mode $mode" check_ours ours_run "$action" "${OURS_ARGS[@]}"
    measure "$mode-warmup" "$action" theirs "synapse plugin run $action --mode $mode (Python CLI)" check_cli theirs_run "$action" "${THEIRS_ARGS[@]}"
    is_failed "$mode-warmup $action ours" && echo "$mode $action ours|(warm-up failed)|see the warm-up row" >>"$failures"
    is_failed "$mode-warmup $action theirs" && echo "$mode $action theirs|(warm-up failed)|see the warm-up row" >>"$failures"
  done
  for i in $(seq "$runs"); do
    note_load "$mode"
    for action in "${ACTIONS[@]}"; do
      measure "$mode" "$action" ours "synapse plugin run $action --mode $mode" check_ours ours_run "$action" "${OURS_ARGS[@]}"
      measure "$mode" "$action" theirs "synapse plugin run $action --mode $mode (Python CLI)" check_cli theirs_run "$action" "${THEIRS_ARGS[@]}"
    done
    note_load "$mode"
    log "$mode: run $i/$runs"
  done
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# --- local ---------------------------------------------------------------------------------------
if [[ $modes == *" local "* ]]; then
  log "local mode"
  OURS_ARGS=(--mode local) THEIRS_ARGS=(--mode local)
  pair local
fi

# --- job -----------------------------------------------------------------------------------------
if [[ $modes == *" job "* ]]; then
  log "job mode on $address"
  # The Python CLI's job mode takes its dashboard from --ray-address (http://localhost:8265 unless ray://);
  # RAY_API_SERVER_ADDRESS, which Ray's job client reads first, points it at this head.
  OURS_ARGS=(--mode job --ray-address "$address") THEIRS_ARGS=(--mode job --ray-address "$gcs")
  THEIRS_ENV=("RAY_API_SERVER_ADDRESS=$address")
  pair job
  THEIRS_ENV=()
fi

# --- task ----------------------------------------------------------------------------------------
if [[ $modes == *" task "* ]]; then
  log "task mode on $address (GCS $gcs): per call, $calls calls of each action each side"
  task_down=1
  rc=0
  note_load task-call
  (while sleep 5; do note_load task-call; done) &
  sampler=$!
  attempt task-call "$venv/bin/python" scripts/bench-peer/peer_task.py --plugin "$pyplugin" --ray-address "$gcs" \
    --calls "$calls" --out "$samples" -- "$run/taskcall" -plugin "$goplugin" -ray-address "$address" || rc=$?
  kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true # wait says 143 (killed)
  sampler=
  note_load task-call
  if ((rc != 0)); then
    why=$(grep -E 'Error|error' "$out.err" | tail -n 2 | tr '\n' ' ' | cut -c1-400)
    for a in "${ACTIONS[@]}"; do for s in ours theirs; do
      echo "task-call $a $s|python scripts/bench-peer/peer_task.py … -- taskcall …|exit $rc: $why (logs: $out.err)" >>"$failures"
    done; done
    log "NOT MEASURED: task per call: exit $rc: $why (logs: $out.err)"
  fi
  log "task mode from the CLI"
  OURS_ARGS=(--mode task --ray-address "$address") THEIRS_ARGS=(--mode task --ray-address "$gcs")
  pair task
fi

# --- remote --------------------------------------------------------------------------------------
if [[ $modes == *" remote "* ]]; then
  log "remote mode: synapse server with a process agent"
  mkdir -p "$run/server" "$dir/server-venvs"
  ln -s "$dir/server-venvs" "$run/server/venvs" # the Python release's environment, prepared once
  "$synapse" server --addr 127.0.0.1:0 --data-dir "$run/server" --agent local=process >"$run/logs/server.log" 2>&1 &
  server_pid=$!
  host= token=
  for _ in $(seq 300); do
    line=$(grep -m1 '^  synapse login --host ' "$run/logs/server.log" || true)
    if [ -n "$line" ] && grep -q 'listening on' "$run/logs/server.log"; then
      read -r _ _ _ host _ token <<<"$line"
      break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$host" ] || { cat "$run/logs/server.log" >&2; die "synapse server did not start (above; $run/logs/server.log)"; }
  attempt login "$synapse" login --host "$host" -t "$token" || die "synapse login --host $host failed: $(cat "$out.err")"
  attempt select "$synapse" agent select 1 || die "synapse agent select 1 failed: $(cat "$out.err")"
  attempt publish-ours "$synapse" plugin publish --path "$goplugin" -y || die "synapse plugin publish --path $goplugin failed: $(cat "$out.err")"
  attempt publish-theirs "$pycli" plugin publish --path "$pyplugin" -y ||
    die "synapse plugin publish --path $pyplugin (Python CLI) failed: $(tail -n 5 "$out.err" "$out.out")"

  # theirs_remote ACTION: the Python CLI's run (it returns the job), then its `job logs -f` to the end.
  theirs_remote() {
    local id
    (cd "$run" && "$pycli" plugin run "$1" --mode remote --path "$pyplugin" --params "${PARAMS[$1]}") || return
    id=$(tr -d '\n' <"$out.out" | grep -oE "'id': '[0-9a-f-]{36}'" | grep -oE '[0-9a-f-]{36}') || { echo "no job ID in the output of plugin run" >&2; return 1; }
    (cd "$run" && "$pycli" plugin job logs "$id" -f)
  }
  check_remote() { grep -q '__SYNAPSE_RESULT_START__' "$out.out" && grep -qF "${WANT_RESULT[$1]}" "$out.out"; }
  OURS_ARGS=(--mode remote)
  for action in "${ACTIONS[@]}"; do
    measure remote-warmup "$action" ours "synapse plugin run $action --mode remote" check_ours ours_run "$action" "${OURS_ARGS[@]}"
    measure remote-warmup "$action" theirs "synapse plugin run $action --mode remote; synapse plugin job logs ID -f (Python CLI)" check_remote theirs_remote "$action"
    is_failed "remote-warmup $action ours" && echo "remote $action ours|(warm-up failed)|see the warm-up row" >>"$failures"
    is_failed "remote-warmup $action theirs" && echo "remote $action theirs|(warm-up failed)|see the warm-up row" >>"$failures"
  done
  for i in $(seq "$runs"); do
    note_load remote
    for action in "${ACTIONS[@]}"; do
      measure remote "$action" ours "synapse plugin run $action --mode remote" check_ours ours_run "$action" "${OURS_ARGS[@]}"
      measure remote "$action" theirs "synapse plugin run $action --mode remote; synapse plugin job logs ID -f (Python CLI)" check_remote theirs_remote "$action"
    done
    note_load remote
    log "remote: run $i/$runs"
  done
fi

# --- report --------------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
# pstat MODE ACTION SIDE: "p50 p95 count" in ms (nearest rank), or nothing.
pstat() {
  awk -v k="$1 $2 $3" '$1" "$2" "$3 == k { print $4 }' "$samples" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR) { i50 = int((NR + 1) / 2); i95 = int(NR * 0.95 + 0.999); if (i95 < 1) i95 = 1; printf "%s %s %d\n", a[i50], a[i95], NR } }'
}
fmt() { awk -v v="$1" 'BEGIN { if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v; else printf "%.2f", v }'; }

# row MODE ACTION LABEL AIM_KIND AIM_TEXT
row() {
  local mode=$1 action=$2 label=$3 kind=$4 aim=$5 o t ratio verdict cell_o cell_t load
  o=$(pstat "$mode" "$action" ours)
  t=$(pstat "$mode" "$action" theirs)
  if [ -n "$o" ]; then read -r op50 op95 on <<<"$o"; cell_o="$(fmt "$op50") / $(fmt "$op95")"; else cell_o="NOT MEASURED"; fi
  if [ -n "$t" ]; then read -r tp50 tp95 tn <<<"$t"; cell_t="$(fmt "$tp50") / $(fmt "$tp95")"; else cell_t="NOT MEASURED"; fi
  if [ -n "$o" ] && [ -n "$t" ]; then
    ratio=$(awk -v o="$op50" -v t="$tp50" 'BEGIN { r = t / o; if (r >= 1) printf "**%.1f× faster**", r; else printf "**%.1f× slower**", 1 / r }')
    verdict=$(awk -v o="$op50" -v t="$tp50" -v k="$kind" 'BEGIN { r = t / o; ok = (k == "faster") ? (r > 1) : (r >= k); print ok ? "met" : "NOT met" }')
  else
    ratio="—" verdict="not measured"
  fi
  load=$(awk -v m="$mode" '$1 == m { if (n++ == 0 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 } END { if (n) printf "%.1f–%.1f", lo, hi; else printf "—" }' "$run/load" 2>/dev/null)
  echo "| $label | \`$action\` | $cell_o | $cell_t | $ratio | $aim: $verdict | $load |"
}

{
  echo "## bench-peer: synapse-go against the Python SDK (synapse-sdk $sdk_version)"
  echo
  echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sm)"
  echo "date: $started; load average (1, 5, 15 min) at the start $load_start, at the end $load_end"
  echo "versions: $(go version | cut -d' ' -f3), synapse-go $(git rev-parse --short HEAD 2>/dev/null)$([ -z "$(git status --porcelain 2>/dev/null)" ] || echo +changes), $("$venv/bin/python" --version), synapse-sdk $sdk_version, ray $ray_version${address:+ (head $address, GCS $gcs)}"
  echo "runs: $runs per CLI row and side (after one warm-up run each, not counted)$([[ $modes != *" task "* ]] || echo ", $calls calls per task-call row and side (after 3 warm-up calls)"); alternating ours, theirs"
  echo
  echo "| mode | action | ours p50 / p95 (ms) | theirs p50 / p95 (ms) | ours against theirs (p50) | aim | load (1 min) |"
  echo "|---|---|---:|---:|---:|---|---|"
  for a in "${ACTIONS[@]}"; do [[ $modes != *" local "* ]] || row local "$a" "local: \`plugin run --mode local\`" 50 "≥ 50× faster"; done
  for a in "${ACTIONS[@]}"; do [[ $modes != *" job "* ]] || row job "$a" "job: \`plugin run --mode job\`, submit → result" 2 "≥ 2× faster"; done
  for a in "${ACTIONS[@]}"; do [[ $modes != *" task "* ]] || row task-call "$a" "task: one warm call from a long-lived process" faster "faster than the Python actor"; done
  for a in "${ACTIONS[@]}"; do [[ $modes != *" task "* ]] || row task "$a" "task: \`plugin run --mode task\`, warm" 20 "≥ 20× faster"; done
  for a in "${ACTIONS[@]}"; do [[ $modes != *" remote "* ]] || row remote "$a" "remote: CLI against \`synapse server\` (process agent), submit → result" faster "faster"; done
  if [[ $modes == *" task "* ]] && [ -n "$(pstat task-call.validate noop ours)" ]; then
    echo
    for a in "${ACTIONS[@]}"; do
      read -r v _ _ <<<"$(pstat task-call.validate "$a" ours)"
      read -r c _ _ <<<"$(pstat task-call.call "$a" ours)"
      echo "ours, task call of \`$a\`, p50 of its parts: validate $(fmt "$v") ms, call (straight to the worker or through Serve) $(fmt "$c") ms"
    done
  fi
  if [ -s "$failures" ]; then
    echo
    echo "NOT MEASURED (command: error):"
    sort -u "$failures" | grep -v '(warm-up failed)' | awk -F'|' '{ printf "- %s: `%s`: %s\n", $1, $2, $3 }'
  fi
} | tee bench-peer.out

if [ -s "$failures" ]; then
  die "some rows could not be measured (listed above; logs in $run/logs)"
fi
