#!/usr/bin/env bash
# Prints the path of a Python >= 3.12 (synapse-sdk needs it, and a Ray head
# that runs Python plugins must run the same minor version as its clients):
# the first of $SYNAPSE_PYTHON, python3.12, python3.13 on PATH, or a pyenv
# 3.12/3.13. Fails with a message when there is none.
set -euo pipefail
ok() { command -v "$1" >/dev/null 2>&1 && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
if [ -n "${SYNAPSE_PYTHON:-}" ]; then
  if ok "$SYNAPSE_PYTHON"; then command -v "$SYNAPSE_PYTHON"; exit 0; fi
  echo "find-python: SYNAPSE_PYTHON=$SYNAPSE_PYTHON is not a Python >= 3.12" >&2
  exit 1
fi
for c in python3.12 python3.13 "$HOME"/.pyenv/versions/3.12*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3; do
  if ok "$c"; then command -v "$c"; exit 0; fi
done
echo "find-python: no Python >= 3.12 found: install one (apt-get install python3.12, pyenv install 3.12) or set SYNAPSE_PYTHON" >&2
exit 1
