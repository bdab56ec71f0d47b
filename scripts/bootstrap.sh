#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv with the given extras.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-collector}
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Canh Gác needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.canhgac-installed-$extras
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setting up .venv (extras: $extras); pip's output goes to .venv/pip.log"
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install -e ".[$extras]"; } >.venv/pip.log 2>&1; then
    tail -30 .venv/pip.log >&2
    echo "pip install failed; full log: .venv/pip.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
