#!/usr/bin/env bash
# The demo: starts the local stack (installing what is missing), a worker and the simulator,
# runs collection cycles, prints the scores and where to look in the Temporal UI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node --import tsx scripts/demo.ts "$@"
