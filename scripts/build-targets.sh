#!/usr/bin/env bash
# Builds the shipped binaries into npm/<platform>/, the per-platform packages (`npm run build:targets`).
#
#   bash scripts/build-targets.sh                  # every shipped target
#   bash scripts/build-targets.sh linux-x64-musl   # some of them
#
# Targets (napi platform names):
#   linux-x64-gnu     x86_64-unknown-linux-gnu, linked against glibc 2.28 with zig (Node 20/24's own
#                     floor), rustup's standard library
#   linux-x64-musl    x86_64-unknown-linux-musl for Alpine (LibreChat's image): Debian's rustc-web
#                     with -Z build-std, linked by musl-gcc with Alpine's library names
#   linux-arm64-gnu   aarch64-unknown-linux-gnu, glibc 2.28, zig, build-std
#   linux-arm64-musl  aarch64-unknown-linux-musl, zig, build-std, NEEDED renamed to Alpine's name
#
# Installs what it needs: Debian packages (apt-get, as root) and zig + cargo-zigbuild from PyPI, into
# the build cache (scripts/cache.sh), where each target also has its cargo target folder (different
# compilers and linkers would otherwise rebuild the shared crates back and forth) and its finished
# binaries: a target whose sources, toolchain, lock file and build scripts were built before is
# taken from there, not built again. Every output is stripped and checked (architecture, libc, highest
# glibc version) before it is put in place. linux-x64-gnu also writes the loader, binding.js and
# binding.d.ts, as `napi build` does (the tests load that binary from the checkout's root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
# shellcheck source=cache.sh
source "$REPO/scripts/cache.sh"
NAME=librechat-custom-backend-auth
ZIG_PINS=('ziglang==0.17.1' 'cargo-zigbuild==0.24.1')
ZIG_VENV="$LCBA_CACHE_DIR/venv-zig-$(cache_hash "${ZIG_PINS[*]}" "$(python3 --version 2>&1)")"
ALL=(linux-x64-gnu linux-x64-musl linux-arm64-gnu linux-arm64-musl)
NAPI="$REPO/node_modules/.bin/napi"

log() { printf '[build-targets] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[[ -x "$NAPI" ]] || die "run npm install first (node_modules/.bin/napi is missing)"
cache_source_id >/dev/null # exported for build.rs (not in a subshell: the export must stay)
SOURCE_ID="$LCBA_SOURCE_ID"

apt_install() { cache_apt_install "$@" || die "cannot install the Debian packages $*"; }

# zig and cargo-zigbuild (PyPI) in a venv of their own; its bin/ goes first on PATH so that napi finds
# cargo-zigbuild instead of trying `cargo install`.
zig_venv() {
  if [[ ! -x "$ZIG_VENV/bin/cargo-zigbuild" ]]; then
    log "installing ${ZIG_PINS[*]} into $ZIG_VENV"
    rm -rf "$ZIG_VENV"
    python3 -m venv "$ZIG_VENV" >&2
    "$ZIG_VENV/bin/pip" install -q --disable-pip-version-check "${ZIG_PINS[@]}" >&2
  fi
  # cargo-zigbuild runs `python -m ziglang` when no `zig` is on PATH; a zig shim keeps napi's check happy.
  if [[ ! -x "$ZIG_VENV/bin/zig" ]]; then
    printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$ZIG_VENV/bin/python" >"$ZIG_VENV/bin/zig"
    chmod +x "$ZIG_VENV/bin/zig"
  fi
  touch "$ZIG_VENV"
}

# Debian's rustc 1.96 with the standard library's source: -Z build-std for targets rustup has no std for
# here (`rustup target add` cannot reach its servers).
debian_rust_env() {
  apt_install rustc-web cargo-web rust-web-src
  export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
}

# The cargo target folder of a target (scripts/cache.sh): keyed by the compiler in use and the
# settings named here, so that a change of either never reuses another's build.
target_dir() { # name extra-settings
  CARGO_TARGET_DIR="$(cache_target_dir "$1" "${RUSTC:-rustc}" "${CARGO:-cargo}" "$2")"
  export CARGO_TARGET_DIR
}

# Each target's setup (in the subshell that builds it): its toolchain and environment, then
# TRIPLE, NAPI_ARGS, STRIP, and SETTINGS (what keys its cargo target folder besides the compiler).
setup_linux_x64_gnu() {
  zig_venv
  export PATH="$ZIG_VENV/bin:$PATH"
  TRIPLE=x86_64-unknown-linux-gnu.2.28 NAPI_ARGS=(-x --js binding.js --dts binding.d.ts) STRIP=strip
  SETTINGS="zig ${ZIG_PINS[*]}"
  target_dir x64-gnu-2.28 "$SETTINGS"
}

setup_linux_x64_musl() {
  apt_install musl-tools musl-dev binutils
  debian_rust_env
  TRIPLE=x86_64-unknown-linux-musl NAPI_ARGS=() STRIP=strip SETTINGS="musl-gcc, Alpine's library names"
  target_dir x64-musl "$SETTINGS"
  # Link-time stubs: Debian's musl libc.so has no SONAME, so the result would record `NEEDED libc.so`;
  # Alpine's loader is libc.musl-x86_64.so.1. Rust's unwinder links -lgcc_s, which musl-gcc does not
  # find; at run time Alpine's libgcc package provides it (Node on Alpine depends on it already).
  local stub="$CARGO_TARGET_DIR/link-stubs"
  mkdir -p "$stub"
  ln -sf /usr/lib/x86_64-linux-musl/libc.so "$stub/libc.musl-x86_64.so.1"
  printf 'INPUT(-l:libc.musl-x86_64.so.1)\n' >"$stub/libc.so"
  ln -sf "$(gcc -print-file-name=libgcc_s.so.1)" "$stub/libgcc_s.so.1"
  printf '#!/bin/sh\nexec musl-gcc -L"%s" "$@"\n' "$stub" >"$stub/linker"
  chmod +x "$stub/linker"
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER="$stub/linker"
  export CC_x86_64_unknown_linux_musl=musl-gcc AR_x86_64_unknown_linux_musl=ar
}

setup_linux_arm64_gnu() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu
  debian_rust_env
  export PATH="$ZIG_VENV/bin:$PATH"
  TRIPLE=aarch64-unknown-linux-gnu.2.28 NAPI_ARGS=(-x) STRIP=aarch64-linux-gnu-strip
  SETTINGS="zig ${ZIG_PINS[*]}"
  target_dir arm64-gnu-2.28 "$SETTINGS"
}

