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
# Installs what it needs: Debian packages (apt-get, as root) and zig + cargo-zigbuild from PyPI into
# .venv-zig/. Each target has its own cargo target directory under target/ (different compilers and
# linkers would otherwise rebuild the shared crates back and forth). Every output is stripped and
# checked (architecture, libc, highest glibc version) before it is put in place.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
NAME=librechat-custom-backend-auth
ZIG_VENV="$REPO/.venv-zig"
ALL=(linux-x64-gnu linux-x64-musl linux-arm64-gnu linux-arm64-musl)
NAPI="$REPO/node_modules/.bin/napi"

log() { printf '[build-targets] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[[ -x "$NAPI" ]] || die "run npm install first (node_modules/.bin/napi is missing)"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then die "need root to apt-get install ${missing[*]} (or install them yourself)"; fi
  if [[ ! -e /var/lib/apt/lists/lock ]] || ! ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1; then
    apt-get update -q >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
}

# zig and cargo-zigbuild (PyPI) in a venv of their own; its bin/ goes first on PATH so that napi finds
# cargo-zigbuild instead of trying `cargo install`.
zig_venv() {
  if [[ ! -x "$ZIG_VENV/bin/cargo-zigbuild" ]]; then
    log "installing ziglang and cargo-zigbuild into .venv-zig"
    python3 -m venv "$ZIG_VENV" >&2
    "$ZIG_VENV/bin/pip" install -q --disable-pip-version-check 'ziglang==0.17.1' 'cargo-zigbuild==0.24.1' >&2
  fi
  # cargo-zigbuild runs `python -m ziglang` when no `zig` is on PATH; a zig shim keeps napi's check happy.
  if [[ ! -x "$ZIG_VENV/bin/zig" ]]; then
    printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$ZIG_VENV/bin/python" >"$ZIG_VENV/bin/zig"
    chmod +x "$ZIG_VENV/bin/zig"
  fi
}

# Debian's rustc 1.96 with the standard library's source: -Z build-std for targets rustup has no std for
# here (`rustup target add` cannot reach its servers).
debian_rust_env() {
  apt_install rustc-web cargo-web rust-web-src
  export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
}

napi_build() { # target-triple output-dir
  "$NAPI" build --platform --release --no-js --output-dir "$2" "${@:3}" --target "$1" >&2
}

# The file napi put in $dir, stripped and checked.
finish() { # platform
  local platform=$1 dir="$REPO/npm/$1" file
  file="$dir/$NAME.$platform.node"
  [[ -f "$file" ]] || die "$platform: napi build left no $file"
  rm -f "$dir/index.d.ts" # napi writes the type definitions next to the binary; binding.d.ts has them
  "${STRIP:-strip}" --strip-unneeded "$file"
  node "$REPO/scripts/check-binary.js" "$platform" "$file" >&2 || die "$platform: the binary fails its checks"
  log "$platform: $(stat -c %s "$file") bytes, $file"
}

build_linux_x64_gnu() {
  zig_venv
  (
    export PATH="$ZIG_VENV/bin:$PATH"
    export CARGO_TARGET_DIR="$REPO/target/x64-gnu-2.28"
    napi_build x86_64-unknown-linux-gnu.2.28 "$REPO/npm/linux-x64-gnu" -x
  )
  finish linux-x64-gnu
}

build_linux_x64_musl() {
  apt_install musl-tools musl-dev binutils
  (
    debian_rust_env
    export CARGO_TARGET_DIR="$REPO/target/x64-musl"
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
    napi_build x86_64-unknown-linux-musl "$REPO/npm/linux-x64-musl"
  )
  finish linux-x64-musl
}

build_linux_arm64_gnu() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu
  (
    debian_rust_env
    export PATH="$ZIG_VENV/bin:$PATH"
    export CARGO_TARGET_DIR="$REPO/target/arm64-gnu-2.28"
    napi_build aarch64-unknown-linux-gnu.2.28 "$REPO/npm/linux-arm64-gnu" -x
  )
  STRIP=aarch64-linux-gnu-strip finish linux-arm64-gnu
}

build_linux_arm64_musl() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu patchelf
  (
    debian_rust_env
    export PATH="$ZIG_VENV/bin:$PATH"
    export CARGO_TARGET_DIR="$REPO/target/arm64-musl"
    napi_build aarch64-unknown-linux-musl "$REPO/npm/linux-arm64-musl" -x
  )
  # zig's musl records `NEEDED libc.so`; Alpine's loader is libc.musl-aarch64.so.1 (musl accepts both,
  # the usual name is what tools and scanners expect).
  local file="$REPO/npm/linux-arm64-musl/$NAME.linux-arm64-musl.node"
  if readelf -d "$file" | grep -q 'Shared library: \[libc.so\]'; then
    patchelf --replace-needed libc.so libc.musl-aarch64.so.1 "$file"
  fi
  STRIP=aarch64-linux-gnu-strip finish linux-arm64-musl
}

targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
for platform in "${targets[@]}"; do
  case "$platform" in
    linux-x64-gnu | linux-x64-musl | linux-arm64-gnu | linux-arm64-musl) ;;
    *) die "unknown target '$platform' (one of: ${ALL[*]})" ;;
  esac
  start=$SECONDS
  log "$platform: building"
  "build_${platform//-/_}"
  log "$platform: done in $((SECONDS - start)) s"
done
