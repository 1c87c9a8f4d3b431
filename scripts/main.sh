#!/usr/bin/env bash
# The main job: a scenario sweep against the embedded reference, with a report
# under reports/<scenario>/<timestamp>/.  Extra arguments go to `parbench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/parbench run chatty-single-sender "$@"
