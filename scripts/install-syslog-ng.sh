#!/usr/bin/env bash
# Installs syslog-ng >= 4.3 with loggen into the project's private root
# (.parbench/syslog-ng, or $PARBENCH_HOME/syslog-ng) without touching the
# system; a second run does nothing. Extra arguments go to `parbench install`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/parbench install syslog-ng "$@"
