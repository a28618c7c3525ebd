'use strict';

// Issue 23: the build cache outside the checkout (scripts/cache.sh) never serves a stale build. Its
// cargo target folders are keyed by toolchain, target settings and lock file; our own sources are
// named by the source id (scripts/source-id.js), which every build embeds (build.rs) and which keys
// the finished binaries. The loaded addon must carry this checkout's id; release.spec.js checks every
// shipped binary the same way.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { sourceId, embeddedSourceId, INPUTS } = require('../scripts/source-id');

const REPO = path.resolve(__dirname, '..');

/** A copy of what the build reads, with the two scripts, in a folder of its own. */
function copyOfSources() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-cache-'));
  for (const input of [...INPUTS, 'scripts/source-id.js', 'scripts/cache.sh']) {
    fs.cpSync(path.join(REPO, input), path.join(dir, input), { recursive: true });
  }
  return dir;
}

const idOf = (dir) => execFileSync('node', [path.join(dir, 'scripts/source-id.js')], { encoding: 'utf8' }).trim();

/** cache_target_key of a copy, with fake toolchains that print `version`. */
function targetKey(dir, { name = 'x64-musl', rustc = '1.96.0', cargo = '1.96.0', settings = 'musl-gcc' } = {}) {
  const bin = path.join(dir, 'fake-bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'rustc'), `#!/bin/sh\necho "rustc ${rustc}"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'cargo'), `#!/bin/sh\necho "cargo ${cargo}"\n`, { mode: 0o755 });
  const script = `source "${dir}/scripts/cache.sh" && cache_target_key "${name}" "${bin}/rustc" "${bin}/cargo" "${settings}"`;
  return execFileSync('bash', ['-c', script], {
    encoding: 'utf8', env: { ...process.env, LCBA_CACHE_DIR: path.join(dir, 'cache') },
  }).trim();
}

describe('#23 the build cache serves no stale build', () => {
  let dir;
  beforeEach(() => {
    dir = copyOfSources();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('#23 the source id names the sources: a changed source file, build script, manifest or lock file changes it; nothing else does', () => {
    const base = idOf(dir);
    expect(base).toBe(sourceId()); // the copy holds the checkout's sources
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    fs.writeFileSync(path.join(dir, 'README.md'), 'not an input');
    fs.mkdirSync(path.join(dir, '__test__'));
    fs.writeFileSync(path.join(dir, '__test__', 'x.spec.js'), '// not an input');
    expect(idOf(dir)).toBe(base);
    for (const file of ['src/backend/breaker.rs', 'src/doctor/mod.rs', 'build.rs', 'Cargo.toml', 'Cargo.lock']) {
      const f = path.join(dir, file);
      const before = fs.readFileSync(f);
      fs.appendFileSync(f, '\n');
      expect([file, idOf(dir)]).not.toEqual([file, base]);
      fs.writeFileSync(f, before);
    }
    // A new file and a renamed one count too.
    fs.writeFileSync(path.join(dir, 'src', 'new.rs'), '');
    expect(idOf(dir)).not.toBe(base);
    fs.rmSync(path.join(dir, 'src', 'new.rs'));
    fs.renameSync(path.join(dir, 'src', 'shared', 'cache.rs'), path.join(dir, 'src', 'shared', 'cache2.rs'));
    expect(idOf(dir)).not.toBe(base);
  });

  test('#23 a cargo target folder is keyed by toolchain, target settings and lock file: a change of any is a folder of its own', () => {
    const base = targetKey(dir);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(targetKey(dir)).toBe(base); // the same inputs: the same folder, reused
    expect(targetKey(dir, { rustc: '1.97.0' })).not.toBe(base);
    expect(targetKey(dir, { cargo: '1.97.0' })).not.toBe(base);
    expect(targetKey(dir, { name: 'arm64-musl' })).not.toBe(base);
    expect(targetKey(dir, { settings: 'zig 0.18' })).not.toBe(base);
    fs.appendFileSync(path.join(dir, 'Cargo.lock'), '\n');
    expect(targetKey(dir)).not.toBe(base);
  });

  test('#23 the addon the tests load was built from this checkout\'s sources', () => {
    const native = require('../binding');
    expect(native.sourceId()).toBe(sourceId());
    const file = path.join(REPO, 'librechat-custom-backend-auth.linux-x64-gnu.node');
    expect(embeddedSourceId(file)).toBe(sourceId());
  });

  test('#23 source-id.js --check refuses a binary of other sources', () => {
    const fake = path.join(dir, 'fake.node');
    fs.writeFileSync(fake, `\0\0lcba-source-id:${'0'.repeat(64)}\0`);
    expect(() => execFileSync('node', [path.join(REPO, 'scripts/source-id.js'), '--check', fake], { stdio: 'pipe' }))
      .toThrow(/built from sources 0{64}, this checkout is [0-9a-f]{64}/);
  });
});
