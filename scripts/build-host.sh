#!/usr/bin/env bash
# `npm run build` (`-- --debug` for `npm run build:debug`): the addon for this machine, with the
# loader (binding.js, binding.d.ts), in the checkout's root. Its cargo target folder is in the build
# cache (scripts/cache.sh), shared by every checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cache.sh
source scripts/cache.sh
cache_source_id >/dev/null
profile=(--release)
[[ "${1:-}" == --debug ]] && profile=()
CARGO_TARGET_DIR="$(cache_target_dir host rustc cargo)"
export CARGO_TARGET_DIR
exec node_modules/.bin/napi build --platform "${profile[@]}" --js binding.js --dts binding.d.ts