setup_linux_arm64_musl() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu patchelf
  debian_rust_env
  export PATH="$ZIG_VENV/bin:$PATH"
  TRIPLE=aarch64-unknown-linux-musl NAPI_ARGS=(-x) STRIP=aarch64-linux-gnu-strip
  SETTINGS="zig ${ZIG_PINS[*]}, NEEDED renamed"
  target_dir arm64-musl "$SETTINGS"
}

# After napi built the target: fix-ups of the file before it is stripped.
after_linux_arm64_musl() {
  # zig's musl records `NEEDED libc.so`; Alpine's loader is libc.musl-aarch64.so.1 (musl accepts both,
  # the usual name is what tools and scanners expect).
  if readelf -d "$1" | grep -q 'Shared library: \[libc.so\]'; then
    patchelf --replace-needed libc.so libc.musl-aarch64.so.1 "$1"
  fi
}

# The key of a finished binary: the sources (their id), the cargo target folder's key (compiler,
# settings, lock file), this script and the checks, and the napi CLI that writes the loader.
binary_key() {
  cache_hash "$SOURCE_ID" "$(basename "$CARGO_TARGET_DIR")" \
    "$(cat "$REPO/scripts/build-targets.sh" "$REPO/scripts/check-binary.js" | sha256sum)" \
    "$("$NAPI" --version 2>/dev/null)"
}

# Builds one target (or takes it from the cache), strips and checks it, puts it in npm/<platform>/.
build() { # platform
  local platform=$1 dir="$REPO/npm/$1" file key
  file="$dir/$NAME.$platform.node"
  "setup_${platform//-/_}"
  key="$(binary_key)"
  rm -f "$file"
  local loader=() fresh=0
  if cache_binary_get "$platform" "$key" "$file"; then
    log "$platform: from the cache (sources ${SOURCE_ID:0:12}, key $key)"
  else
    fresh=1
    "$NAPI" build --platform --release --output-dir "$dir" "${NAPI_ARGS[@]}" --target "$TRIPLE" >&2
    [[ -f "$file" ]] || die "$platform: napi build left no $file"
    rm -f "$dir/index.d.ts" # napi writes the type definitions next to the binary; binding.d.ts has them
    if declare -F "after_${platform//-/_}" >/dev/null; then "after_${platform//-/_}" "$file"; fi
    "$STRIP" --strip-unneeded "$file"
    if [[ -f "$dir/binding.js" ]]; then
      mv "$dir/binding.js" "$dir/binding.d.ts" "$REPO/"
      loader=("$REPO/binding.js" "$REPO/binding.d.ts")
    fi
  fi
  node "$REPO/scripts/check-binary.js" "$platform" "$file" >&2 || die "$platform: the binary fails its checks"
  node "$REPO/scripts/source-id.js" --check "$file" >&2 || die "$platform: the binary was not built from these sources"
  if ((fresh)); then cache_binary_put "$platform" "$key" "$file" "${loader[@]}"; fi
  log "$platform: $(stat -c %s "$file") bytes, $file"
}

targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
for platform in "${targets[@]}"; do
  case "$platform" in
    linux-x64-gnu | linux-x64-musl | linux-arm64-gnu | linux-arm64-musl) ;;
    *) die "unknown target '$platform' (one of: ${ALL[*]})" ;;
  esac
done
for platform in "${targets[@]}"; do
  start=$SECONDS
  log "$platform: building"
  (build "$platform")
  log "$platform: done in $((SECONDS - start)) s"
done
