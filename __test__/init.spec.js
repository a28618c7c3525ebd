'use strict';

// `librechat-custom-backend-auth init` (bin/cli.js, lib/wiring.js) run as a child process, as an
// operator runs it, on LibreChat-shaped folders made from the shipped patches
// (support/librechatTrees.js): init must turn each hunk's old side into exactly its new side.
// Variants move, drop, change and repeat anchors as a customised LibreChat would. Every release from v0.7.9 to main was wired from
// LibreChat's own files with scripts/wiring-patches.js (docs/install.md, "Wiring").

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const wiring = require('../lib/wiring');

const { BETWEEN, FAMILIES, stockOf, wiredOf, makeTree } = require('./support/librechatTrees');

const CLI = path.join(__dirname, '..', 'bin', 'cli.js');

let scratch;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-init-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const tree = (version, files) => makeTree(scratch, version, files);

function hashOf(dir) {
  const h = crypto.createHash('sha256');
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(`${path.relative(dir, p)}\0`).update(fs.readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** The CLI as a child process; doctor after init only when `doctor` is asked for (it is tested below). */
function cli(args, { cwd = scratch, doctor = false, env = {} } = {}) {
  const all = doctor || args[0] !== 'init' ? args : [...args, '--no-doctor'];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...all], { cwd, env: { PATH: process.env.PATH, ...env }, timeout: 25000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const read = (dir, file) => fs.readFileSync(path.join(dir, file), 'utf8');

describe('#22.1 init wires LibreChat by anchors', () => {
  test.each(Object.keys(FAMILIES))('%s: init makes exactly what the shipped patch adds; a second run changes nothing; --revert gives every file back byte for byte', async (family) => {
    const dir = tree(FAMILIES[family].version, stockOf(family));
    const stockHash = hashOf(dir);
    const first = await cli(['init', '--no-env', '--dir', dir]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`LibreChat ${FAMILIES[family].version} in ${dir}`);
    for (const [file, text] of Object.entries(wiredOf(family))) expect(read(dir, file)).toBe(text);
    const wiredHash = hashOf(dir);

    const second = await cli(['init', '--no-env', '--dir', dir]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Already wired: nothing changed.');
    expect(hashOf(dir)).toBe(wiredHash);

    const back = await cli(['init', '--no-env', '--revert', '--dir', dir]);
    expect(back.code).toBe(0);
    expect(hashOf(dir)).toBe(stockHash);
    expect((await cli(['uninstall', '--no-env', '--dir', dir])).stdout).toContain('Not wired: nothing to revert.');
  });

  test.each(['v0.7.9', 'main'])('#27 %s wired by the package before #27 (no 2FA route): doctor says so, init brings it up to date, --revert takes it back', async (family) => {
    const auth = 'api/server/routes/auth.js';
    // The wiring of #26 and before: the same, without the second factor's two lines.
    const earlier = { ...wiredOf(family) };
    earlier[auth] = earlier[auth].replace('  customTwoFactorController,\n', '').replace("  router.post('/2fa/verify-temp', customTwoFactorController);\n", '');
    expect(earlier[auth]).not.toBe(wiredOf(family)[auth]);
    const dir = tree(FAMILIES[family].version, earlier);
    expect(wiring.wiringState(dir).state).toBe('earlier');
    const up = await cli(['init', '--no-env', '--dir', dir]);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`wired   ${auth} (2 places)`);
    for (const [file, text] of Object.entries(wiredOf(family))) expect(read(dir, file)).toBe(text);
    // From the earlier form straight back to LibreChat's.
    const again = tree(FAMILIES[family].version, earlier);
    expect((await cli(['init', '--no-env', '--revert', '--dir', again])).code).toBe(0);
    for (const [file, text] of Object.entries(stockOf(family))) expect(read(again, file)).toBe(text);
  });

  test('#22.1 run in LibreChat\'s api/ folder it finds the root; --dry-run prints the diff and writes nothing', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    const before = hashOf(dir);
    const dry = await cli(['init', '--no-env', '--dry-run'], { cwd: path.join(dir, 'api') });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('+++ b/api/server/routes/auth.js');
    expect(dry.stdout).toContain("+  passport.use(useCustomAuth ? customJwtStrategy() : jwtLogin()); // both are named 'jwt'");
    expect(dry.stdout).toContain('-  passport.use(jwtLogin());');
    expect(dry.stdout).toMatch(/Dry run: 4 file\(s\) would change; nothing was written\./);
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.1 the lines each version can run: no admin-panel wiring before v0.8.3, no metrics wiring before v0.8.6', async () => {
    // v0.8.1's files: main's, without the admin panel and LibreChat's metrics router.
    const files = stockOf('main');
    delete files['api/server/routes/admin/auth.js'];
    files['api/server/index.js'] = files['api/server/index.js'].replace("  app.use('/metrics', metricsRouter);\n", '');
    const dir = tree('v0.8.1', files);
    const r = await cli(['init', '--no-env', '--dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wired +api\/server\/index\.js \(3 places\)/);
    expect(fs.existsSync(path.join(dir, 'api/server/routes/admin/auth.js'))).toBe(false);
    expect(read(dir, 'api/server/index.js')).not.toContain('appendCustomBackendMetrics()');

    // v0.8.6 without LibreChat's metrics router: an anchor that version has is missing.
    const dir86 = tree('v0.8.6', files);
    const r86 = await cli(['init', '--dir', dir86]);
    expect(r86.code).toBe(1);
    expect(r86.stdout).toContain("api/server/index.js: the metrics, before app.use('/metrics', metricsRouter);: anchor not found");
  });

  test('#22.1 anchors moved elsewhere in their file are still found (a fork that reordered its code)', async () => {
    const files = stockOf('main');
    const file = 'api/server/routes/auth.js';
    const parts = files[file].split(`${BETWEEN}\n`);
    files[file] = [parts[0], ...parts.slice(1).reverse()].join('// (moved)\n');
    const dir = tree('v0.8.8-rc1', files);
    const r = await cli(['init', '--no-env', '--dir', dir]);
    expect(r.code).toBe(0);
    expect(read(dir, file)).toContain("  useCustomAuth ? customBackendLoginController : loginController,\n");
    expect((await cli(['init', '--no-env', '--revert', '--dir', dir])).code).toBe(0);
    expect(read(dir, file)).toBe(files[file]);
  });

  test.each([
    ['missing', (t) => t.replace("  passport.use(jwtLogin());\n", "  passport.use(ourOwnJwt());\n"), 'anchor not found'],
    ['changed', (t) => t.replace("express.json({ limit: '3mb' })", "express.json({ limit: '20mb' })").replace('  app.use(express.json(', '  app.use(bodyParser.json('), 'anchor not found'],
    ['duplicated', (t) => t.replace("  passport.use(jwtLogin());\n", "  passport.use(jwtLogin());\n  passport.use(jwtLogin());\n"), 'anchor found 2 times (stock form)'],
  ])('#22.1 an anchor %s (a customised LibreChat): no file changes; the file, the anchor and the lines to add by hand are named', async (_kind, edit, reason) => {
    const files = stockOf('main');
    files['api/server/index.js'] = edit(files['api/server/index.js']);
    const dir = tree('v0.8.8-rc1', files);
    const before = hashOf(dir);
    const r = await cli(['init', '--no-env', '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Not wired: no file was changed.');
    expect(r.stdout).toContain(`api/server/index.js: `);
    expect(r.stdout).toContain(reason);
    expect(r.stdout).toContain('It looks for (the whole line, any indent):');
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.1 the hand instructions are the lines init would write', async () => {
    const files = stockOf('main');
    files['api/server/index.js'] = files['api/server/index.js'].replace("  passport.use(jwtLogin());\n", "  passport.use(ourOwnJwt());\n");
    const dir = tree('v0.8.8-rc1', files);
    const r = await cli(['init', '--no-env', '--dir', dir]);
    const after = r.stdout.slice(r.stdout.indexOf('the strategies'));
    expect(after).toContain('      passport.use(jwtLogin());');
    expect(after).toContain("      passport.use(useCustomAuth ? customJwtStrategy() : jwtLogin()); // both are named 'jwt'");
    expect(after).toContain("        passport.use(customBackendStrategy()); // 'custom-backend'");
  });

  test('#22.1 a file with Windows line ends is wired and reverted in its own line ends', async () => {
    const files = Object.fromEntries(Object.entries(stockOf('v0.7.9')).map(([f, t]) => [f, t.replace(/\n/g, '\r\n')]));
    const dir = tree('v0.7.9', files);
    const before = hashOf(dir);
    expect((await cli(['init', '--no-env', '--dir', dir])).code).toBe(0);
    const wired = read(dir, 'api/server/routes/auth.js');
    expect(wired).toContain('customLocalAccountsClosed);\r\n');
    expect(wired.replace(/\r\n/g, '')).not.toContain('\n');
    expect((await cli(['init', '--no-env', '--revert', '--dir', dir])).code).toBe(0);
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.1 a file wired by hand in part: init completes it; --revert takes back what it finds', async () => {
    const stock = stockOf('main');
    const wired = wiredOf('main');
    const dir = tree('v0.8.8-rc1', { ...stock, 'api/server/routes/config.js': wired['api/server/routes/config.js'] });
    const r = await cli(['init', '--no-env', '--dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('api/server/routes/config.js');
    for (const [file, text] of Object.entries(wired)) expect(read(dir, file)).toBe(text);
  });

  test('#22.1 not a LibreChat folder: a usage error, nothing written', async () => {
    const r = await cli(['init', '--no-env', '--dir', scratch]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a LibreChat folder (no api/server/index.js)');
  });

  test('#22.1 the wiring state, as doctor reads it', () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    expect(wiring.wiringState(dir).state).toBe('stock');
    wiring.change(dir, 'wired');
    expect(wiring.wiringState(dir).state).toBe('wired');
    fs.writeFileSync(path.join(dir, 'api/server/routes/config.js'), stockOf('main')['api/server/routes/config.js']);
    expect(wiring.wiringState(dir)).toMatchObject({ state: 'partial', notWired: ['api/server/routes/config.js'] });
  });
});

describe('#22.2 init writes the package\'s block in LibreChat\'s .env', () => {
  const URLS = ['--auth-url', 'https://id.example.com/api/auth/login', '--userinfo-url', 'https://id.example.com/api/auth/userinfo',
    '--refresh-url', 'https://id.example.com/api/auth/refresh'];
  const envOf = (dir) => read(dir, '.env');
  const keyOf = (text, name) => new RegExp(`^${name}=(.*)$`, 'm').exec(text)?.[1];
  /** Everything a run printed, and the arguments it was given: no generated key may be in either. */
  const expectSecretsHidden = (r, text, args) => {
    for (const name of ['BACKEND_TOKEN_ENCRYPTION_KEY', 'BACKEND_EVENTS_SECRET']) {
      const key = keyOf(text, name);
      if (!key) continue;
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(`${r.stdout}${r.stderr}`).not.toContain(key);
      expect(`${r.stdout}${r.stderr}`).not.toContain(key.slice(0, 12));
      expect(args.join(' ')).not.toContain(key);
    }
  };

  test('#22.2 flags: the switch, the URLs and a generated key in a marked block; lines outside untouched; a second run keeps the key; --revert gives the .env back byte for byte', async () => {
    const original = '# LibreChat\nMONGO_URI=mongodb://127.0.0.1:27017/LibreChat\nJWT_SECRET=abc\n\nALLOW_REGISTRATION=true\n';
    const dir = tree('v0.8.7', { ...stockOf('v0.8.7'), '.env': original });
    const args = ['init', '--dir', dir, ...URLS, '--events'];
    const r = await cli(args);
    expect(r.code).toBe(0);
    const text = envOf(dir);
    expect(text.startsWith(original)).toBe(true);
    expect(text.slice(original.length).split('\n').slice(1, -2).map((l) => l.replace(/=.*/, ''))).toEqual([
      'USE_CUSTOM_BACKEND_AUTH', 'BACKEND_AUTH_URL', 'BACKEND_USER_INFO_URL', 'BACKEND_REFRESH_URL', 'BACKEND_TOKEN_ENCRYPTION_KEY', 'BACKEND_EVENTS_SECRET',
    ]);
    expect(keyOf(text, 'BACKEND_AUTH_URL')).toBe('https://id.example.com/api/auth/login');
    expect(keyOf(text, 'USE_CUSTOM_BACKEND_AUTH')).toBe('true');
    expect(keyOf(text, 'BACKEND_TOKEN_ENCRYPTION_KEY')).not.toBe(keyOf(text, 'BACKEND_EVENTS_SECRET'));
    expect(r.stdout).toContain('BACKEND_TOKEN_ENCRYPTION_KEY: added (generated from the system\'s random source; not shown: read it in the file)');
    expectSecretsHidden(r, text, args);

    const again = await cli(['init', '--dir', dir]); // no flags: the values are in .env
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already wired: nothing changed.');
    expect(envOf(dir)).toBe(text); // the key is kept: tokens stored with it stay readable

    const back = await cli(['init', '--revert', '--dir', dir]);
    expect(back.code).toBe(0);
    expect(envOf(dir)).toBe(original);
  });

  test('#22.2 a setting that would keep the package off or stop its logins is set aside, shown, and restored by --revert; yours stay', async () => {
    const original = 'USE_CUSTOM_BACKEND_AUTH=false\r\nALLOW_EMAIL_LOGIN=false\r\nBACKEND_REFRESH_URL=https://sso.example.org/renew\r\n';
    const dir = tree('v0.8.8-rc1', { ...stockOf('main'), '.env': original });
    const r = await cli(['init', '--dir', dir, '--backend', 'https://id.example.com/']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('USE_CUSTOM_BACKEND_AUTH: set aside, your line (false) is commented out, init --revert restores it; true in the block');
    expect(r.stdout).toContain('ALLOW_EMAIL_LOGIN: set aside');
    expect(r.stdout).toContain('BACKEND_REFRESH_URL: kept, set outside the block (yours)');
    const text = envOf(dir);
    expect(text).toContain('#librechat-custom-backend-auth set aside: ALLOW_EMAIL_LOGIN=false\r\n');
    expect(text).toContain('BACKEND_AUTH_URL=https://id.example.com/api/auth/login\r\n');
    expect(text).not.toMatch(/BACKEND_REFRESH_URL=https:\/\/id/);
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    expect((await cli(['uninstall', '--dir', dir])).code).toBe(0);
    expect(envOf(dir)).toBe(original);
  });

  test('#22.2 no terminal and a URL missing: nothing written, and what is missing is named', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    const before = hashOf(dir);
    const r = await cli(['init', '--dir', dir, '--auth-url', 'https://id.example.com/login']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Not wired: no file was changed.');
    expect(r.stdout).toContain('BACKEND_USER_INFO_URL (--userinfo-url, or --backend <origin>)');
    expect(r.stdout).toContain('(No terminal to ask on: give them as flags or in the environment.)');
    expect(hashOf(dir)).toBe(before);
    const bad = await cli(['init', '--dir', dir, '--backend', 'ftp://id.example.com']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('BACKEND_AUTH_URL: "ftp://id.example.com/api/auth/login" is not an http(s) URL');
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.2 values from the environment, a created .env removed again by --revert', async () => {
    const dir = tree('v0.7.9', stockOf('v0.7.9'));
    const before = hashOf(dir);
    const env = { BACKEND_AUTH_URL: 'https://a.example/l', BACKEND_USER_INFO_URL: 'https://a.example/u', BACKEND_REFRESH_URL: 'https://a.example/r' };
    const r = await cli(['init', '--dir', dir, '--username-login'], { env });
    expect(r.code).toBe(0);
    expect(keyOf(envOf(dir), 'BACKEND_USER_INFO_URL')).toBe('https://a.example/u');
    expect(keyOf(envOf(dir), 'BACKEND_LOGIN_USES_USERNAME')).toBe('true');
    expect(fs.statSync(path.join(dir, '.env')).mode & 0o077).toBe(0); // a new .env: the owner's only
    expect((await cli(['init', '--revert', '--dir', dir])).code).toBe(0);
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.2 --dry-run shows the block with the generated key masked and writes nothing', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    const before = hashOf(dir);
    const r = await cli(['init', '--dry-run', '--dir', dir, ...URLS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  BACKEND_AUTH_URL=https://id.example.com/api/auth/login');
    expect(r.stdout).toMatch(/ {2}BACKEND_TOKEN_ENCRYPTION_KEY=<64 characters, generated, not shown>/);
    expect(r.stdout).toMatch(/Dry run: 5 file\(s\) would change; nothing was written\./);
    expect(hashOf(dir)).toBe(before);
    // What an operator put into the block (a secret, a URL with credentials) is not printed either.
    expect((await cli(['init', '--no-doctor', '--dir', dir, ...URLS])).code).toBe(0);
    fs.writeFileSync(path.join(dir, '.env'), envOf(dir).replace('# <<< ', 'BACKEND_INTROSPECTION_CLIENT_SECRET=s3cr3t-of-the-client\n# <<< '));
    const again = await cli(['init', '--dry-run', '--dir', dir, '--refresh-url', 'https://svc:p4ss@id.example.com/r']);
    expect(again.stdout).toContain('  BACKEND_INTROSPECTION_CLIENT_SECRET=<20 characters, not shown>');
    expect(again.stdout).toContain('  BACKEND_REFRESH_URL=https://…@id.example.com/r');
    expect(again.stdout).not.toMatch(/s3cr3t|p4ss/);
  });

  test('#22.2 a .env that is a link stays a link: its target gets the block and loses it again', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    const shared = path.join(dir, '..', `shared-${path.basename(dir)}.env`);
    fs.writeFileSync(shared, 'JWT_SECRET=abc\n');
    fs.symlinkSync(shared, path.join(dir, '.env'));
    expect((await cli(['init', '--no-doctor', '--dir', dir, ...URLS])).code).toBe(0);
    expect(fs.lstatSync(path.join(dir, '.env')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(shared, 'utf8')).toContain('BACKEND_AUTH_URL=https://id.example.com/api/auth/login');
    expect((await cli(['init', '--revert', '--dir', dir])).code).toBe(0);
    expect(fs.lstatSync(path.join(dir, '.env')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(shared, 'utf8')).toBe('JWT_SECRET=abc\n');
  });

  test('#22.2 a block whose end line was deleted by hand: nothing written, said so', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    expect((await cli(['init', '--no-doctor', '--dir', dir, ...URLS])).code).toBe(0);
    fs.writeFileSync(path.join(dir, '.env'), envOf(dir).replace('# <<< librechat-custom-backend-auth\n', ''));
    const before = hashOf(dir);
    for (const args of [['init', '--dir', dir], ['init', '--revert', '--dir', dir]]) {
      const r = await cli(args);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('has the package\'s start line but not its end line (# <<< librechat-custom-backend-auth): mend the block by hand.');
    }
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.2 a flag replaces a value of the block; others are kept', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    expect((await cli(['init', '--dir', dir, ...URLS])).code).toBe(0);
    const key = keyOf(envOf(dir), 'BACKEND_TOKEN_ENCRYPTION_KEY');
    const r = await cli(['init', '--dir', dir, '--refresh-url', 'https://id.example.com/v2/refresh']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('BACKEND_REFRESH_URL: replaced');
    expect(keyOf(envOf(dir), 'BACKEND_REFRESH_URL')).toBe('https://id.example.com/v2/refresh');
    expect(keyOf(envOf(dir), 'BACKEND_TOKEN_ENCRYPTION_KEY')).toBe(key);
  });

  // A terminal (util-linux `script` gives the CLI a pseudo-terminal): the missing URLs are asked,
  // the user-info and refresh URLs offered next to the login URL's.
  const hasScript = fs.existsSync('/usr/bin/script');
  (hasScript ? test : test.skip)('#22.2 at a terminal, the missing URLs are asked for, with defaults beside the login URL', async () => {
    const dir = tree('v0.8.8-rc1', stockOf('main'));
    const typed = ['https://id.example.com/auth/login', '', 'https://id.example.com/auth/renew'];
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} init --no-doctor --dir ${JSON.stringify(dir)}`;
    const child = require('child_process').spawn('script', ['-qec', cmd, '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'dumb' } });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    for (const [k, answer] of typed.entries()) {
      const question = ['Backend login URL', 'Backend user-info URL', 'Backend refresh URL'][k];
      for (let i = 0; i < 400 && !output.includes(question); i += 1) await new Promise((res) => setTimeout(res, 25));
      child.stdin.write(`${answer}\r`);
    }
    const code = await new Promise((res) => child.on('close', res));
    expect(code).toBe(0);
    expect(output).toContain('Backend user-info URL (GET with the access token) [https://id.example.com/auth/userinfo]');
    const text = envOf(dir);
    expect(keyOf(text, 'BACKEND_AUTH_URL')).toBe('https://id.example.com/auth/login');
    expect(keyOf(text, 'BACKEND_USER_INFO_URL')).toBe('https://id.example.com/auth/userinfo');
    expect(keyOf(text, 'BACKEND_REFRESH_URL')).toBe('https://id.example.com/auth/renew');
    expect(output).not.toContain(keyOf(text, 'BACKEND_TOKEN_ENCRYPTION_KEY'));
  });

  test('#22.3 init ends with doctor on what it wrote: a backend that is down is a problem before any restart', async () => {
    const dir = tree('v0.8.8-rc1', { ...stockOf('main'), '.env': 'JWT_SECRET=a-secret-of-some-length-0123456789\nJWT_REFRESH_SECRET=another-secret-0123456789\nMONGO_URI=mongodb://127.0.0.1:9/LibreChat\nMONGO_TIMEOUT_MS=500\nBACKEND_TIMEOUT_MS=500\nBACKEND_ALLOW_INSECURE_HTTP=true\n' });
    const r = await cli(['init', '--dir', dir, '--backend', 'http://127.0.0.1:9'], { doctor: true });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/wired +api\/server\/index\.js/);
    expect(r.stdout).toMatch(/PROBLEM +BACKEND_AUTH_URL: no answer from 127\.0\.0\.1:9/);
    expect(r.stdout).toMatch(/OK +wiring: LibreChat v0\.8\.8-rc1 in .* is wired/);
    expect(r.stdout).toContain('init is done, but doctor found the problems above: mend them before LibreChat restarts.');
    expectSecretsHidden(r, envOf(dir), []);
    expect(r.stdout).not.toContain('a-secret-of-some-length');
  });
});

describe('#22.4 init --docker: LibreChat\'s compose setup with the image of its version', () => {
  const DOCKER = path.join(__dirname, '..', 'docker');
  const withRelease = (version, family) => {
    const dir = tree(version, stockOf(family));
    fs.mkdirSync(path.join(dir, 'custom-backend-auth'));
    for (const f of ['Dockerfile', 'install.sh', 'docker-compose.override.yml']) fs.copyFileSync(path.join(DOCKER, f), path.join(dir, 'custom-backend-auth', f));
    return dir;
  };

  test.each([
    ['v0.8.7', 'v0.8.7', 'ghcr.io/danny-avila/librechat:v0.8.7'],
    ['v0.7.9', 'v0.7.9', 'ghcr.io/danny-avila/librechat:v0.7.9'],
  ])('#22.4 %s: the override builds %s\'s image, the .env block is written, the host\'s files are left to the image build; --revert gives the tree back', async (version, family, image) => {
    const dir = withRelease(version, family);
    const before = hashOf(dir);
    const r = await cli(['init', '--docker', '--dir', dir, '--backend', 'https://id.example.com']);
    expect(r.code).toBe(0);
    const override = read(dir, 'docker-compose.override.yml');
    expect(override).toContain(`LIBRECHAT_IMAGE: ${image}`);
    expect(override.replace(`LIBRECHAT_IMAGE: ${image}`, '')).toBe(fs.readFileSync(path.join(DOCKER, 'docker-compose.override.yml'), 'utf8').replace(/LIBRECHAT_IMAGE: .*/, ''));
    expect(read(dir, '.env')).toContain('BACKEND_AUTH_URL=https://id.example.com/api/auth/login');
    for (const [file, text] of Object.entries(stockOf(family))) expect(read(dir, file)).toBe(text);
    expect(r.stdout).toContain('docker compose build api && docker compose up -d');
    expect((await cli(['init', '--docker', '--dir', dir])).stdout).toContain('Already wired: nothing changed.');
    expect((await cli(['init', '--docker', '--revert', '--dir', dir])).code).toBe(0);
    expect(hashOf(dir)).toBe(before);
  });

  test('#22.4 --image chooses another; an override that is not the package\'s is never replaced; no release folder: said', async () => {
    const dir = withRelease('v0.8.8-rc1', 'main');
    expect((await cli(['init', '--docker', '--no-env', '--dir', dir, '--image', 'registry.librechat.ai/danny-avila/librechat-dev:latest'])).code).toBe(0);
    expect(read(dir, 'docker-compose.override.yml')).toContain('LIBRECHAT_IMAGE: registry.librechat.ai/danny-avila/librechat-dev:latest');

    const own = withRelease('v0.8.7', 'v0.8.7');
    fs.writeFileSync(path.join(own, 'docker-compose.override.yml'), 'services:\n  api:\n    ports: ["3081:3080"]\n');
    const before = hashOf(own);
    const r = await cli(['init', '--docker', '--dir', own, '--backend', 'https://id.example.com']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('is not the package\'s (its first line differs): init does not replace it');
    expect(hashOf(own)).toBe(before);

    const bare = tree('v0.8.7', stockOf('v0.8.7'));
    const none = await cli(['init', '--docker', '--dir', bare, '--backend', 'https://id.example.com']);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('holds no release folder');
  });
});
