#!/usr/bin/env bash
# All tests (`npm test`), quick ones first, so that a failure stops the run early:
#   1. cargo test --profile fast-test --features noop   the Rust unit tests
#   2. the linux-x64-gnu release binary (scripts/build-targets.sh, build cache: scripts/cache.sh),
#      put in the checkout's root, where binding.js loads it: the tests run against the binary that
#      ships, not a second build of the same sources
#   3. jest on Node 24.16.0 (LibreChat's pinned runtime): every spec but release and testbench;
#      then on Node 20 (this machine's node) testbench and the specs named in NODE20_SPECS below
#   4. `npm run pack:release` (dist/), once the other three release binaries are built: they build
#      from the start in the background at low priority (a release build spends minutes on one core
#      in its link-time optimisation, and jest waits on sockets and the database much of the time,
#      so two cores are kept busy), and are taken from the build cache when nothing changed
#   5. release.spec (Node 20; it installs the tarballs and runs them on Node 20, Node 24, Bun on
#      musl and arm64 Node under qemu itself)
# Each step's duration goes to $LCBA_STEP_LOG when it is set (.ci/run prints them as a table).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cache.sh
source scripts/cache.sh
cache_source_id >/dev/null # exported: every cargo build below embeds it (build.rs)

# What Node 20 runs besides Node 24's full run. The package's code is the same on both (N-API is
# ABI-stable, one binary serves both): what differs is the runtime under it (http parser, fetch,
# timers, streams, process spawning). These specs cover each of those paths end to end: login,
# refresh and logout over HTTP, API requests, the events endpoint, the CLI as a child process, the
# install from the tarballs (release.spec loads the package in Node 20 and in Node 24 itself).
NODE20_SPECS=(login refresh jwt revocation doctor statuses)

step() { # name command...
  local name=$1 started=$SECONDS rc=0
  shift
  printf '\n[test] %s: %s\n' "$name" "$*" >&2
  "$@" || rc=$?
  if [[ -n "${LCBA_STEP_LOG:-}" ]]; then
    printf '%s\t%s\t%s\n' "$name" "$((SECONDS - started))" "$rc" >>"$LCBA_STEP_LOG"
  fi
  if ((rc != 0)); then
    printf '[test] FAILED (exit %s): %s\n' "$rc" "$name" >&2
    exit "$rc"
  fi
  printf '[test] %s: %s s\n' "$name" "$((SECONDS - started))" >&2
}

# The other targets in the background, in a session of their own (a failure in the foreground stops
# them with their compilers); their log is printed when they are waited for.
others_log="$(mktemp)"
others_started=$SECONDS
setsid nice -n 19 bash scripts/build-targets.sh linux-x64-musl linux-arm64-gnu linux-arm64-musl >"$others_log" 2>&1 &
others=$!
# A new session is a scheduling group of its own where the kernel groups by session (autogroup):
# the group's own nice value, not the processes', then decides its share of the CPU. Set once the
# child is in its own group (never ours: that would slow the tests instead).
group() { cut -d' ' -f1 "/proc/$1/autogroup" 2>/dev/null; }
for _ in {1..100}; do
  [[ -n "$(group "$others")" && "$(group "$others")" != "$(group $$)" ]] && break
  sleep 0.02
done
if [[ -n "$(group "$others")" && "$(group "$others")" != "$(group $$)" ]]; then
  echo 19 >"/proc/$others/autogroup" 2>/dev/null || true
fi
# shellcheck disable=SC2317 # called by the trap
stop_others() { kill -- "-$others" 2>/dev/null || true; }
trap stop_others EXIT
wait_others() {
  local rc=0
  wait "$others" || rc=$?
  cat "$others_log" >&2
  rm -f "$others_log"
  printf '[test] the three other release builds took %s s in the background\n' "$((SECONDS - others_started))" >&2
  return "$rc"
}

# The unit tests' own cargo target folder (the host toolchain; see Cargo.toml's fast-test profile).
CARGO_TARGET_DIR="$(cache_target_dir host-test rustc cargo "fast-test noop")" \
  step "cargo test" cargo test --profile fast-test --features noop
step "release build linux-x64-gnu" bash scripts/build-targets.sh linux-x64-gnu
step "test binary" cp npm/linux-x64-gnu/librechat-custom-backend-auth.linux-x64-gnu.node .
step "jest, Node 24" bash scripts/node24.sh node_modules/jest/bin/jest.js \
  --testPathIgnorePatterns release.spec testbench.spec
node20_specs=()
for s in testbench "${NODE20_SPECS[@]}"; do node20_specs+=("__test__/$s.spec.js"); done
step "jest, Node 20" node node_modules/jest/bin/jest.js "${node20_specs[@]}"
step "release builds, rest (waited for)" wait_others
trap - EXIT
step "pack" node scripts/pack.js
step "jest, release" node node_modules/jest/bin/jest.js __test__/release.spec.js
