# The build cache, outside the checkout so that every clone of this repository (a developer's, CI's
# fresh one) reuses what another built. Sourced by the build and test scripts:
#
#   source scripts/cache.sh
#   dir=$(cache_target_dir x64-musl /usr/bin/rustc /usr/bin/cargo "$extra")   # a cargo target folder
#   cache_binary_get linux-x64-musl "$key" "$dest"                            # a finished binary
#
# Layout (LCBA_CACHE_DIR, default ${XDG_CACHE_HOME:-~/.cache}/librechat-custom-backend-auth):
#   cargo/<name>-<key>/   cargo target folders. The key hashes the toolchain (rustc -vV, cargo -V),
#                         the target's build settings and Cargo.lock: another toolchain, target or
#                         lock file gets a folder of its own, never a stale one. Changes of our own
#                         sources are cargo's to see; LCBA_SOURCE_ID (build.rs) makes it recompile
#                         the crate even where file times do not tell (a clone older than the build).
#   binaries/<platform>-<key>/   finished release binaries with binding.js/.d.ts, keyed by the source
#                         id, the target folder's key and the build scripts: the same inputs are not
#                         built twice (a developer's `npm run release`, then CI on the same commit).
#   venv-zig-*, venv-testdb-*, runtimes/, apt/   downloaded toolchains, runtimes and packages.
# Folders unused for 30 days are removed when a new one is made. Deleting the whole folder is
# always safe: everything in it is rebuilt or fetched again.

LCBA_CACHE_DIR="${LCBA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/librechat-custom-backend-auth}"
LCBA_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$LCBA_CACHE_DIR"

# cache_hash TEXT...: 16 hex digits of the SHA-256 of the arguments.
cache_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# The source id of this checkout (scripts/source-id.js), exported for build.rs: call it directly,
# not in "$(...)", or the export is lost with the subshell.
cache_source_id() {
  if [[ -z "${LCBA_SOURCE_ID:-}" ]]; then
    LCBA_SOURCE_ID="$(node "$LCBA_REPO/scripts/source-id.js")"
    export LCBA_SOURCE_ID
  fi
  printf '%s\n' "$LCBA_SOURCE_ID"
}

# Removes cache folders of one kind unused for 30 days (each use touches its folder).
cache_prune() { # parent-folder
  [[ -d "$1" ]] || return 0
  find "$1" -mindepth 1 -maxdepth 1 -type d -mtime +30 -exec rm -rf {} + 2>/dev/null || true
}

# cache_target_key NAME RUSTC CARGO [EXTRA]: the key of a cargo target folder.
cache_target_key() {
  local name=$1 rustc=$2 cargo=$3 extra=${4:-}
  cache_hash "$name" "$("$rustc" -vV)" "$("$cargo" -V)" "$extra" \
    "$(sha256sum "$LCBA_REPO/Cargo.lock" | cut -d' ' -f1)"
}

# cache_target_dir NAME RUSTC CARGO [EXTRA]: prints the cargo target folder for these inputs.
cache_target_dir() {
  local dir="$LCBA_CACHE_DIR/cargo/$1-$(cache_target_key "$@")"
  if [[ ! -d "$dir" ]]; then
    cache_prune "$LCBA_CACHE_DIR/cargo"
    mkdir -p "$dir"
  fi
  touch "$dir"
  printf '%s\n' "$dir"
}

# cache_binary_dir PLATFORM KEY: the folder of one finished build.
cache_binary_dir() { printf '%s\n' "$LCBA_CACHE_DIR/binaries/$1-$2"; }

# cache_binary_get PLATFORM KEY DEST-FILE: copies a cached binary (and the loader files built with
# it, into the checkout's root) if there is one; fails otherwise.
cache_binary_get() {
  local dir
  dir="$(cache_binary_dir "$1" "$2")"
  [[ -f "$dir/ok" && -f "$dir/binary.node" ]] || return 1
  cp "$dir/binary.node" "$3"
  for f in binding.js binding.d.ts; do
    [[ -f "$dir/$f" ]] && cp "$dir/$f" "$LCBA_REPO/$f"
  done
  touch "$dir"
}

# cache_binary_put PLATFORM KEY FILE [LOADER-FILES...]: stores a finished build.
cache_binary_put() {
  local dir
  dir="$(cache_binary_dir "$1" "$2")"
  cache_prune "$LCBA_CACHE_DIR/binaries"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$3" "$dir/binary.node"
  shift 3
  for f in "$@"; do cp "$f" "$dir/"; done
  touch "$dir/ok"
}

# cache_apt_install PACKAGE...: apt-get install of what is missing, downloads kept in the cache.
cache_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  printf '[cache] installing Debian packages: %s\n' "${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    printf '[cache] FAILED: need root to apt-get install %s (or install them yourself)\n' "${missing[*]}" >&2
    return 1
  fi
  local archives="$LCBA_CACHE_DIR/apt/archives"
  mkdir -p "$archives/partial"
  local opts=(-y -q --no-install-recommends -o "Dir::Cache::archives=$archives")
  if ! ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1; then apt-get update -q >&2; fi
  DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "${missing[@]}" >&2; }
}
