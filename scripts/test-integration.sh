#!/usr/bin/env bash
# The integration suite: real processes, a real PostgreSQL server and a real Ray cluster.
#  1. the synapse CLI builds the example plugin and runs it locally (the README's main job);
#  2. a throwaway PostgreSQL server is started (scripts/postgres.sh) and the store's
#     integration tests run against it and SQLite; the Python SDK (synapse-sdk from PyPI,
#     scripts/python-sdk.sh) is installed;
#  3. a pinned Ray head is installed and started (scripts/ray-head.sh); the server's
#     integration tests (PostgreSQL, the Python SDK's BackendClient, process and Ray agents,
#     kill -9 of the server, Python releases: the synapse-sdk sample trio published with the Python
#     SDK's CLI and run on the process and Ray agents, a requirement pip cannot find) and the other
#     Go integration tests (-tags integration; the CLI's Python plugin scripts among them) run
#     against it; then a second node joins (worker_node=1) for
#     the two-node test, which kills it mid-job; everything is stopped even when tests fail.
#     The dashboard's browser test runs in that server suite: Debian's chromium is
#     installed first (scripts/chromium.sh) and driven headless with chromedp; its
#     screenshots go to $SYNAPSE_TEST_ARTIFACTS (default test-artifacts/ in the checkout).
# A PostgreSQL server, Python SDK, Ray head or chromium that cannot be installed or started
# fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
export SYNAPSE_CACHE_DIR="$work/cache"
cleanup() {
  ./scripts/ray-head.sh stop || true
  ./scripts/postgres.sh stop || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "--- synapse plugin run train --mode local (cold build, then cached)"
go build -o "$work/synapse" ./cmd/synapse
for attempt in cold warm; do
  out=$("$work/synapse" plugin run train --path examples/train --params '{"epochs": 3}' --mode local 2>"$work/err")
  if ! grep -q '"epochs":3' <<<"$out" || ! grep -q 'SUCCESS: Training completed' "$work/err"; then
    echo "FAIL ($attempt): unexpected output"; echo "$out"; cat "$work/err"; exit 1
  fi
  echo "ok ($attempt): $out"
done

echo "--- invalid params exit 2"
set +e
"$work/synapse" plugin run train --path examples/train --params '{"epochs": 0}' --mode local 2>"$work/err"
code=$?
set -e
if [ "$code" != 2 ] || ! grep -q 'epochs: must be >= 1 (got 0)' "$work/err"; then
  echo "FAIL: exit $code"; cat "$work/err"; exit 1
fi
echo "ok: exit 2 with: $(grep epochs "$work/err")"

echo "--- PostgreSQL"
if ! dsn=$(./scripts/postgres.sh start | tail -n1); then
  echo "FAIL: could not install or start PostgreSQL (see above)"
  exit 1
fi
export SYNAPSE_TEST_POSTGRES_DSN="$dsn"
echo "ok: $dsn"

echo "--- go test -tags integration ./internal/store (SQLite and PostgreSQL)"
go test -race -count=1 -tags integration -timeout 10m ./internal/store/...

echo "--- Python SDK (synapse-sdk from PyPI) against synapse server"
if ! sdkpython=$(./scripts/python-sdk.sh | tail -n1); then
  echo "FAIL: could not install the Python SDK (see above)"
  exit 1
fi
export SYNAPSE_TEST_SDK_PYTHON="$sdkpython"
echo "ok: $sdkpython"

echo "--- Ray head"
if ! address=$(./scripts/ray-head.sh start | tail -n1); then
  echo "FAIL: could not install or start a Ray head (see above)"
  exit 1
fi
export SYNAPSE_TEST_RAY_ADDRESS="$address"
export SYNAPSE_TEST_RAY_BIN="$PWD/${SYNAPSE_RAY_VENV:-.venv-ray}/bin/ray"

echo "--- chromium (the dashboard's browser test)"
if ! chromium=$(./scripts/chromium.sh | tail -n1); then
  echo "FAIL: could not install or start chromium (see above)"
  exit 1
fi
export SYNAPSE_TEST_CHROMIUM="$chromium"
export SYNAPSE_TEST_ARTIFACTS="${SYNAPSE_TEST_ARTIFACTS:-$PWD/test-artifacts}"
echo "ok: $chromium; screenshots in $SYNAPSE_TEST_ARTIFACTS/dashboard"

echo "--- go test -tags integration ./internal/server (PostgreSQL, the Python SDK's client, process and Ray agents, kill -9, the dashboard in chromium)"
go test -race -count=1 -tags integration -timeout 15m ./internal/server/...

echo "--- Python host of task mode (pytest)"
python3 -m pytest -q internal/serve/python

echo "--- go test -tags integration (against $address)"
go test -race -count=1 -tags integration -run Integration -skip TwoNodes -timeout 25m ./ray ./remote ./internal/cli ./internal/ray

# The two-node test runs alone: it kills the second node on purpose.
echo "--- a second Ray node on this machine (custom resource worker_node=1)"
if ! pids=$(./scripts/ray-head.sh worker-start | tail -n1); then
  echo "FAIL: could not start a second Ray node (see above)"
  exit 1
fi
export SYNAPSE_TEST_RAY_WORKER_PIDS="$pids"
go test -race -count=1 -tags integration -run TwoNodes -timeout 10m ./ray
