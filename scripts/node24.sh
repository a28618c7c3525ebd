#!/usr/bin/env bash
# Runs Node 24.16.0 (LibreChat's pinned version; fetched by scripts/runtimes.sh) with the given arguments.
#   bash scripts/node24.sh node_modules/jest/bin/jest.js __test__/login.spec.js
set -euo pipefail
node24="$(bash "$(dirname "${BASH_SOURCE[0]}")/runtimes.sh" node24 | sed -n 's/^NODE24=//p')"
echo "[node24] $("$node24" --version)" >&2
exec "$node24" "$@"
