#!/usr/bin/env bash
# End-to-end checks of the README's main job: the example plugin run as a
# real process, as a user runs it. Later issues add the Ray cluster here.
set -euo pipefail
cd "$(dirname "$0")/.."
errlog=$(mktemp)
trap 'rm -f "$errlog"' EXIT

echo "--- example plugin, local mode, end to end"
out=$(go run ./examples/train train '{"epochs": 3}' 2>"$errlog")
if ! grep -q '"epochs": 3' <<<"$out" || ! grep -q 'SUCCESS: Training completed' "$errlog"; then
  echo "FAIL: unexpected output"; echo "$out"; cat "$errlog"; exit 1
fi
echo "ok: train returned $(tr -d ' \n' <<<"$out")"
