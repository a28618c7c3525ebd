'use strict';

// The release as an operator gets it (issue "Ship it the way LibreChat runs"): the binaries inside the
// packed platform packages, the packages' contents, an install from the tarballs with no Rust on PATH
// followed word for word from docs/install.md, on Node 20 and Node 24, and the musl binary loaded by a
// musl runtime after the Docker install step. Needs `npm run release` (dist/) and
// scripts/runtimes.sh's downloads (fetched here on first use); `npm test` runs both.

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawn, spawnSync } = require('child_process');
const yaml = require('js-yaml');
const { startMockBackend } = require('./support/mockBackend');
const { mongoUri } = require('./support/mongoUri');
const { problems, inspect, compareVersions, shippedPlatforms, GLIBC_FLOOR, PLATFORMS } = require('../scripts/check-binary');
const { sourceId, embeddedSourceId } = require('../scripts/source-id');

jest.setTimeout(240000);

const REPO = path.resolve(__dirname, '..');
const DIST = path.join(REPO, 'dist');
const pkg = require('../package.json');
const NAME = pkg.name;
const SHIPPED = shippedPlatforms(pkg.napi.targets);
const tgzOf = (platform) => path.join(DIST, platform ? `${NAME}-${platform}-${pkg.version}.tgz` : `${NAME}-${pkg.version}.tgz`);

function distFile(file) {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(REPO, file)} is missing: run \`npm run release\` first`);
  return file;
}
const tarList = (tgz) => execFileSync('tar', ['-tzf', distFile(tgz)], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
const tarRead = (tgz, member) => execFileSync('tar', ['-xzOf', distFile(tgz), member], { encoding: 'utf8', maxBuffer: 1 << 26 });

const tmpDirs = [];
function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `lcba-${prefix}-`));
  tmpDirs.push(d);
  return d;
}
afterAll(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The platform binary as packed: extracted from its tarball. */
function packedBinary(platform) {
  const dir = tmpDir(`bin-${platform}`);
  execFileSync('tar', ['-xzf', distFile(tgzOf(platform)), '-C', dir]);
  return path.join(dir, 'package', `${NAME}.${platform}.node`);
}

/**
 * A PATH with no Rust on it, as an operator has: one folder of links to every program on the current
 * PATH except Rust's (Debian's cargo and rustc live in /usr/bin beside everything else).
 */
let noRustPath;
function pathWithoutRust() {
  if (noRustPath) return noRustPath;
  const bin = path.join(tmpDir('norust'), 'bin');
  fs.mkdirSync(bin);
  const rust = /^(cargo|cargo-.*|rustc|rustup|rustdoc|rustfmt|rust-gdb|rust-lldb|clippy-driver)$/;
  for (const dir of process.env.PATH.split(':').filter(Boolean)) {
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (rust.test(name) || fs.existsSync(path.join(bin, name))) continue;
      try {
        fs.accessSync(path.join(dir, name), fs.constants.X_OK);
        if (fs.statSync(path.join(dir, name)).isFile()) fs.symlinkSync(path.join(dir, name), path.join(bin, name));
      } catch {
        // not an executable file
      }
    }
  }
  noRustPath = bin;
  return bin;
}

function runtimes(...names) {
  const out = execFileSync('bash', [path.join(REPO, 'scripts/runtimes.sh'), ...names], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split('=')));
}

/** The shell block of docs/install.md that follows the marker `<!-- test: NAME -->`. */
function docBlock(name) {
  const doc = fs.readFileSync(path.join(REPO, 'docs', 'install.md'), 'utf8');
  const m = new RegExp(`<!-- test: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/install.md has no block marked <!-- test: ${name} -->`);
  return m[1];
}

