#!/usr/bin/env node
'use strict';

// What a shipped binary must be, per platform, read with binutils' readelf (it reads every
// architecture): the machine, the shared libraries it needs, the newest glibc symbol version it
// references, and that it is stripped. Used by scripts/build-targets.sh after each build and by
// __test__/release.spec.js on the files that are packed.
//
//   node scripts/check-binary.js linux-x64-musl npm/linux-x64-musl/librechat-custom-backend-auth.linux-x64-musl.node

const { execFileSync } = require('child_process');

// Node's official Linux binaries need glibc 2.28; the addon must not ask for more.
const GLIBC_FLOOR = '2.28';

const GNU_LIBS = ['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'libgcc_s.so.1'];

// napi's platform names of the Rust targets we ship (package.json napi.targets).
const PLATFORM_OF = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
};

/** The platforms of package.json's napi.targets, in its order. */
function shippedPlatforms(targets) {
  return targets.map((t) => {
    if (!PLATFORM_OF[t]) throw new Error(`package.json napi.targets: no platform name for ${t}`);
    return PLATFORM_OF[t];
  });
}

const PLATFORMS = {
  'linux-x64-gnu': { machine: 'Advanced Micro Devices X86-64', libc: 'gnu', needed: [...GNU_LIBS, 'ld-linux-x86-64.so.2'] },
  'linux-x64-musl': { machine: 'Advanced Micro Devices X86-64', libc: 'musl', needed: ['libc.musl-x86_64.so.1', 'libgcc_s.so.1'] },
  'linux-arm64-gnu': { machine: 'AArch64', libc: 'gnu', needed: [...GNU_LIBS, 'ld-linux-aarch64.so.1'] },
  'linux-arm64-musl': { machine: 'AArch64', libc: 'musl', needed: ['libc.musl-aarch64.so.1', 'libgcc_s.so.1'] },
};

function readelf(args, file) {
  return execFileSync('readelf', ['-W', ...args, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Compares dotted versions numerically: '2.28' < '2.3' is false. */
function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The facts about one ELF file. */
function inspect(file) {
  const header = readelf(['-h'], file);
  const machine = (header.match(/^\s*Machine:\s*(.+)$/m) || [])[1]?.trim();
  const type = (header.match(/^\s*Type:\s*(\S+)/m) || [])[1];
  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versions = readelf(['-V'], file);
  const glibc = [...new Set([...versions.matchAll(/Name: GLIBC_([0-9.]+)/g)].map((m) => m[1]))].sort(compareVersions);
  const sections = readelf(['-S'], file);
  return {
    machine,
    type,
    needed,
    glibcVersions: glibc,
    glibcMax: glibc.length ? glibc[glibc.length - 1] : null,
    stripped: !/\s\.symtab\s/.test(sections),
  };
}

/** The problems of `file` as the binary of `platform`; an empty list when it is fit to ship. */
function problems(platform, file) {
  const want = PLATFORMS[platform];
  if (!want) return [`unknown platform ${platform}`];
  const facts = inspect(file);
  const out = [];
  if (facts.type !== 'DYN') out.push(`not a shared object (type ${facts.type})`);
  if (facts.machine !== want.machine) out.push(`machine is ${facts.machine}, expected ${want.machine}`);
  const foreign = facts.needed.filter((lib) => !want.needed.includes(lib));
  if (foreign.length) out.push(`needs ${foreign.join(', ')} (allowed: ${want.needed.join(', ')})`);
  if (want.libc === 'musl') {
    if (!facts.needed.includes(want.needed[0])) out.push(`does not need ${want.needed[0]}`);
    if (facts.glibcVersions.length) out.push(`references glibc versions ${facts.glibcVersions.join(', ')}`);
  } else {
    if (!facts.needed.includes('libc.so.6')) out.push('does not need libc.so.6');
    if (facts.glibcMax && compareVersions(facts.glibcMax, GLIBC_FLOOR) > 0) {
      out.push(`needs GLIBC_${facts.glibcMax}, newer than Node's floor ${GLIBC_FLOOR}`);
    }
  }
  if (!facts.stripped) out.push('not stripped (.symtab present)');
  return out;
}

module.exports = { PLATFORMS, GLIBC_FLOOR, shippedPlatforms, inspect, problems, compareVersions };

if (require.main === module) {
  const [platform, file] = process.argv.slice(2);
  if (!platform || !file) {
    console.error('usage: check-binary.js <platform> <file>');
    process.exit(2);
  }
  const found = problems(platform, file);
  const facts = inspect(file);
  console.log(`${platform}: ${facts.machine}; needs ${facts.needed.join(', ')}; glibc max ${facts.glibcMax || 'none'}; ${facts.stripped ? 'stripped' : 'NOT stripped'}`);
  for (const p of found) console.error(`  PROBLEM ${p}`);
  process.exit(found.length ? 1 : 0);
}
