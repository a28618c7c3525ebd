#!/bin/sh
# Installs librechat-custom-backend-auth into a LibreChat image at build time (docker/Dockerfile runs
# it) and applies the wiring. POSIX sh: LibreChat's image is Alpine (busybox).
#
#   sh install.sh /app            # LibreChat's folder in its image
#
# From the folder this script is in, it installs the main package's tarball and the platform tarball
# that npm finds fits this machine (npm's own choice by os/cpu/libc; npm_config_cpu and
# npm_config_libc override it as usual) into that folder's node_modules/, outside LibreChat's own tree
# (LibreChat's package.json and lock stay as they are, and nothing points outside the build context).
# It links the package into LibreChat's node_modules/, where `require('librechat-custom-backend-auth')`
# in api/ finds it, and wires LibreChat's files with the package's `init` (by anchors, for the
# LibreChat version of the image; the build fails, naming what it did not find, where it cannot).
# LCBA_SKIP_WIRING=1 leaves LibreChat's files alone (the package is installed, not wired).
set -eu

APP="${1:?usage: install.sh <LibreChat folder, /app in its image>}"
HERE="$(cd "$(dirname "$0")" && pwd)"
NAME=librechat-custom-backend-auth

die() { echo "[custom-backend-auth] FAILED: $*" >&2; exit 1; }

one() { # the single file matching a pattern in $HERE
  set -- $1
  [ "$#" -eq 1 ] && [ -f "$1" ] || die "expected exactly one $(basename "$1") in $HERE"
  echo "$1"
}
main_tgz="$(one "$HERE/$NAME-[0-9]*.tgz")"

# The prefix's package.json: the main package, and each platform tarball here as the source of its
# platform package (npm overrides). npm then picks the one that fits the machine by the packages'
# os/cpu/libc fields, exactly as from a registry, and asks no registry for them.
node - "$HERE" "$NAME" "$(basename "$main_tgz")" <<'JS'
const fs = require('fs');
const [here, name, main] = process.argv.slice(2);
const platforms = fs.readdirSync(here).filter((f) => f.startsWith(`${name}-linux-`) && f.endsWith('.tgz'));
const overrides = Object.fromEntries(platforms.map((f) => [f.replace(/-\d+\.\d+\.\d+.*\.tgz$/, ''), `file:./${f}`]));
fs.writeFileSync(`${here}/package.json`, JSON.stringify({ private: true, dependencies: { [name]: `file:./${main}` }, overrides }, null, 2));
JS

# --omit=peer: passport is LibreChat's own (the package resolves it from the application).
npm install --prefix "$HERE" --omit=dev --omit=peer --no-audit --no-fund --loglevel=error
platform="$(cd "$HERE/node_modules" && ls -d "$NAME"-linux-* 2>/dev/null || true)"
[ -n "$platform" ] && [ "$(echo "$platform" | wc -l)" -eq 1 ] \
  || die "npm installed no platform package for this machine; the release folder holds: $(ls "$HERE" | tr '\n' ' ')"
echo "[custom-backend-auth] installed $(basename "$main_tgz") with $platform"

mkdir -p "$APP/node_modules/.bin"
ln -sfn "$HERE/node_modules/$NAME" "$APP/node_modules/$NAME"
ln -sfn "../$NAME/bin/cli.js" "$APP/node_modules/.bin/$NAME"

if [ "${LCBA_SKIP_WIRING:-}" != 1 ]; then
  node "$HERE/node_modules/$NAME/bin/cli.js" init --no-env --no-doctor --dir "$APP" || die "init could not wire this LibreChat (what it looked for is above; docs/install.md, Wiring)"
fi

# Loads the package and its binary now, so that a wrong platform fails the image build, not the start
# (not when installing for another platform than this one's).
[ -n "${npm_config_cpu:-}${npm_config_libc:-}" ] || (cd "$APP" && node -e "require('$NAME'); console.log('[custom-backend-auth] the package loads: ' + require('$NAME/package.json').version)")