/** Runs a command without blocking the event loop (the mock backend answers from this process). */
function run(cmd, args, { timeout = 200000, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe('#9.1 binaries: what ships is stripped and loads where LibreChat runs', () => {
  test.each(SHIPPED)('%s: right machine and libc, only the allowed libraries, stripped', (platform) => {
    expect(problems(platform, packedBinary(platform))).toEqual([]);
  });

  test('linux-x64-musl: NEEDED exactly libc.musl-x86_64.so.1 and libgcc_s.so.1, no GLIBC_ version', () => {
    const facts = inspect(packedBinary('linux-x64-musl'));
    expect([...facts.needed].sort()).toEqual(['libc.musl-x86_64.so.1', 'libgcc_s.so.1']);
    expect(facts.glibcVersions).toEqual([]);
    expect(facts.machine).toBe(PLATFORMS['linux-x64-musl'].machine);
  });

  test(`linux-x64-gnu: the newest GLIBC_ version referenced is at most ${GLIBC_FLOOR} (Node's own floor)`, () => {
    const facts = inspect(packedBinary('linux-x64-gnu'));
    expect(facts.glibcMax).not.toBeNull();
    expect(compareVersions(facts.glibcMax, GLIBC_FLOOR)).toBeLessThanOrEqual(0);
  });

  test('the checks refuse a binary linked against this machine\'s glibc, and a glibc binary as musl', () => {
    // Anything linked here (Debian 12's glibc 2.36), as `npm run build` links the developer build,
    // asks for more than 2.28: a program built by this machine's gcc does.
    const local = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-glibc-')), 'local.so');
    execFileSync('gcc', ['-x', 'c', '-shared', '-fPIC', '-o', local, '-'], {
      input: '#include <pthread.h>\nint f(pthread_t *t, void *(*g)(void *)) { return pthread_create(t, 0, g, 0); }\n',
    });
    const facts = inspect(local);
    expect(compareVersions(facts.glibcMax, GLIBC_FLOOR)).toBeGreaterThan(0);
    expect(problems('linux-x64-gnu', local).join('\n')).toMatch(/newer than Node's floor/);
    expect(problems('linux-x64-musl', packedBinary('linux-x64-gnu')).join('\n')).toMatch(/libc\.so\.6/);
  });
});

describe('#23 the binaries were built from this checkout (no stale build from the build cache)', () => {
  test.each(SHIPPED)('%s carries the source id of the checkout it ships from', (platform) => {
    expect(embeddedSourceId(packedBinary(platform))).toBe(sourceId());
  });
});

describe('#9.2/#9.5 packages: the napi-rs layout, only what runs', () => {
  test('the main package holds the shim, the loader, the CLI, the wiring patch and the docs, no binary, no tests', () => {
    const folder = (dir) => fs.readdirSync(path.join(REPO, dir)).map((f) => `package/${dir}/${f}`);
    expect(tarList(tgzOf())).toEqual(
      [
        'package/CHANGELOG.md',
        'package/LICENSE',
        'package/README.md',
        ...folder('docs'), // the README's links lead there
        'package/bin/cli.js',
        'package/binding.d.ts',
        'package/binding.js',
        'package/index.d.ts',
        'package/index.js',
        ...folder('lib'),
        ...folder('librechat'),
        'package/package.json',
      ].sort(),
    );
  });

  test('the main package names every platform package as an optional dependency of its exact version', () => {
    const manifest = JSON.parse(tarRead(tgzOf(), 'package/package.json'));
    expect(manifest.optionalDependencies).toEqual(Object.fromEntries(SHIPPED.map((p) => [`${NAME}-${p}`, pkg.version])));
    expect(manifest.files.some((f) => f.endsWith('.node'))).toBe(false);
    expect(manifest.engines.node).toBe('>=20');
    expect(manifest.license).toBe('MIT');
  });

  test.each(SHIPPED)('%s package: the binary, its manifest and README only; os, cpu and libc set', (platform) => {
    expect(tarList(tgzOf(platform))).toEqual(['package/README.md', `package/${NAME}.${platform}.node`, 'package/package.json']);
    const manifest = JSON.parse(tarRead(tgzOf(platform), 'package/package.json'));
    const [, cpu, abi] = platform.split('-');
    expect(manifest).toMatchObject({ name: `${NAME}-${platform}`, version: pkg.version, os: ['linux'], cpu: [cpu], libc: [abi === 'gnu' ? 'glibc' : 'musl'], main: `${NAME}.${platform}.node` });
  });

  test('npm pack of the repository (the from-source install) holds only what runs', () => {
    const files = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: REPO, encoding: 'utf8' }))[0].files.map((f) => f.path);
    const allowed = /^(LICENSE|README\.md|CHANGELOG\.md|docs\/[a-z-]+\.md|package\.json|index\.js|index\.d\.ts|binding\.js|binding\.d\.ts|bin\/cli\.js|lib\/[a-zA-Z]+\.js|librechat\/wiring-v[0-9.]+\.patch|librechat-custom-backend-auth\.linux-[a-z0-9]+-(gnu|musl)\.node)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['index.js', 'binding.js', 'package.json', 'LICENSE']));
  });

  test('LICENSE is the MIT licence package.json names', () => {
    expect(pkg.license).toBe('MIT');
    expect(fs.readFileSync(path.join(REPO, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4}/);
  });

  test('SHA256SUMS covers every tarball', () => {
    const sums = fs.readFileSync(distFile(path.join(DIST, 'SHA256SUMS')), 'utf8').trim().split('\n');
    const tarballs = fs.readdirSync(DIST).filter((f) => f.endsWith('.tgz')).sort();
    expect(sums.map((l) => l.split(/\s+/)[1]).sort()).toEqual(tarballs);
    for (const line of sums) {
      const [sum, file] = line.split(/\s+/);
      expect(crypto.createHash('sha256').update(fs.readFileSync(path.join(DIST, file))).digest('hex')).toBe(sum);
    }
  });
});

