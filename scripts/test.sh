#!/usr/bin/env bash
# Installs everything the tests need from the project's own files (the venv,
# and a private syslog-ng 4.8 for the real-implementation tests), then runs
# the default test suite (benchmarks and soak runs are skipped by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A second install is a no-op. Once it succeeded, the tests that need the
# real syslog-ng must run: a missing binary then fails instead of skipping.
.venv/bin/parbench install syslog-ng
export PARBENCH_REQUIRE_SYSLOG_NG=1
exec .venv/bin/python -m pytest "$@"
