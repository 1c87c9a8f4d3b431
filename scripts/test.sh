#!/usr/bin/env bash
# Installs everything the tests need from the project's own files, then runs
# the default test suite (benchmarks and soak runs are skipped by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
