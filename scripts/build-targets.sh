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
# The three build-std targets are built together, by one cargo run into one target folder.
#
# Installs what it needs: Debian packages (apt-get, as root) and zig + cargo-zigbuild from PyPI, into
# the build cache (scripts/cache.sh), where linux-x64-gnu and the three others each have their cargo
# target folder (two compilers would otherwise rebuild the shared crates back and forth) and every
# target its finished binaries: a target whose sources, toolchain, lock file and build scripts were built before is
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
CRATE=librechat_custom_backend_auth # the [lib] of Cargo.toml

log() { printf '[build-targets] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[[ -x "$NAPI" ]] || die "run npm install first (node_modules/.bin/napi is missing)"
cache_source_id >/dev/null # exported for build.rs (not in a subshell: the export must stay)
SOURCE_ID="$LCBA_SOURCE_ID"

apt_install() { cache_apt_install "$@" || die "cannot install the Debian packages $*"; }

# zig and cargo-zigbuild (PyPI) in a venv of their own; its bin/ goes first on PATH so that napi finds
# cargo-zigbuild instead of trying `cargo install`.
zig_venv() {
  # The release builds in the foreground and the background may both get here first on a new machine.
  exec {lock}>"$ZIG_VENV.lock"
  flock "$lock"
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
  flock -u "$lock"
}

# Debian's rustc 1.96 with the standard library's source: -Z build-std for targets rustup has no std for
# here (`rustup target add` cannot reach its servers).
debian_rust_env() {
  apt_install rustc-web cargo-web rust-web-src
  export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
}

# The cargo target folder (scripts/cache.sh): keyed by the compiler in use and the settings named
# here, so that a change of either never reuses another's build.
target_dir() { # name extra-settings
  CARGO_TARGET_DIR="$(cache_target_dir "$1" "${RUSTC:-rustc}" "${CARGO:-cargo}" "$2")"
  export CARGO_TARGET_DIR
}

# Rust's triple and the strip tool of each platform.
declare -A TRIPLE_OF=(
  [linux-x64-gnu]=x86_64-unknown-linux-gnu [linux-x64-musl]=x86_64-unknown-linux-musl
  [linux-arm64-gnu]=aarch64-unknown-linux-gnu [linux-arm64-musl]=aarch64-unknown-linux-musl
)
declare -A STRIP_OF=(
  [linux-x64-gnu]=strip [linux-x64-musl]=strip
  [linux-arm64-gnu]=aarch64-linux-gnu-strip [linux-arm64-musl]=aarch64-linux-gnu-strip
)

# The three targets of Debian's rustc share one cargo target folder and one cargo run: the build
# scripts and proc-macros they share are compiled once, and cargo keeps both cores busy across the
# three (one target alone leaves a core idle for about a third of its build, while the biggest crates
# and the link-time optimisation run on one). How each is linked is what keys the folder:
CROSS_SETTINGS="x64-musl: musl-gcc with Alpine's library names; arm64: zig ${ZIG_PINS[*]} through \
cargo-zigbuild's zig cc, glibc 2.28; musl: -crt-static off as napi sets it, NEEDED renamed"

# A target linked by zig, through cargo-zigbuild's `zig cc` (it adapts rustc's linker arguments to
# zig): what `cargo zigbuild` sets up for its one target, here for any number in one cargo run.
zig_linker() { # rust-triple zig-target
  local dir="$CARGO_TARGET_DIR/zig" var=${1//-/_}
  mkdir -p "$dir"
  printf '#!/bin/sh\nexport CARGO_ZIGBUILD_ZIG_COMMAND="%s" CARGO_ZIGBUILD_ZIG_COMMAND_ARGS="-m ziglang"\nexec "%s" zig cc -- -g -fno-sanitize=all -target %s "$@"\n' \
    "$ZIG_VENV/bin/python" "$ZIG_VENV/bin/cargo-zigbuild" "$2" >"$dir/cc-$1"
  chmod +x "$dir/cc-$1"
  # Archives of C objects (ring's): binutils' own for aarch64, whatever the libc.
  export "CARGO_TARGET_${var^^}_LINKER=$dir/cc-$1" "CC_$var=$dir/cc-$1" "AR_$var=aarch64-linux-gnu-ar"
}

# Each target's setup: its toolchain and environment. The cross targets' run in one shell, after
# debian_rust_env and target_dir.
setup_linux_x64_gnu() {
  zig_venv
  export PATH="$ZIG_VENV/bin:$PATH"
  target_dir x64-gnu-2.28 "zig ${ZIG_PINS[*]}"
}

setup_linux_x64_musl() {
  apt_install musl-tools musl-dev binutils
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
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
}

setup_linux_arm64_gnu() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu
  zig_linker aarch64-unknown-linux-gnu aarch64-linux-gnu.2.28
}

setup_linux_arm64_musl() {
  zig_venv
  apt_install binutils-aarch64-linux-gnu patchelf
  zig_linker aarch64-unknown-linux-musl aarch64-linux-musl
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
}

# After the target was built: fix-ups of the file before it is stripped.
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

binary_file() { printf '%s\n' "$REPO/npm/$1/$NAME.$1.node"; }

# A built file: fixed up and stripped (when just built), checked, stored in the cache.
finish() { # platform fresh [loader-files...]
  local platform=$1 fresh=$2 file
  shift 2
  file="$(binary_file "$platform")"
  if ((fresh)); then
    if declare -F "after_${platform//-/_}" >/dev/null; then "after_${platform//-/_}" "$file"; fi
    "${STRIP_OF[$platform]}" --strip-unneeded "$file"
  fi
  node "$REPO/scripts/check-binary.js" "$platform" "$file" >&2 || die "$platform: the binary fails its checks"
  node "$REPO/scripts/source-id.js" --check "$file" >&2 || die "$platform: the binary was not built from these sources"
  if ((fresh)); then cache_binary_put "$platform" "$(binary_key)" "$file" "$@"; fi
  log "$platform: $(stat -c %s "$file") bytes, $file"
}

# linux-x64-gnu, with `napi build` (through cargo-zigbuild for glibc 2.28): it also writes the loader.
build_x64_gnu() {
  local platform=linux-x64-gnu dir="$REPO/npm/linux-x64-gnu" file
  file="$(binary_file "$platform")"
  setup_linux_x64_gnu
  rm -f "$file"
  if cache_binary_get "$platform" "$(binary_key)" "$file"; then
    log "$platform: from the cache (sources ${SOURCE_ID:0:12})"
    finish "$platform" 0
    return
  fi
  "$NAPI" build --platform --release --output-dir "$dir" -x --js binding.js --dts binding.d.ts \
    --target x86_64-unknown-linux-gnu.2.28 >&2
  [[ -f "$file" ]] || die "$platform: napi build left no $file"
  rm -f "$dir/index.d.ts" # napi writes the type definitions next to the binary; binding.d.ts has them
  mv "$dir/binding.js" "$dir/binding.d.ts" "$REPO/"
  finish "$platform" 1 "$REPO/binding.js" "$REPO/binding.d.ts"
}

# The cross targets asked for: those the cache has are taken from it, the rest built by one cargo run.
build_cross() { # platforms...
  debian_rust_env
  target_dir cross "$CROSS_SETTINGS"
  local platform todo=() args=()
  for platform in "$@"; do "setup_${platform//-/_}"; done
  for platform in "$@"; do
    rm -f "$(binary_file "$platform")"
    if cache_binary_get "$platform" "$(binary_key)" "$(binary_file "$platform")"; then
      log "$platform: from the cache (sources ${SOURCE_ID:0:12})"
    else
      todo+=("$platform") args+=(--target "${TRIPLE_OF[$platform]}")
    fi
  done
  if ((${#todo[@]})); then
    log "building ${todo[*]} in one cargo run"
    "$CARGO" build --release --lib --locked "${args[@]}" >&2
    for platform in "${todo[@]}"; do
      cp "$CARGO_TARGET_DIR/${TRIPLE_OF[$platform]}/release/lib${CRATE}.so" "$(binary_file "$platform")"
    done
  fi
  for platform in "$@"; do
    local fresh=0
    [[ " ${todo[*]} " == *" $platform "* ]] && fresh=1
    finish "$platform" "$fresh"
  done
}

targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
for platform in "${targets[@]}"; do
  case "$platform" in
    linux-x64-gnu | linux-x64-musl | linux-arm64-gnu | linux-arm64-musl) ;;
    *) die "unknown target '$platform' (one of: ${ALL[*]})" ;;
  esac
done
cross=()
for platform in "${targets[@]}"; do
  [[ $platform == linux-x64-gnu ]] || cross+=("$platform")
done
start=$SECONDS
if [[ " ${targets[*]} " == *" linux-x64-gnu "* ]]; then
  (build_x64_gnu)
  log "linux-x64-gnu: done in $((SECONDS - start)) s"
fi
if ((${#cross[@]})); then
  start=$SECONDS
  (build_cross "${cross[@]}")
  log "${cross[*]}: done in $((SECONDS - start)) s"
fi
