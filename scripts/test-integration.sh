#!/usr/bin/env bash
# End-to-end check of the README's main job: the synapse CLI builds the
# example plugin and runs an action in it, as a user does. Later issues add
# the Ray cluster here.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SYNAPSE_CACHE_DIR="$work/cache"

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
