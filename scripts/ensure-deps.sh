#!/usr/bin/env bash
# Install the npm dependencies when they are missing or older than package-lock.json (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
  echo "error: Node.js 20 or newer is required (node not found on PATH)" >&2
  exit 3
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "error: Node.js 20 or newer is required (found $(node --version))" >&2
  exit 3
fi
if [ ! -x node_modules/.bin/tsx ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)..."
  npm ci --no-audit --no-fund
fi
