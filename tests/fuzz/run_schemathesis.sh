#!/usr/bin/env bash
# CTest entry of the API fuzz test: runs tests/fuzz/run_schemathesis.py with the project's venv.
#   tests/fuzz/run_schemathesis.sh BUILD_DIR [options of run_schemathesis.py]
# Exits 77 (skipped) when .venv has no schemathesis: run scripts/py-deps.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../../.venv"
if [[ ! -x $venv/bin/st ]]; then
  echo "SKIP: schemathesis is not installed in .venv (run scripts/py-deps)"
  exit 77
fi
exec "$venv/bin/python" "$here/run_schemathesis.py" "$@"
