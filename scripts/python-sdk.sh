#!/usr/bin/env bash
# Installs the Python Synapse SDK from PyPI (synapse-sdk, pinned) into its own
# virtual environment for the compatibility tests, and prints the path of its
# python on the last line. synapse-sdk needs Python >= 3.12: $SYNAPSE_SDK_PYTHON,
# else what scripts/find-python.sh finds.
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

py=${SYNAPSE_SDK_PYTHON:-$(scripts/find-python.sh)}
log "installing synapse-sdk==$SDK_VERSION into $VENV with $("$py" --version 2>&1)"
rm -rf "$VENV"
"$py" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "synapse-sdk==$SDK_VERSION"
echo "$PWD/$VENV/bin/python"
