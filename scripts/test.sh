#!/usr/bin/env bash
# Installs everything the tests need from the project's own files (the venv,
# a private syslog-ng 4.8, and AxoSyslog built from the sources named by
# $PARBENCH_AXOSYSLOG_SOURCE when set), then runs the default test suite
# (benchmarks and soak runs are skipped by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A second install is a no-op. Once it succeeded, the tests that need the
# real syslog-ng must run: a missing binary then fails instead of skipping.
.venv/bin/parbench install syslog-ng
export PARBENCH_REQUIRE_SYSLOG_NG=1
# AxoSyslog is built from source (a few minutes, once per machine: the data
# home keeps the build; a second run only checks the source's checksum).
# PARBENCH_AXOSYSLOG_BUILD_DEPS=1 lets the installer apt-get missing build
# tools (CI machines); without it a missing tool is an error naming them.
if [[ -n "${PARBENCH_AXOSYSLOG_SOURCE:-}" ]]; then
  deps=()
  if [[ "${PARBENCH_AXOSYSLOG_BUILD_DEPS:-}" == 1 ]]; then deps=(--install-build-deps); fi
  .venv/bin/parbench install axosyslog --source "$PARBENCH_AXOSYSLOG_SOURCE" "${deps[@]}"
  export PARBENCH_REQUIRE_AXOSYSLOG=1
fi
exec .venv/bin/python -m pytest "$@"
