#!/usr/bin/env bash
# Installs the Python Synapse SDK from PyPI (synapse-sdk, pinned) into its own
# virtual environment for the compatibility tests, and prints the path of its
# python on the last line. synapse-sdk needs Python >= 3.12: the first of
# $SYNAPSE_SDK_PYTHON, python3.12, python3.13 on PATH, or a pyenv 3.12/3.13, is used.
# Environment: SYNAPSE_SDK_VERSION (default 2026.2.17), SYNAPSE_SDK_VENV (default .venv-sdk).
set -euo pipefail
cd "$(dirname "$0")/.."

SDK_VERSION=${SYNAPSE_SDK_VERSION:-2026.2.17}
VENV=${SYNAPSE_SDK_VENV:-.venv-sdk}
log() { echo "python-sdk: $*" >&2; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('synapse-sdk') != '$SDK_VERSION')" 2>/dev/null; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi

py=${SYNAPSE_SDK_PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.12 python3.13 "$HOME"/.pyenv/versions/3.12*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      py=$c
      break
    fi
  done
fi
if [ -z "$py" ]; then
  log "no Python >= 3.12 found (synapse-sdk needs it): install one, or set SYNAPSE_SDK_PYTHON"
  exit 1
fi
log "installing synapse-sdk==$SDK_VERSION into $VENV with $("$py" --version 2>&1)"
rm -rf "$VENV"
"$py" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "synapse-sdk==$SDK_VERSION"
echo "$PWD/$VENV/bin/python"
