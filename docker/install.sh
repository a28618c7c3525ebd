#!/bin/sh
# Installs librechat-custom-backend-auth into a LibreChat image at build time (docker/Dockerfile runs
# it) and applies the wiring. POSIX sh: LibreChat's image is Alpine (busybox).
#
#   sh install.sh /app            # LibreChat's folder in its image
#
# From the folder this script is in, it takes the main package's tarball, the one platform tarball
# that fits this machine (CPU from Node, libc from Node's report; npm_config_cpu / npm_config_libc
# override both, as they do for npm) and wiring-v0.8.patch. It installs them with npm into that folder
# (its node_modules/, outside LibreChat's own tree, so LibreChat's package.json and lock stay as they
# are and nothing points outside the build context), links the package into LibreChat's node_modules/
# where `require('librechat-custom-backend-auth')` in api/ finds it, and patches LibreChat's files.
# LCBA_SKIP_WIRING=1 leaves LibreChat's files alone (the package is installed, not wired).
set -eu

APP="${1:?usage: install.sh <LibreChat folder, /app in its image>}"
HERE="$(cd "$(dirname "$0")" && pwd)"
NAME=librechat-custom-backend-auth

die() { echo "[custom-backend-auth] FAILED: $*" >&2; exit 1; }

cpu="${npm_config_cpu:-$(node -p process.arch)}"
libc="${npm_config_libc:-$(node -p "process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl'")}"
case "$libc" in
  glibc) abi=gnu ;;
  musl) abi=musl ;;
  *) die "unknown libc '$libc'" ;;
esac
platform="linux-$cpu-$abi"

one() { # the single file matching a pattern in $HERE
  set -- $1
  [ "$#" -eq 1 ] && [ -f "$1" ] || die "expected exactly one $(basename "$1") in $HERE"
  echo "$1"
}
main_tgz="$(one "$HERE/$NAME-[0-9]*.tgz")"
platform_tgz="$(one "$HERE/$NAME-$platform-[0-9]*.tgz")"
echo "[custom-backend-auth] installing $(basename "$main_tgz") and $(basename "$platform_tgz") ($platform)"

# --omit=peer: passport is LibreChat's own (the package resolves it from the application).
npm install --prefix "$HERE" --omit=dev --omit=peer --no-audit --no-fund --loglevel=error \
  "$main_tgz" "$platform_tgz"

mkdir -p "$APP/node_modules/.bin"
ln -sfn "$HERE/node_modules/$NAME" "$APP/node_modules/$NAME"
ln -sfn "../$NAME/bin/cli.js" "$APP/node_modules/.bin/$NAME"

if [ "${LCBA_SKIP_WIRING:-}" != 1 ]; then
  (cd "$APP" && patch -p1 < "$HERE/wiring-v0.8.patch") || die "the wiring patch does not apply to this LibreChat version (see README section 3)"
fi

# Loads the package and its binary now, so that a wrong platform fails the image build, not the start
# (not when installing for another platform than this one's).
[ -n "${npm_config_cpu:-}${npm_config_libc:-}" ] || (cd "$APP" && node -e "require('$NAME'); console.log('[custom-backend-auth] the package loads: ' + require('$NAME/package.json').version)")
