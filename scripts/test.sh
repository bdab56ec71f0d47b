#!/usr/bin/env bash
# Everything CI checks: generated code fresh, lint, format, types, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
scripts/bootstrap.sh dev
bin=.venv/bin
echo "== generated code";  $bin/python scripts/gen_protos.py --check
echo "== ruff";            $bin/ruff check . && $bin/ruff format --check .
echo "== mypy --strict";   $bin/mypy
echo "== rules";           $bin/canhgac-collector rules lint rules/ && $bin/canhgac-collector rules test rules/
echo "== pytest"
set +e
$bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
