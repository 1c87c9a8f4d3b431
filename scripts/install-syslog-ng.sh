#!/usr/bin/env bash
# Installs syslog-ng >= 4.3 with loggen into the project's private root
# (syslog-ng/ in the data home, see parbench doctor) without touching the
# system; a second run does nothing. Extra arguments go to `parbench install`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/parbench install syslog-ng "$@"