describe('#9.3 install from the tarballs with no Rust, as docs/install.md says', () => {
  let mock;
  beforeAll(async () => {
    mock = await startMockBackend();
  });
  afterAll(async () => mock && mock.close());

  const smokeEnv = (db) => ({
    LCBA_SMOKE: JSON.stringify({
      username: 'bob@example.com',
      password: 'bob-password-2',
      vars: {
        BACKEND_AUTH_URL: mock.urls.login,
        BACKEND_USER_INFO_URL: mock.urls.userinfo,
        BACKEND_REFRESH_URL: mock.urls.refresh,
        JWT_SECRET: 'release-test-jwt-secret',
        JWT_REFRESH_SECRET: 'release-test-jwt-refresh-secret',
        BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
        MONGO_URI: mongoUri(db),
        BACKEND_TIMEOUT_MS: '5000',
      },
    }),
  });

  function expectSmoke(stdout, platformFile) {
    const out = JSON.parse(stdout.trim().split('\n').pop());
    expect(out.error).toBeUndefined();
    expect(out).toMatchObject({ configInvalid: 'CONFIG_INVALID', configInvalidIsClass: true, loginEmail: 'bob@example.com', forgedVerifies: null, wrongPassword: 'INVALID_CREDENTIALS' });
    expect(out.verifiedId).toBe(out.userId);
    expect(out.binary).toMatch(new RegExp(`/node_modules/${NAME}-${platformFile.replace(/[.]/g, '\\.')}/${NAME}\\.${platformFile}\\.node$`));
    return out;
  }

  let librechat;
  beforeAll(async () => {
    // LibreChat's root folder with the release folder in it, and an api/ folder to install into.
    librechat = path.join(tmpDir('install'), 'LibreChat');
    fs.mkdirSync(path.join(librechat, 'api'), { recursive: true });
    fs.cpSync(DIST, path.join(librechat, 'custom-backend-auth'), { recursive: true });
    const env = { ...process.env, PATH: pathWithoutRust() };
    expect(spawnSync('bash', ['-c', 'command -v cargo || command -v rustc'], { env }).status).not.toBe(0);
    await runOk('bash', ['-euo', 'pipefail', '-c', docBlock('install-npm')], { cwd: librechat, env });
  });

  test('npm installs the main package and only the platform package of this machine', () => {
    const modules = fs.readdirSync(path.join(librechat, 'api', 'node_modules')).filter((n) => n.startsWith(NAME));
    expect(modules.sort()).toEqual([NAME, `${NAME}-linux-x64-gnu`]);
  });

  test('Node 20: require, CONFIG_INVALID, login against the backend, verify the token', async () => {
    const r = await runOk(process.execPath, [path.join(__dirname, 'support/installSmoke.js')], {
      cwd: path.join(librechat, 'api'), env: { ...process.env, PATH: pathWithoutRust(), ...smokeEnv('release-node20') },
    });
    expect(expectSmoke(r.stdout, 'linux-x64-gnu').runtime).toMatch(/^node 20\./);
  });

  test('Node 24.16.0 (LibreChat\'s pinned version): the same', async () => {
    const { NODE24 } = runtimes('node24');
    const r = await runOk(NODE24, [path.join(__dirname, 'support/installSmoke.js')], {
      cwd: path.join(librechat, 'api'), env: { ...process.env, PATH: pathWithoutRust(), ...smokeEnv('release-node24') },
    });
    expect(expectSmoke(r.stdout, 'linux-x64-gnu').runtime).toBe('node 24.16.0');
  });

  /**
   * docker/install.sh (what the Dockerfile runs) into an /app-shaped folder: LibreChat's node_modules,
   * the build context in /app/custom-backend-auth. busybox sh when present: Alpine's shell.
   * npm_config_cpu/libc: what npm detects on that machine.
   */
  async function dockerInstall(cpu, libc) {
    const app = path.join(tmpDir(`docker-${cpu}-${libc}`), 'app');
    fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    fs.mkdirSync(path.join(app, 'api'), { recursive: true });
    fs.cpSync(DIST, path.join(app, 'custom-backend-auth'), { recursive: true });
    const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
    await runOk(busybox || 'sh', [...(busybox ? ['sh'] : []), path.join(app, 'custom-backend-auth', 'install.sh'), app], {
      env: { ...process.env, PATH: pathWithoutRust(), npm_config_cpu: cpu, npm_config_libc: libc, LCBA_SKIP_WIRING: '1' },
    });
    return app;
  }

  describe('#9.4 Docker: the release folder and docker/Dockerfile', () => {
    test('the Dockerfile copies exactly what the release folder holds and runs install.sh', () => {
      const dockerfile = fs.readFileSync(distFile(path.join(DIST, 'Dockerfile')), 'utf8');
      const copy = /^COPY --chown=node:node (.+) \/app\/custom-backend-auth\/$/m.exec(dockerfile);
      expect(copy).not.toBeNull();
      for (const pattern of copy[1].split(/\s+/)) {
        const re = new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
        expect(fs.readdirSync(DIST).filter((f) => re.test(f)).length).toBeGreaterThan(0);
      }
      expect(dockerfile).toMatch(/^USER node$/m);
      expect(dockerfile).toMatch(/^RUN sh \/app\/custom-backend-auth\/install\.sh \/app$/m);
    });

    test('#22 install.sh wires the image\'s LibreChat with init, for that version (v0.8.7 here), .env left alone', async () => {
      const { stockOf, wiredOf, makeTree } = require('./support/librechatTrees');
      const app = makeTree(tmpDir('docker-wire'), 'v0.8.7', stockOf('v0.8.7'));
      fs.mkdirSync(path.join(app, 'node_modules'));
      fs.cpSync(DIST, path.join(app, 'custom-backend-auth'), { recursive: true });
      const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
      await runOk(busybox || 'sh', [...(busybox ? ['sh'] : []), path.join(app, 'custom-backend-auth', 'install.sh'), app], {
        env: { ...process.env, PATH: pathWithoutRust(), npm_config_cpu: 'x64', npm_config_libc: 'glibc' },
      });
      for (const [file, text] of Object.entries(wiredOf('v0.8.7'))) expect(fs.readFileSync(path.join(app, file), 'utf8')).toBe(text);
      expect(fs.existsSync(path.join(app, '.env'))).toBe(false);
    });

    test('docker-compose.override.yml: valid YAML that rebuilds LibreChat\'s `api` service from the release folder', () => {
      const override = yaml.load(fs.readFileSync(distFile(path.join(DIST, 'docker-compose.override.yml')), 'utf8'));
      expect(Object.keys(override)).toEqual(['services']);
      expect(Object.keys(override.services)).toEqual(['api']);
      expect(override.services.api.build.context).toBe('./custom-backend-auth');
      const from = /^ARG LIBRECHAT_IMAGE=(\S+)$/m.exec(fs.readFileSync(path.join(DIST, 'Dockerfile'), 'utf8'))[1];
      expect(override.services.api.build.args.LIBRECHAT_IMAGE).toBe(from);
    });
  });

  // install.sh (what the Dockerfile runs) into an /app-shaped folder, for Alpine on x64 and arm64, then
  // Bun's musl build under musl 1.2.5 (arm64: under qemu-aarch64). Bun's N-API, not Node's: there is no
  // musl build of Node on the npm registry. As root, /usr/bin/ldd is replaced by a musl one in a
  // private mount namespace, so the generated loader detects musl itself, as it does on Alpine.
  describe.each([
    ['x64', 'linux-x64-musl'],
    ['arm64', 'linux-arm64-musl'],
  ])('#9.4 Docker install step for Alpine %s, then a musl runtime', (cpu, platform) => {
    let app;
    let rt;
    beforeAll(async () => {
      const all = runtimes(...(cpu === 'x64' ? ['bun-musl', 'musl', 'musl-libs'] : ['arm64']));
      const k = cpu === 'x64' ? '' : '_ARM64';
      rt = { bun: all[`BUN_MUSL${k}`], loader: all[`MUSL_LOADER${k}`], libs: all[`MUSL_LIBS${k}`], qemu: all.QEMU_AARCH64 };
      app = await dockerInstall(cpu, 'musl');
    });

    function bunMusl(script, extraEnv, args = []) {
      const fakeLdd = path.join(tmpDir('ldd'), 'ldd');
      fs.writeFileSync(fakeLdd, '#!/bin/sh\necho "musl libc"\n', { mode: 0o755 });
      const runner = [...(rt.qemu ? [rt.qemu] : []), rt.loader, rt.bun].map((a) => `"${a}"`).join(' ');
      const cmd = `mount --bind "${fakeLdd}" /usr/bin/ldd && exec ${runner} "$@"`;
      return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', cmd, 'bun', script, ...args], {
        cwd: path.join(app, 'api'),
        env: { ...process.env, PATH: pathWithoutRust(), LD_LIBRARY_PATH: rt.libs, ...extraEnv },
      });
    }

    test('install.sh put only the musl package in, outside LibreChat\'s tree, and linked it where api/ finds it', () => {
      const installed = fs.readdirSync(path.join(app, 'custom-backend-auth', 'node_modules')).filter((n) => n.startsWith(NAME));
      expect(installed.sort()).toEqual([NAME, `${NAME}-${platform}`]);
      expect(fs.realpathSync(path.join(app, 'node_modules', NAME))).toBe(path.join(app, 'custom-backend-auth', 'node_modules', NAME));
      expect(fs.existsSync(path.join(app, 'node_modules', '.bin', NAME))).toBe(true);
    });

    test('Bun on musl: the loader picks the musl binary; CONFIG_INVALID, login, verify', async () => {
      const r = await bunMusl(path.join(__dirname, 'support/installSmoke.js'), smokeEnv(`release-musl-${cpu}`));
      if (r.status !== 0) throw new Error(`bun on musl exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
      expect(expectSmoke(r.stdout, platform).runtime).toMatch(/^bun /);
    });

    test('negative control: the musl runtime refuses the glibc binary and loads the musl one', async () => {
      const probe = path.join(tmpDir('probe'), 'probe.js');
      fs.writeFileSync(probe, "try { require(process.argv[2]); console.log('loaded'); } catch (e) { console.log('refused'); }\n");
      const load = async (file) => {
        const r = await bunMusl(probe, {}, [file]);
        if (r.status !== 0) throw new Error(`bun on musl exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
        return r.stdout.trim();
      };
      expect(await load(packedBinary(platform.replace('musl', 'gnu')))).toBe('refused');
      expect(await load(packedBinary(platform))).toBe('loaded');
    });
  });

  test('arm64 with glibc under qemu-aarch64 (Node 20 for arm64): install.sh, require, CONFIG_INVALID, login, verify', async () => {
    const rt = runtimes('arm64');
    const app = await dockerInstall('arm64', 'glibc');
    const installed = fs.readdirSync(path.join(app, 'custom-backend-auth', 'node_modules')).filter((n) => n.startsWith(NAME));
    expect(installed.sort()).toEqual([NAME, `${NAME}-linux-arm64-gnu`]);
    const r = await runOk(rt.QEMU_AARCH64, ['-L', rt.ARM64_SYSROOT, rt.NODE20_ARM64, path.join(__dirname, 'support/installSmoke.js')], {
      cwd: path.join(app, 'api'), env: { ...process.env, PATH: pathWithoutRust(), ...smokeEnv('release-arm64') },
    });
    expect(expectSmoke(r.stdout, 'linux-arm64-gnu').runtime).toMatch(/^node 20\./);
  });
});
