#!/usr/bin/env bash
# The one-command start: installs what is missing, then runs a coordinator on the embedded database
# plus one local executor (see `npx sandfleet up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh run
exec node packages/coordinator/bin/sandfleet.js up "$@"
