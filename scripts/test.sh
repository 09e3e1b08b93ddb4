#!/usr/bin/env bash
# The whole test suite: dependencies, type check, then every test against real servers that the
# suite starts itself (Temporal dev server, ClickHouse, PostgreSQL or PGlite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node --import tsx scripts/test.ts "$@"
