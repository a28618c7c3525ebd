#!/usr/bin/env node
'use strict';

/**
 * The real-LibreChat check (issue 10, item 9): installs this package into a LibreChat checkout,
 * wires it with the package's `init` (lib/wiring.js), starts LibreChat's API against the test database and the mock
 * backend, and drives it over HTTP as a browser would. One line per step, PASS/FAIL; exit 1 on any
 * FAIL. Not part of `npm test` (it needs a LibreChat checkout).
 *
 *   LIBRECHAT_DIR=/work/librechat npm run e2e:librechat
 *   (unset: prints "e2e:librechat skipped: LIBRECHAT_DIR is unset" and exits 0)
 *
 * What it does, in order:
 *  1. The package: the release tarballs in dist/ when `npm run pack:release` made them (main +
 *     linux-x64-gnu) after the developer build's binary, otherwise `npm pack` of this folder, i.e. the developer build with the
 *     x64-gnu binary (`npm run build`) inside. Installed with npm into
 *     $LIBRECHAT_DIR/custom-backend-auth-e2e/ (LibreChat's package.json and lock stay untouched) and
 *     linked into $LIBRECHAT_DIR/node_modules/, as docker/install.sh does.
 *  2. The wiring: `init` in $LIBRECHAT_DIR (by anchors, for whatever version the checkout is; a
 *     wiring left by an interrupted run is taken back first). Reverted at the end (`init --revert`),
 *     and every wired file is checked to be back byte for byte.
 *  3. $LIBRECHAT_DIR/.env (LibreChat reads it from its root, where `npm run backend` runs): the test
 *     database (scripts/test-db.js; or E2E_MONGO_URI), the mock backend (__test__/support/mockBackend.js,
 *     a real HTTP server), fresh random secrets, LOGIN_MAX=1000 (LibreChat's login limiter allows 7
 *     per 5 min by default), BAN_VIOLATIONS=false. A .env already there is moved aside and restored.
 *  4. `node api/server/index.js` with NODE_ENV=production (as `npm run backend`), cwd $LIBRECHAT_DIR,
 *     on Node 24.16.0 (LibreChat's .nvmrc; scripts/runtimes.sh, or LIBRECHAT_NODE); if it does not come
 *     up there, on this Node (20), and says so. Its logs are copied to E2E_LOG_DIR (default
 *     $TMPDIR/librechat-e2e-logs) at the end.
 *     LibreChat's balance is on (a librechat.yaml there, CONFIG_PATH), so login writes a start balance.
 *  5. HTTP with a browser User-Agent (LibreChat's uaParser refuses others on /api/agents, /api/files,
 *     /api/assistants, and logs a violation), in three starts of LibreChat:
 *     - USE_CUSTOM_BACKEND_AUTH=false (log: api.log): LibreChat's own config, a local account
 *       registered (the first user: ADMIN), its login and admin-panel login; a backend user refused;
 *     - USE_CUSTOM_BACKEND_AUTH=true (log: api.switch-on.log): config (user-name login), login with a
 *       user name, the local account refused, API routes, the admin panel (backend admin, non-admin,
 *       local ADMIN), refresh, an outage (a TCP relay in front of the mock backend is closed, so
 *       connections are refused while the backend keeps its sessions; then reopened), logout;
 *     - LOGIN_MAX=2 (log: api.limiter.log): LibreChat's login limiter.
 *
 *  6. The checkout is left as it was found: the wiring reverted, the package's entry in node_modules
 *     put back (an installation of the operator's own is moved aside and returned), the prefix folder,
 *     the placeholder page and the run-time files LibreChat wrote where there were none removed; a
 *     last step compares a hash of every file (outside node_modules and .git) before and after.
 *
 * LibreChat checkout, once (what the run in docs/install.md, "Checked against real LibreChat" took):
 *   git -C <LibreChat mirror> worktree add /work/librechat main      (or git clone)
 *   cd /work/librechat
 *   - api/package.json and packages/api/package.json pin xlsx to a tarball outside the npm registry
 *     (cdn.sheetjs.com): set "xlsx": "^0.18.5" in both and in package-lock.json's packages."packages/api"
 *     devDependencies, and delete the lock entry "node_modules/xlsx";
 *   - npm install --no-audit --no-fund --ignore-scripts   (with Node 24.16.0 first on PATH); a locked
 *     version the registry no longer has answers 404: delete that lock entry (the one whose
 *     "resolved" is the 404 URL) and run npm install again, until it succeeds (at 0ab3414c: only
 *     node_modules/@librechat/agents 3.6.6, re-resolved by npm to 3.9.2 within ^3.6.6; 2 runs, 4 min);
 *   - npm run build:data-provider && npm run build:data-schemas && npm run build:api
 *     (the API requires the built librechat-data-provider, @librechat/data-schemas, @librechat/api);
 *   - mkdir -p client/dist && echo '<!doctype html><title>LibreChat</title>' > client/dist/index.html
 *     (the API serves client/dist/index.html; a placeholder is enough without the web client).
 *
 * Environment: LIBRECHAT_DIR (required), LIBRECHAT_NODE (the node binary for LibreChat),
 * E2E_MONGO_URI (a MongoDB to use instead of the test database), E2E_ENV (more settings for LibreChat's .env,
 * space-separated NAME=value), E2E_KEEP_WIRING=1 (leave the wiring
 * in place), E2E_MARKDOWN=1 (print the results as the table of docs/install.md, "Checked against real LibreChat"), E2E_START_TIMEOUT_MS (default 240000: LibreChat's start on 2 busy cores is slow).
 */

const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const crypto = require('crypto');
const { spawn, spawnSync, execFileSync } = require('child_process');
const { startTestDb, freePort } = require('./test-db');

const REPO = path.resolve(__dirname, '..');
const NAME = 'librechat-custom-backend-auth';
const wiringEngine = require('../lib/wiring');
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const START_TIMEOUT_MS = Number(process.env.E2E_START_TIMEOUT_MS) || 240_000;
const USER = { username: 'Alice', password: 'alice-password-1', email: 'alice@example.com' };
// A local LibreChat account, registered while the switch is off (the mock backend does not know it).
const LOCAL = { email: 'local.admin@example.net', password: 'local-password-1' };

const results = [];
function step(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  (${detail})` : ''}`);
  return ok;
}
const info = (msg) => console.log(`      ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  return { code: r.status, out: `${r.stdout || ''}${r.stderr || ''}`.trim(), error: r.error };
}

/* ------------------------------------------------------------------ the package */

function packageTarballs(tmp) {
  const version = require(path.join(REPO, 'package.json')).version;
  const dist = path.join(REPO, 'dist');
  const main = path.join(dist, `${NAME}-${version}.tgz`);
  const platform = path.join(dist, `${NAME}-linux-x64-gnu-${version}.tgz`);
  const binary = path.join(REPO, `${NAME}.linux-x64-gnu.node`);
  // A release older than the developer build would test yesterday's package: the build wins then.
  const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
  if (fs.existsSync(main) && fs.existsSync(platform) && Math.min(mtime(main), mtime(platform)) >= mtime(binary)) {
    return { files: [main, platform], what: `release tarballs from dist/ (${path.basename(main)} + ${path.basename(platform)})` };
  }
  if (!fs.existsSync(binary)) {
    throw new Error(`no dist/ release and no developer build (${path.basename(binary)}): run npm run build`);
  }
  const r = sh('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: REPO });
  if (r.code !== 0) throw new Error(`npm pack failed: ${r.out.slice(-500)}`);
  const file = path.join(tmp, r.out.split('\n').pop().trim());
  const built = fs.statSync(binary).mtime.toISOString();
  return { files: [file], what: `npm pack of ${REPO} (developer build, ${path.basename(binary)} of ${built} inside)` };
}

function installPackage(lcDir, tarballs, runtimeBin) {
  const prefix = path.join(lcDir, 'custom-backend-auth-e2e');
  fs.rmSync(path.join(prefix, 'node_modules'), { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  const deps = {};
  const overrides = {};
  for (const f of tarballs) {
    const dest = path.join(prefix, path.basename(f));
    fs.copyFileSync(f, dest);
    const pkgName = path.basename(f).replace(/-\d+\.\d+\.\d+.*\.tgz$/, '');
    if (pkgName === NAME) deps[NAME] = `file:./${path.basename(f)}`;
    else overrides[pkgName] = `file:./${path.basename(f)}`;
  }
  fs.writeFileSync(path.join(prefix, 'package.json'),
    JSON.stringify({ private: true, dependencies: deps, overrides }, null, 2));
  fs.rmSync(path.join(prefix, 'package-lock.json'), { force: true });
  // --omit=peer: passport is LibreChat's own (the package resolves it from the application).
  const r = sh('npm', ['install', '--prefix', prefix, '--omit=dev', '--omit=peer', '--no-audit', '--no-fund',
    '--loglevel=error'], { cwd: prefix, env: { ...process.env, PATH: `${path.dirname(runtimeBin)}:${process.env.PATH}` } });
  if (r.code !== 0) throw new Error(`npm install failed: ${r.out.slice(-800)}`);
  const link = path.join(lcDir, 'node_modules', NAME);
  const aside = path.join(lcDir, 'node_modules', `.${NAME}.before-e2e`);
  // The operator's own installation of the package is put back at the end (restorePackage).
  if (!fs.existsSync(aside) && fs.lstatSync(link, { throwIfNoEntry: false })) fs.renameSync(link, aside);
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(path.join(prefix, 'node_modules', NAME), link);
  return prefix;
}

/** Gives back node_modules' entry of the package as it was, and removes the e2e prefix folder. */
function restorePackage(lcDir, prefix, logsTo) {
  const link = path.join(lcDir, 'node_modules', NAME);
  const aside = path.join(lcDir, 'node_modules', `.${NAME}.before-e2e`);
  fs.rmSync(link, { recursive: true, force: true });
  if (fs.lstatSync(aside, { throwIfNoEntry: false })) fs.renameSync(aside, link);
  fs.mkdirSync(logsTo, { recursive: true });
  for (const f of fs.existsSync(prefix) ? fs.readdirSync(prefix) : []) {
    if (f.endsWith('.log')) fs.copyFileSync(path.join(prefix, f), path.join(logsTo, f));
  }
  fs.rmSync(prefix, { recursive: true, force: true });
}

/* ------------------------------------------------------------------ the web client */

/**
 * LibreChat's login page in headless Chromium (Debian's, with playwright-core; E2E_CHROMIUM for
 * another), when client/dist is a real build of the web client (not the placeholder page): types
 * the user name and password into LibreChat's own form and waits for the chat page.
 */
async function webClientLogin(lcDir, base, user) {
  return withChromium(lcDir, async (browser) => {
    const page = await browser.newPage();
    await page.goto(`${base}/login`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    const field = page.locator('#email');
    await field.waitFor({ timeout: 60_000 });
    const label = (await page.locator('label[for="email"]').first().textContent({ timeout: 5_000 }).catch(() => '') || '').trim();
    await field.fill(user.username);
    await page.locator('#password').fill(user.password);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/auth/login') && r.request().method() === 'POST', { timeout: 30_000 }),
      page.locator('[data-testid="login-button"]').click(),
    ]);
    let error = '';
    await page.waitForURL((u) => /\/c\//.test(u.pathname), { timeout: 30_000 }).catch((e) => { error = e.message.split('\n')[0]; });
    const cookies = await page.context().cookies();
    const url = new URL(page.url());
    return {
      label,
      status: answer.status(),
      path: url.pathname,
      chat: /\/c\//.test(url.pathname),
      refreshCookie: cookies.some((c) => c.name === 'refreshToken' && c.httpOnly),
      error,
    };
  });
}

/**
 * Runs `fn(browser)` in Debian's Chromium through playwright-core: its result, `{skipped}` when the
 * checkout has no web client build or there is no browser, `{error}` when it threw.
 */
async function withChromium(lcDir, fn) {
  const index = path.join(lcDir, 'client', 'dist', 'index.html');
  if (!fs.existsSync(index) || !/\/assets\//.test(fs.readFileSync(index, 'utf8'))) {
    return { skipped: 'client/dist is not a build of the web client (npm run frontend builds it)' };
  }
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    return { skipped: 'playwright-core is not installed (npm install)' };
  }
  const executablePath = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) return { skipped: `no Chromium at ${executablePath} (apt-get install chromium)` };
  const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    return await fn(browser);
  } catch (err) {
    return { error: err.message.split('\n')[0] };
  } finally {
    await browser.close();
  }
}

/* ------------------------------------------------------------------ leaving the checkout as found */

/** LibreChat's own run-time output (its logs, violation store, uploads): written by LibreChat itself. */
const RUNTIME_DIRS = ['logs', 'api/logs', 'data', 'uploads', 'images', 'client/public/images'];

/**
 * The checkout as a map path -> content hash (node_modules and .git left out, the installed
 * package's entry in node_modules in), to compare before and after a run.
 */
function snapshot(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.name === 'node_modules' || e.name === '.git') continue;
      if (e.isDirectory()) {
        out.set(`${rel}/`, 'dir');
        walk(p);
      } else if (e.isSymbolicLink()) {
        out.set(rel, `-> ${fs.readlinkSync(p)}`);
      } else if (e.isFile()) {
        out.set(rel, crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
      }
    }
  };
  walk(dir);
  const pkg = path.join(dir, 'node_modules', NAME);
  let entry = 'absent';
  try {
    const st = fs.lstatSync(pkg);
    entry = st.isSymbolicLink() ? `-> ${fs.readlinkSync(pkg)}` : `dir, package.json ${fs.readFileSync(path.join(pkg, 'package.json'), 'utf8').length} bytes`;
  } catch { /* absent */ }
  out.set(`node_modules/${NAME}`, entry);
  return out;
}

const inRuntimeDir = (rel) => RUNTIME_DIRS.some((d) => rel === `${d}/` || rel.startsWith(`${d}/`));

/**
 * Takes away what LibreChat's own runs wrote where nothing was before (its logs and violation
 * store), then compares: every path the same, except LibreChat's appends to run-time files that
 * were there already. Returns the differences.
 */
function leftAsFound(dir, before) {
  let now = snapshot(dir);
  const created = [...now.keys()].filter((k) => !before.has(k) && inRuntimeDir(k)).sort().reverse();
  for (const rel of created) fs.rmSync(path.join(dir, rel), { recursive: true, force: true });
  now = snapshot(dir);
  const diffs = [];
  for (const k of new Set([...before.keys(), ...now.keys()])) {
    if (before.get(k) === now.get(k)) continue;
    if (before.has(k) && now.has(k) && inRuntimeDir(k)) continue; // LibreChat appended to its own log
    diffs.push(`${k}: ${before.has(k) ? (now.has(k) ? 'changed' : 'gone') : 'new'}`);
  }
  return diffs;
}

/* ------------------------------------------------------------------ the wiring */

/** Wires the checkout as `init` does; the stock files' bytes are kept to check the revert against. */
function applyWiring(lcDir) {
  // Wired by an earlier run that was interrupted: taken back, so this run wires with today's table.
  wiringEngine.change(lcDir, 'stock');
  const stock = Object.fromEntries(wiringEngine.FILES.map((f) => path.join(lcDir, f.file))
    .filter((f) => fs.existsSync(f)).map((f) => [f, fs.readFileSync(f)]));
  const r = wiringEngine.change(lcDir, 'wired');
  const out = r.problems.length > 0
    ? r.problems.map((p) => `${p.file}: ${p.what}: ${p.reason}`).join('\n')
    : r.changes.map((c) => `wired ${c.file} (${c.count} places)`).join('\n');
  return { ok: r.problems.length === 0 && r.changes.length > 0, version: r.versionText, out, stock, files: r.changes.length };
}

/** `init --revert`, then whether every file is back byte for byte. */
function revertWiring(lcDir, stock) {
  const r = wiringEngine.change(lcDir, 'stock');
  const same = Object.entries(stock).every(([f, bytes]) => fs.readFileSync(f).equals(bytes));
  return { ok: r.problems.length === 0 && same, out: r.problems.length ? JSON.stringify(r.problems) : `${r.changes.length} files, byte for byte: ${same}` };
}

/**
 * A TCP relay in front of the mock backend: LibreChat's BACKEND_* URLs point at it, and stop() closes
 * it (connections refused, as a backend that is down) while the mock keeps its sessions, so that
 * start() on the same port brings "the same backend" back.
 */
async function startRelay(targetPort) {
  const sockets = new Set();
  let server = null;
  const port = await freePort();
  const listen = () => new Promise((resolve, reject) => {
    server = net.createServer((inbound) => {
      const outbound = net.connect(targetPort, '127.0.0.1');
      for (const s of [inbound, outbound]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); }
      inbound.pipe(outbound).pipe(inbound);
    });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await listen();
  return {
    port,
    start: listen,
    stop: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/* ------------------------------------------------------------------ LibreChat's process */

function node24() {
  if (process.env.LIBRECHAT_NODE) return process.env.LIBRECHAT_NODE;
  const r = sh('bash', [path.join(REPO, 'scripts', 'runtimes.sh'), 'node24'], { cwd: REPO });
  const m = /^NODE24=(.+)$/m.exec(r.out);
  return m ? m[1].trim() : null;
}

function startLibreChat(lcDir, nodeBin, port, logFile) {
  const log = fs.openSync(logFile, 'w');
  // A clean environment: LibreChat reads its .env (dotenv does not override variables already set).
  const env = { PATH: `${path.dirname(nodeBin)}:${process.env.PATH}`, HOME: process.env.HOME || os.homedir(),
    NODE_ENV: 'production' };
  const child = spawn(nodeBin, ['api/server/index.js'], { cwd: lcDir, env, stdio: ['ignore', log, log],
    detached: true });
  fs.closeSync(log);
  const state = { child, exited: null };
  child.on('exit', (code, signal) => { state.exited = code ?? signal; });
  child.on('error', (err) => { state.exited = err.code || 'spawn error'; });
  state.ready = (async () => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (state.exited !== null) return false;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return true;
      } catch { /* not up yet */ }
      await sleep(1000);
    }
    return false;
  })();
  return state;
}

async function stopLibreChat(state) {
  if (!state || state.exited !== null) return;
  try { process.kill(-state.child.pid, 'SIGTERM'); } catch { /* gone */ }
  for (let i = 0; i < 100 && state.exited === null; i++) await sleep(100);
  if (state.exited === null) try { process.kill(-state.child.pid, 'SIGKILL'); } catch { /* gone */ }
}

/* ------------------------------------------------------------------ HTTP as a browser */

function client(base) {
  const jar = new Map();
  async function call(method, url, { body, token, cookies = true, ua = BROWSER_UA, headers: extra = {} } = {}) {
    const headers = { 'User-Agent': ua, Accept: 'application/json', ...extra };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    if (cookies && jar.size) headers.Cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(`${base}${url}`, { method, headers, redirect: 'manual',
      body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const k = pair.slice(0, i).trim();
      const v = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]) < new Date())
        || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (!v || expired) jar.delete(k); else jar.set(k, v);
    }
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text, headers: res.headers };
  }
  return { call, jar };
}

/** The mock backend's user with a second factor of its own (a fixed code, and backup codes). */
const MFA_USER = { id: 'u-2001', username: 'dora', email: 'dora@example.com', name: 'Dora', password: 'dora-password-4',
  mfaCode: '246810', backupCodes: ['backup-one'], roles: ['staff'] };

/**
 * Issue 27: the backend's second factor through LibreChat's 2FA screen. Over the API, a wrong code
 * answers LibreChat's message; in Chromium, the login page's password leads to LibreChat's 2FA
 * page, a wrong code typed there shows LibreChat's wrong-code message, the right one opens the chat.
 */
async function mfaSteps(lcDir, base, shots) {
  const api = client(base);
  const login = await api.call('POST', '/api/auth/login', { body: { email: MFA_USER.username, password: MFA_USER.password }, cookies: false });
  const wrong = await api.call('POST', '/api/auth/2fa/verify-temp', { body: { tempToken: login.json?.tempToken, token: '000000' }, cookies: false });
  step('second factor: the backend\'s challenge answers LibreChat\'s {twoFAPending, tempToken}; a wrong code LibreChat\'s 401 message',
    login.status === 200 && login.json?.twoFAPending === true && wrong.status === 401 && wrong.json?.message === 'Invalid 2FA code or backup code',
    `${brief(login)}; wrong code ${brief(wrong)}`);
  const web = await withChromium(lcDir, async (browser) => {
    fs.mkdirSync(shots, { recursive: true });
    const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) }).catch(() => {});
    const page = await browser.newPage();
    await page.goto(`${base}/login`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.locator('#email').fill(MFA_USER.username, { timeout: 60_000 });
    await page.locator('#password').fill(MFA_USER.password);
    await page.locator('[data-testid="login-button"]').click();
    await page.waitForURL((u) => /\/login\/2fa/.test(u.pathname), { timeout: 30_000 });
    const code = page.locator('input[data-input-otp]').first();
    await code.waitFor({ state: 'attached', timeout: 30_000 });
    await shot(page, 'mfa-1-code-page');
    // The code field is input-otp's hidden input: focused and typed into, as a user's keys do.
    const typeCode = async (value) => {
      await code.focus();
      for (let i = 0; i < 6; i += 1) await page.keyboard.press('Backspace');
      await page.keyboard.type(value, { delay: 20 });
    };
    await typeCode('135790');
    await page.locator('[data-testid="login-button"]').click();
    const message = await page.getByText('Invalid 2FA code or backup code').first().waitFor({ timeout: 15_000 }).then(() => true, () => false);
    await shot(page, 'mfa-2-wrong-code');
    await typeCode(MFA_USER.mfaCode); // the wrong code erased first, as a user would
    await page.locator('[data-testid="login-button"]').click();
    const chat = await page.waitForURL((u) => /\/c\//.test(u.pathname), { timeout: 60_000 }).then(() => true, () => false);
    await shot(page, 'mfa-3-chat');
    return { message, chat };
  });
  if (web.skipped) {
    info(`SKIP  the second factor in the web client: ${web.skipped}`);
    return;
  }
  step('second factor in the web client (Chromium): the password leads to LibreChat\'s 2FA page; a wrong code shows its wrong-code message; the right code opens the chat',
    web.message && web.chat, `wrong-code message ${web.message}; chat ${web.chat}${web.error ? `; ${web.error}` : ''}; screenshots in ${shots}`);
}

/** The authenticating proxy's own address: the TCP peer LibreChat sees for its requests. */
const SSO_PROXY_ADDRESS = '127.0.0.2';

/**
 * The portal of issue 26: `GET /session` answers the user of its `portal_session` cookie (the mock
 * backend's Alice), 401 without one. `signIn()` makes a portal session and returns its cookie value.
 */
async function startPortal() {
  const http = require('http');
  const sessions = new Map();
  const server = http.createServer((req, res) => {
    const m = /(?:^|;\s*)portal_session=([^;]*)/.exec(req.headers.cookie ?? '');
    const user = new URL(req.url, 'http://portal').pathname === '/session' && m ? sessions.get(m[1]) : null;
    res.writeHead(user ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify(user ? { user } : { error: 'not signed in' }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    signIn() {
      const value = crypto.randomBytes(24).toString('base64url');
      sessions.set(value, { id: 'u-1001', email: 'alice@example.com', username: 'alice', name: 'Alice Liddell' });
      return value;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * An authenticating proxy in front of LibreChat, as Authelia or oauth2-proxy would be: it strips
 * the identity headers a client sends, sets its own, and connects from `from` (a loopback address
 * of its own), the one LibreChat is told to trust.
 */
async function startIdentityProxy(targetPort, from, identity) {
  const http = require('http');
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers };
    for (const k of Object.keys(headers)) if (/^(remote-|x-forwarded-(user|email|groups))/.test(k)) delete headers[k];
    Object.assign(headers, identity);
    const out = http.request({ host: '127.0.0.1', port: targetPort, localAddress: from, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(out);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

/**
 * Issue 26 in LibreChat's web client (Chromium): a browser holding the portal cookie opens
 * LibreChat and lands in the chat with no login form; LibreChat's own "Log out" shows the login
 * page, and a reload does not sign back in; through the identity proxy the chat opens too; the
 * same headers sent straight to LibreChat are refused. Screenshots go to `shots`.
 */
async function ssoSteps(lcDir, base, portal, proxy, shots) {
  const web = await withChromium(lcDir, async (browser) => {
    fs.mkdirSync(shots, { recursive: true });
    const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`) }).catch(() => {});
    const inChat = (page) => page.waitForURL((u) => /\/c\//.test(u.pathname), { timeout: 60_000 }).then(() => true, () => false);
    const onLogin = (page) => page.locator('#email').waitFor({ timeout: 60_000 }).then(() => /\/login/.test(new URL(page.url()).pathname), () => false);
    const ctx = await browser.newContext();
    await ctx.addCookies([{ name: 'portal_session', value: portal.signIn(), url: base }]);
    const page = await ctx.newPage();
    await page.goto(`${base}/`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    const chat = await inChat(page);
    const form = await page.locator('#email').count();
    await shot(page, 'sso-1-portal-cookie-chat');
    await page.getByTestId('nav-user').click({ timeout: 30_000 });
    // A menu item since v0.8, an option of a select list in v0.7.9's account menu.
    await page.getByRole('menuitem', { name: 'Log out' }).or(page.getByRole('option', { name: 'Log out' }))
      .first().click({ timeout: 30_000 });
    const loggedOut = await onLogin(page);
    await shot(page, 'sso-2-after-logout');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.waitForTimeout(3_000); // the page's own refresh has been answered by then
    const stillOut = await onLogin(page);
    await shot(page, 'sso-3-reload-after-logout');
    const viaProxy = await (await browser.newContext()).newPage();
    await viaProxy.goto(`${proxy.url}/`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    const proxied = await inChat(viaProxy);
    await shot(viaProxy, 'sso-4-proxy-chat');
    return { chat, form, loggedOut, stillOut, proxied };
  });
  if (web.skipped) {
    info(`SKIP  single sign-on in the web client: ${web.skipped}`);
  } else {
    step('single sign-on: a browser holding the portal cookie opens LibreChat and lands in the chat, no login form (Chromium)',
      web.chat && web.form === 0, `chat ${web.chat}; login fields ${web.form}${web.error ? `; ${web.error}` : ''}`);
    step('single sign-on: LibreChat\'s "Log out" shows the login page, and a reload with the portal cookie still there does not sign back in',
      web.loggedOut && web.stillOut, `after logout ${web.loggedOut}; after reload ${web.stillOut}`);
    step('single sign-on: through an identity proxy connecting from 127.0.0.2 (Remote-User), the chat opens',
      web.proxied, `chat ${web.proxied}; screenshots in ${shots}`);
  }
  const direct = await fetch(`${base}/api/auth/refresh`, { method: 'POST', headers: { 'User-Agent': BROWSER_UA,
    'Remote-User': 'carol', 'Remote-Email': 'carol@example.org', 'X-Forwarded-For': SSO_PROXY_ADDRESS } });
  const text = await direct.text();
  step('single sign-on: the same identity headers sent straight to LibreChat (X-Forwarded-For set) start nothing',
    direct.status === 200 && text === 'Refresh token not provided' && !direct.headers.getSetCookie().length, `${direct.status} ${text.slice(0, 40)}`);
}

/**
 * Issue 25 on a LibreChat with tenants (TRUST_TENANT_HEADER=true): the same backend user logs in
 * through two tenants as a proxy would send them (X-Tenant-Id), each account sees only its own
 * conversations through LibreChat's tenant context, and one tenant's token and session are refused
 * on the other's requests. Conversations are written into the database as LibreChat stores them
 * (there is no model to chat with here), one per account and one of acme's account filed in globex.
 */
async function tenantSteps(base, mongoUri) {
  const CAROL = { email: 'carol', password: 'carol-password-3' };
  const tenant = (t) => ({ 'X-Tenant-Id': t });
  const acme = client(base);
  const globex = client(base);
  const la = await acme.call('POST', '/api/auth/login', { body: CAROL, headers: tenant('acme') });
  const lg = await globex.call('POST', '/api/auth/login', { body: CAROL, headers: tenant('globex') });
  const idA = la.json?.user?._id;
  const idG = lg.json?.user?._id;
  const { MongoClient } = require('mongodb');
  const mongo = new MongoClient(mongoUri);
  try {
    const db = mongo.db();
    // Carol's account outside tenants (the admin panel step above) stays apart.
    const accounts = await db.collection('users').find({ idOnTheSource: 'u-1003' }).project({ tenantId: 1 }).toArray();
    const inTenants = accounts.filter((a) => a.tenantId).map((a) => `${a.tenantId}:${a._id}`).sort().join();
    step('tenants: the same backend user logs in through X-Tenant-Id acme and globex: two more LibreChat accounts, one in each',
      la.status === 200 && lg.status === 200 && !!idA && !!idG && inTenants === `acme:${idA},globex:${idG}`,
      `${brief(la)}; ${brief(lg)}; accounts in ${accounts.map((a) => a.tenantId ?? '(none)').join(', ')}`);
    const now = new Date();
    const convo = (user, tenantId, title) => ({ conversationId: crypto.randomUUID(), user, tenantId, title,
      endpoint: 'openAI', model: 'gpt-4o', isArchived: false, messages: [], tags: [], createdAt: now, updatedAt: now, __v: 0 });
    await db.collection('conversations').insertMany([
      convo(idA, 'acme', 'acme chat'), convo(idG, 'globex', 'globex chat'), convo(idA, 'globex', 'misfiled in globex')]);
  } finally {
    await mongo.close();
  }
  const titles = (r) => (r.json?.conversations ?? []).map((c) => c.title).sort().join(', ');
  const ca = await acme.call('GET', '/api/convos', { token: la.json?.token, headers: tenant('acme') });
  const cg = await globex.call('GET', '/api/convos', { token: lg.json?.token, headers: tenant('globex') });
  step('tenants: each account sees only its own conversations of its tenant (GET /api/convos, LibreChat\'s tenant context from req.user)',
    ca.status === 200 && cg.status === 200 && titles(ca) === 'acme chat' && titles(cg) === 'globex chat',
    `acme: ${ca.status} [${titles(ca)}]; globex: ${cg.status} [${titles(cg)}]`);
  const cross = await acme.call('GET', '/api/convos', { token: la.json?.token, headers: tenant('globex') });
  const crossRefresh = await acme.call('POST', '/api/auth/refresh', { headers: tenant('globex') });
  const ownRefresh = await acme.call('POST', '/api/auth/refresh', { headers: tenant('acme') });
  step('tenants: acme\'s token and refresh cookie on globex requests are refused (401, 403); on acme\'s they work',
    cross.status === 401 && crossRefresh.status === 403 && ownRefresh.status === 200 && ownRefresh.json?.user?._id === idA,
    `convos ${cross.status}; refresh ${crossRefresh.status}; own refresh ${ownRefresh.status}`);
}

/** Status and message of an answer; never a token (an answer holding one prints its keys only). */
const brief = (r) => {
  if (r.json && typeof r.json === 'object') {
    const msg = r.json.message ? ` ${r.json.code ? `${r.json.code} ` : ''}${String(r.json.message).slice(0, 120)}` : '';
    return `${r.status}${msg || ` {${Object.keys(r.json).join(', ')}}`}`;
  }
  return `${r.status} ${/ey[\w-]{10,}\./.test(r.text) ? '(body withheld)' : r.text.replace(/\s+/g, ' ').slice(0, 80)}`.trim();
};

/** E2E_MARKDOWN=1: the results as the table in docs/install.md ("Checked against real LibreChat"). */
function markdownTable(rows) {
  const cell = (t) => t.replace(/\|/g, '\\|').replace(/`/g, '');
  const out = ['| step | result | seen |', '|---|---|---|'];
  for (const r of rows) {
    let seen = r.detail.trim().replace(/npm pack of \S+ \(developer build, (\S+) of \S+ inside\)/, 'npm pack, developer build $1 inside');
    if (seen.length > 110) seen = `${seen.trim().slice(0, 107).replace(/\s+\S*$/, '')} …`;
    out.push(`| ${cell(r.name)} | ${r.ok ? 'PASS' : 'FAIL'} | ${seen ? `\`${cell(seen)}\`` : ''} |`);
  }
  return out.join('\n');
}

/* ------------------------------------------------------------------ main */

async function main() {
  const lcDir = process.env.LIBRECHAT_DIR;
  if (!lcDir) {
    console.log('e2e:librechat skipped: LIBRECHAT_DIR is unset');
    return 0;
  }
  const { startMockBackend } = require(path.join(REPO, '__test__', 'support', 'mockBackend'));

  const dir = path.resolve(lcDir);
  const cleanups = [];
  let before = null;
  let mock = null;
  let lc = null;
  let aborted = false;
  // Stops LibreChat and undoes what was done (.env, wiring, database), once, whoever asks first.
  let cleaning = null;
  const cleanupAll = () => (cleaning ||= (async () => {
    await stopLibreChat(lc);
    if (mock) await mock.close().catch(() => {});
    for (const fn of cleanups.splice(0).reverse()) {
      try { await fn(); } catch (err) { info(`cleanup: ${err.message}`); }
    }
  })());
  // Ctrl-C or a kill: the same clean-up before leaving.
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      aborted = true;
      console.log(`      ${sig}: stopping and cleaning up`);
      await cleanupAll();
      console.log('INTERRUPTED');
      process.exit(130);
    });
  }
  try {
    // ---- the checkout
    const lcPkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const commit = sh('git', ['-C', dir, 'rev-parse', '--short=9', 'HEAD']).out || 'not a git checkout';
    console.log(`LibreChat ${lcPkg.version} at ${dir}, commit ${commit}; ${new Date().toISOString()}`);
    const missing = ['node_modules', 'packages/data-provider/dist', 'packages/data-schemas/dist', 'packages/api/dist']
      .filter((p) => !fs.existsSync(path.join(dir, p)));
    if (!step('checkout is installed and built', missing.length === 0,
      missing.length ? `missing ${missing.join(', ')}: see this script's header` : '')) return 1;
    before = snapshot(dir);
    const indexHtml = path.join(dir, 'client', 'dist', 'index.html');
    if (!fs.existsSync(indexHtml)) {
      const firstMissing = ['client', 'client/dist'].map((p) => path.join(dir, p)).find((p) => !fs.existsSync(p)) ?? indexHtml;
      cleanups.push(() => fs.rmSync(firstMissing, { recursive: true, force: true }));
      fs.mkdirSync(path.dirname(indexHtml), { recursive: true });
      fs.writeFileSync(indexHtml, '<!doctype html><title>LibreChat</title><p>placeholder (no web client built)</p>\n');
      info('wrote a placeholder client/dist/index.html (the API serves it; no web client is built)');
    }

    // ---- Node for LibreChat
    let nodeBin = node24();
    const nodeVersion = nodeBin ? sh(nodeBin, ['--version']).out : '';
    info(`LibreChat's .nvmrc: ${fs.existsSync(path.join(dir, '.nvmrc')) ? fs.readFileSync(path.join(dir, '.nvmrc'), 'utf8').trim() : '(none)'}; Node for LibreChat: ${nodeVersion || 'Node 24 not found'}`);
    if (!nodeBin) nodeBin = process.execPath;

    // ---- install the package
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-e2e-'));
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    let prefix;
    // LibreChat's logs of this run are kept outside the checkout (the prefix folder goes at the end).
    const logsTo = process.env.E2E_LOG_DIR || path.join(os.tmpdir(), 'librechat-e2e-logs');
    cleanups.push(() => {
      if (prefix) restorePackage(dir, prefix, logsTo);
      info(`LibreChat's logs of this run: ${logsTo}`);
    });
    try {
      const pkg = packageTarballs(tmp);
      prefix = path.join(dir, 'custom-backend-auth-e2e');
      installPackage(dir, pkg.files, nodeBin);
      const loaded = sh(nodeBin, ['-e', `const p=require('${NAME}');console.log(require('${NAME}/package.json').version, typeof p.customBackendStrategy)`], { cwd: path.join(dir, 'api') });
      step('install the packed package into LibreChat', loaded.code === 0 && /function/.test(loaded.out),
        `${pkg.what}; loads from api/: ${loaded.out.split('\n').pop()}`);
    } catch (err) {
      step('install the packed package into LibreChat', false, err.message);
      return 1;
    }

    // ---- the wiring
    const wiring = applyWiring(dir);
    step(`init wires LibreChat ${wiring.version} by anchors`, wiring.ok,
      wiring.ok ? `${wiring.files} files` : 'FAILED');
    info(wiring.out.split('\n').join('\n      '));
    if (!wiring.ok) return 1;
    if (!process.env.E2E_KEEP_WIRING) {
      cleanups.push(() => {
        const r = revertWiring(dir, wiring.stock);
        info(`wiring reverted (init --revert): ${r.ok ? 'yes' : 'NO'}, ${r.out}`);
        if (!r.ok) process.exitCode = 1;
      });
    }
    // The package knows the user-name switch (issue 10.1): then the wiring must make /api/config say so.
    const jsFiles = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory()
      ? (e.name === 'node_modules' ? [] : jsFiles(path.join(d, e.name)))
      : (e.name.endsWith('.js') ? [path.join(d, e.name)] : [])));
    const usernameWiring = [...jsFiles(path.join(prefix, 'node_modules', NAME))]
      .some((f) => fs.readFileSync(f, 'utf8').includes('BACKEND_LOGIN_USES_USERNAME'));

    // ---- the database and the backend
    let mongoUri = process.env.E2E_MONGO_URI;
    if (!mongoUri) {
      const db = await startTestDb();
      cleanups.push(() => db.stop());
      mongoUri = db.uri;
    }
    const dbName = `LibreChatE2E_${Date.now()}`;
    const mongoWithDb = mongoUri.replace(/\/?(\?|$)/, `/${dbName}$1`);
    mock = await startMockBackend();
    mock.addUser(MFA_USER); // the backend's own second factor (issue 27)
    const relay = await startRelay(Number(new URL(mock.urls.login).port));
    cleanups.push(() => relay.stop());
    const backendUrl = (name) => {
      const u = new URL(mock.urls[name]);
      u.port = String(relay.port);
      return u.toString();
    };
    info(`test database ${mongoUri} (database ${dbName}); mock backend ${new URL(mock.urls.login).origin}, reached through a relay on port ${relay.port} (stopped for the outage)`);
    // LibreChat's balance feature on, so that login's setBalanceConfig and GET /api/balance do work.
    const configPath = path.join(prefix, 'librechat.yaml');
    fs.writeFileSync(configPath, 'version: 1.3.14\nbalance:\n  enabled: true\n  startBalance: 20000\n');

    // ---- .env at LibreChat's root
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const hex = (n) => crypto.randomBytes(n).toString('hex');
    const envVars = {
      HOST: '127.0.0.1',
      PORT: port,
      MONGO_URI: mongoWithDb,
      DOMAIN_CLIENT: base,
      DOMAIN_SERVER: base,
      NO_INDEX: 'true',
      CREDS_KEY: hex(32),
      CREDS_IV: hex(16),
      JWT_SECRET: hex(32),
      JWT_REFRESH_SECRET: hex(32),
      SEARCH: 'false',
      ALLOW_EMAIL_LOGIN: 'true',
      ALLOW_REGISTRATION: 'true', // LibreChat's own, while the switch is off; the switch on withdraws it
      ALLOW_PASSWORD_RESET: 'true',
      ALLOW_SOCIAL_LOGIN: 'false',
      ALLOW_UNVERIFIED_EMAIL_LOGIN: 'true',
      SESSION_EXPIRY: '1000 * 60 * 15',
      REFRESH_TOKEN_EXPIRY: '(1000 * 60 * 60 * 24) * 7',
      LOGIN_MAX: '1000', // LibreChat's login limiter: 7 per LOGIN_WINDOW (5 min) by default
      LOGIN_WINDOW: '5',
      BAN_VIOLATIONS: 'false', // the non-browser check below logs a violation
      DEBUG_LOGGING: 'true',
      USE_CUSTOM_BACKEND_AUTH: 'true',
      BACKEND_LOGIN_USES_USERNAME: 'true',
      CONFIG_PATH: configPath,
      BACKEND_AUTH_URL: backendUrl('login'),
      BACKEND_USER_INFO_URL: backendUrl('userinfo'),
      BACKEND_REFRESH_URL: backendUrl('refresh'),
      BACKEND_LOGOUT_URL: backendUrl('logout'),
      BACKEND_MFA_VERIFY_URL: backendUrl('mfa'),
      BACKEND_TOKEN_ENCRYPTION_KEY: hex(32),
      BACKEND_EVENTS_SECRET: hex(32),
      BACKEND_ALLOW_INSECURE_HTTP: 'true', // the mock backend is plain HTTP on 127.0.0.1
      BACKEND_TIMEOUT_MS: '3000',
      BACKEND_ROLES_FIELD: 'roles',
      BACKEND_ADMIN_ROLES: 'admin', // the mock's bob
      METRICS_SECRET: hex(16), // LibreChat's /metrics answers only with it
    };
    // LibreChat v0.8.5+ runs tenants: X-Tenant-Id trusted, as behind a proxy that sets it (issue 25).
    const tenants = /preAuthTenantMiddleware/.test(fs.readFileSync(path.join(dir, 'api', 'server', 'index.js'), 'utf8'));
    if (tenants) envVars.TRUST_TENANT_HEADER = 'true';
    // E2E_ENV: more settings for every start, e.g. E2E_ENV="JWT_FAST_PATH=true USER_CACHE_TTL=30".
    for (const [i, pair] of (process.env.E2E_ENV ?? '').split(/\s+/).filter(Boolean).entries()) {
      const eq = pair.indexOf('=');
      // The entry itself is not echoed: its value may be a secret.
      if (eq < 1) throw new Error(`E2E_ENV: entry ${i + 1} is not NAME=value`);
      envVars[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const envFile = path.join(dir, '.env');
    const aside = path.join(dir, '.env.before-e2e');
    const MARK = '# written by librechat-custom-backend-auth scripts/e2e-librechat.js; removed when it ends';
    const ours = fs.existsSync(envFile) && fs.readFileSync(envFile, 'utf8').startsWith(MARK); // an interrupted run's
    if (fs.existsSync(envFile) && !ours) {
      if (fs.existsSync(aside)) throw new Error(`both ${envFile} and ${aside} exist: move one away first`);
      fs.renameSync(envFile, aside);
    }
    // Puts back the .env that was there (also one an interrupted run had moved aside).
    cleanups.push(() => (fs.existsSync(aside) ? fs.renameSync(aside, envFile) : fs.rmSync(envFile, { force: true })));
    const writeEnv = (vars) => fs.writeFileSync(envFile,
      `${MARK}\n${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n')}\n`, { mode: 0o600 });
    writeEnv(envVars);
    info(`${envFile} is written for each start (LibreChat reads .env from its root); LOGIN_MAX=1000, BACKEND_LOGIN_USES_USERNAME=true`);

    // ---- start LibreChat, the switch off first: its stock login, and a local account made there
    const logFile = path.join(prefix, 'api.log');
    writeEnv({ ...envVars, USE_CUSTOM_BACKEND_AUTH: 'false' });
    let started = Date.now();
    lc = startLibreChat(dir, nodeBin, port, logFile);
    let up = await lc.ready;
    let runtime = sh(nodeBin, ['--version']).out;
    if (aborted) return 1;
    if (!up && nodeBin !== process.execPath) {
      info(`LibreChat did not come up on Node ${runtime} (exit ${lc.exited}); trying ${process.version}`);
      await stopLibreChat(lc);
      fs.copyFileSync(logFile, `${logFile}.node24`);
      nodeBin = process.execPath;
      runtime = process.version;
      started = Date.now();
      lc = startLibreChat(dir, nodeBin, port, logFile);
      up = await lc.ready;
    }
    if (!step(`LibreChat API starts (node api/server/index.js, NODE_ENV=production, Node ${runtime}), switch off`, up,
      up ? `${((Date.now() - started) / 1000).toFixed(0)} s` : `see ${logFile}`)) {
      console.log(fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n'));
      return 1;
    }

    const browser = client(base);
    const { call } = browser;
    const offConfig = await call('GET', '/api/config', { cookies: false });
    step('switch off: GET /api/config is LibreChat\'s own (registration, password reset, no user-name login)',
      offConfig.status === 200 && !offConfig.json?.ldap?.username && offConfig.json?.registrationEnabled === true
      && offConfig.json?.passwordResetEnabled === true,
      `${offConfig.status} registrationEnabled=${offConfig.json?.registrationEnabled} passwordResetEnabled=${offConfig.json?.passwordResetEnabled} ldap=${JSON.stringify(offConfig.json?.ldap)}`);
    const register = await call('POST', '/api/auth/register', { cookies: false, body: { name: 'Local Admin', username: 'localadmin',
      email: LOCAL.email, password: LOCAL.password, confirm_password: LOCAL.password } });
    const localLogin = await call('POST', '/api/auth/login', { body: { email: LOCAL.email, password: LOCAL.password }, cookies: false });
    step('switch off: a local account registers and logs in (stock; the first user, so an ADMIN)',
      register.status === 200 && localLogin.status === 200 && localLogin.json?.user?.role === 'ADMIN',
      `register ${brief(register)}; login ${localLogin.status} role=${localLogin.json?.user?.role}`);
    let backendLogins = mock.calls.login;
    const offLogin = await call('POST', '/api/auth/login', { body: { email: USER.email, password: USER.password }, cookies: false });
    step('switch off: a backend user cannot log in (stock local login; the backend is not asked)',
      offLogin.status !== 200 && mock.calls.login === backendLogins, `${brief(offLogin)}; backend login calls ${mock.calls.login - backendLogins}`);
    const adminPanel = fs.existsSync(path.join(dir, 'api', 'server', 'routes', 'admin', 'auth.js')); // v0.8.3 and newer
    if (adminPanel) {
      const offAdmin = await call('POST', '/api/admin/login/local', { body: { email: LOCAL.email, password: LOCAL.password }, cookies: false });
      step('switch off: the local ADMIN logs into the admin panel (stock)', offAdmin.status === 200 && !!offAdmin.json?.token,
        brief(offAdmin));
    } else {
      info('SKIP  admin panel: this LibreChat has none (v0.8.3 and newer have)');
    }

    // ---- the switch on
    await stopLibreChat(lc);
    if (aborted) return 1;
    writeEnv(envVars);
    started = Date.now();
    const switchOnLog = logFile.replace(/\.log$/, '.switch-on.log');
    lc = startLibreChat(dir, nodeBin, port, switchOnLog);
    if (!step('LibreChat restarts with USE_CUSTOM_BACKEND_AUTH=true, the same code', await lc.ready,
      `${((Date.now() - started) / 1000).toFixed(0)} s`)) return 1;
    if (/^true$/i.test(envVars.JWT_FAST_PATH ?? '')) {
      step("JWT_FAST_PATH=true: the fast path is in front of LibreChat's passport (its start-up line in the log)",
        /JWT_FAST_PATH: passport\.authenticate\('jwt'\) answers cached tokens itself/.test(fs.readFileSync(switchOnLog, 'utf8')));
    }

    const config = await call('GET', '/api/config');
    step('GET /api/config answers 200', config.status === 200,
      `emailLoginEnabled=${config.json?.emailLoginEnabled} registrationEnabled=${config.json?.registrationEnabled} passwordResetEnabled=${config.json?.passwordResetEnabled} ldap=${JSON.stringify(config.json?.ldap)}`);
    if (usernameWiring) {
      step('GET /api/config: user-name login (ldap.username), no registration or password reset (BACKEND_LOGIN_USES_USERNAME=true)',
        !!config.json?.ldap?.username && config.json?.registrationEnabled === false && config.json?.passwordResetEnabled === false,
        `ldap=${JSON.stringify(config.json?.ldap)} registrationEnabled=${config.json?.registrationEnabled} passwordResetEnabled=${config.json?.passwordResetEnabled}`);
    } else {
      info('SKIP  /api/config ldap.username: neither the package nor the wiring knows BACKEND_LOGIN_USES_USERNAME yet');
    }

    const login = await call('POST', '/api/auth/login', { body: { email: USER.username, password: USER.password } });
    const token = login.json?.token;
    step('POST /api/auth/login with a user name', login.status === 200 && !!token && !!browser.jar.get('refreshToken'),
      `${login.status}, user ${login.json?.user?.username} <${login.json?.user?.email}>, cookies: ${[...browser.jar.keys()].join(', ')}`);

    // LibreChat's own web client, when the checkout has it built: its login page in Chromium.
    const web = await webClientLogin(dir, base, { username: 'bob', password: 'bob-password-2' });
    if (web.skipped) info(`SKIP  the web client's login: ${web.skipped}`);
    else {
      step('the web client: LibreChat\'s login page in Chromium, a backend user name and password typed and sent, the chat page opens',
        web.status === 200 && web.chat && web.refreshCookie && web.label === 'Username',
        `field labelled "${web.label}"; POST /api/auth/login ${web.status}; then ${web.path}; refreshToken cookie ${web.refreshCookie}${web.error ? `; ${web.error}` : ''}`);
    }

    const wrong = await call('POST', '/api/auth/login', { body: { email: USER.username, password: 'wrong' }, cookies: false });
    step('POST /api/auth/login with a wrong password is refused (4xx, docs/errors-and-statuses.md), no cookie',
      wrong.status >= 400 && wrong.status < 500 && !wrong.headers.getSetCookie().some((c) => /^refreshToken=[^;]/.test(c)),
      brief(wrong));
    backendLogins = mock.calls.login;
    const localOn = await call('POST', '/api/auth/login', { body: { email: LOCAL.email, password: LOCAL.password }, cookies: false });
    step('the local account cannot log in while the switch is on (its password goes to the backend)',
      localOn.status !== 200 && !localOn.json?.token && mock.calls.login === backendLogins + 1,
      `${brief(localOn)}; backend login calls ${mock.calls.login - backendLogins}`);

    const me = await call('GET', '/api/user', { token });
    step('GET /api/user', me.status === 200 && me.json?.email === USER.email && me.json?.provider === 'custom-backend',
      `${me.status} ${me.json?.email} provider=${me.json?.provider} role=${me.json?.role}`);
    for (const route of ['/api/convos', '/api/endpoints', '/api/agents']) {
      const r = await call('GET', route, { token });
      step(`GET ${route}`, r.status === 200, `${r.status}`);
    }
    const balance = await call('GET', '/api/balance', { token });
    step('GET /api/balance (balance on: the start balance login wrote)', balance.status === 200
      && balance.json?.tokenCredits === 20000, `${balance.status} tokenCredits=${balance.json?.tokenCredits}`);
    // LibreChat's uaParser (on /api/agents, /api/files, /api/assistants, ...) answers a client it does
    // not recognise as a browser with an error event ("Illegal request"), and logs a violation.
    const noUa = await call('GET', '/api/agents', { token, ua: 'curl/8.5.0' });
    step('GET /api/agents without a browser User-Agent is refused by LibreChat (uaParser)',
      /Illegal request/.test(noUa.text), `${noUa.status} ${noUa.text.replace(/\s+/g, ' ').slice(0, 60)}`);
    const noToken = await call('GET', '/api/user', { cookies: false });
    step('GET /api/user without a token answers 401', noToken.status === 401, brief(noToken));

    // The admin panel's login (issue 10.3), when the wiring covers LibreChat's admin auth router.
    const admin = client(base);
    if (adminPanel) {
      const adminLogin = await admin.call('POST', '/api/admin/login/local', { body: { email: 'bob', password: 'bob-password-2' } });
      const adminToken = adminLogin.json?.token;
      step('admin panel: POST /api/admin/login/local with a backend user name (backend role admin -> ADMIN)',
        adminLogin.status === 200 && !!adminToken, `${brief(adminLogin)}`);
      const verify = await admin.call('GET', '/api/admin/verify', { token: adminToken, cookies: false });
      step('admin panel: GET /api/admin/verify with its token', verify.status === 200 && verify.json?.user?.role === 'ADMIN',
        `${verify.status} role=${verify.json?.user?.role}`);
      const notAdmin = await admin.call('POST', '/api/admin/login/local', { body: { email: 'carol', password: 'carol-password-3' }, cookies: false });
      step('admin panel: a backend user without admin access is refused (LibreChat\'s check, 403)',
        notAdmin.status === 403 && !notAdmin.json?.token, brief(notAdmin));
      const localAdmin = await admin.call('POST', '/api/admin/login/local', { body: { email: LOCAL.email, password: LOCAL.password }, cookies: false });
      step('admin panel: the local ADMIN cannot log in while the switch is on (the local path is closed)',
        localAdmin.status !== 200 && !localAdmin.json?.token, brief(localAdmin));
    }

    const refreshCookie1 = browser.jar.get('refreshToken');
    const refresh = await call('POST', '/api/auth/refresh');
    const token2 = refresh.json?.token;
    step('POST /api/auth/refresh with the cookie', refresh.status === 200 && !!token2
      && browser.jar.get('refreshToken') && browser.jar.get('refreshToken') !== refreshCookie1,
    `${refresh.status}, new token ${token2 ? 'yes' : 'no'}, cookie rotated ${browser.jar.get('refreshToken') !== refreshCookie1}`);
    const me2 = await call('GET', '/api/user', { token: token2 });
    step('GET /api/user with the refreshed token', me2.status === 200, `${me2.status}`);

    // ---- the outage: the backend stops
    await relay.stop();
    const outLogin = await call('POST', '/api/auth/login', { body: { email: USER.username, password: USER.password }, cookies: false });
    step('outage: login answers 500 (docs/errors-and-statuses.md: "please wait and try again" on the page), not 404 or 401', outLogin.status === 500, brief(outLogin));
    const outMe = await call('GET', '/api/user', { token: token2 });
    const outConvos = await call('GET', '/api/convos', { token: token2 });
    step('outage: API calls with a valid token keep working', outMe.status === 200 && outConvos.status === 200,
      `/api/user ${outMe.status}, /api/convos ${outConvos.status}`);
    const beforeOutRefresh = browser.jar.get('refreshToken');
    const outRefresh = await call('POST', '/api/auth/refresh');
    step('outage: refresh answers 200 with an access token from the session and keeps the cookie (docs/sessions-and-tokens.md, "Refresh")',
      outRefresh.status === 200 && !!outRefresh.json?.token && browser.jar.get('refreshToken') === beforeOutRefresh,
      `${brief(outRefresh)}; Retry-After ${outRefresh.headers.get('retry-after')}; cookie kept ${browser.jar.get('refreshToken') === beforeOutRefresh}`);

    // ---- the backend is back (same port)
    await relay.start();
    const backRefresh = await call('POST', '/api/auth/refresh');
    const token3 = backRefresh.json?.token;
    step('after the outage: refresh works again with the kept cookie', backRefresh.status === 200 && !!token3, brief(backRefresh));

    // ---- logout
    const refreshCookie3 = browser.jar.get('refreshToken');
    const backendLogouts = mock.calls.logout;
    const logout = await call('POST', '/api/auth/logout', { token: token3 });
    step('POST /api/auth/logout (the backend is told)', logout.status === 200 && !browser.jar.get('refreshToken')
      && mock.calls.logout === backendLogouts + 1,
    `${brief(logout)}; refresh cookie cleared ${!browser.jar.get('refreshToken')}; backend logout calls ${mock.calls.logout - backendLogouts}`);
    browser.jar.set('refreshToken', refreshCookie3);
    const deadRefresh = await call('POST', '/api/auth/refresh');
    step('after logout: the old refresh cookie is refused (401)', deadRefresh.status === 401, brief(deadRefresh));
    // LibreChat has a /metrics router from v0.8.6 on (the wiring appends the package's there).
    if (/metricsRouter/.test(fs.readFileSync(path.join(dir, 'api', 'server', 'index.js'), 'utf8'))) {
      const metrics = await call('GET', '/metrics', { token: envVars.METRICS_SECRET, cookies: false });
      const text = metrics.text;
      step('GET /metrics (METRICS_SECRET): LibreChat\'s metrics and the package\'s, with the logins and refreshes above',
        metrics.status === 200 && /librechat_custom_backend_logins_total\{code="ok"\} [1-9]/.test(text)
          && /librechat_custom_backend_refreshes_total\{code="BACKEND_UNAVAILABLE"\} 1\b/.test(text) && /^# HELP (?!librechat_custom_backend_)/m.test(text),
        `${metrics.status}; ${(text.match(/^librechat_custom_backend_(logins|refreshes)_total\{[^}]*\} \d+/gm) ?? []).join(', ')}`);
      if (/^true$/i.test(envVars.JWT_FAST_PATH ?? '')) {
        const answered = Number(/^librechat_custom_backend_jwt_fast_path_answers_total (\d+)/m.exec(text)?.[1] ?? 0);
        step("JWT_FAST_PATH=true: API requests above were answered by the fast path under LibreChat's requireJwtAuth",
          answered > 0, `librechat_custom_backend_jwt_fast_path_answers_total ${answered}`);
      }
    } else {
      info('SKIP  /metrics: this LibreChat has no /metrics router (v0.8.6 and newer have)');
    }
    const afterLogout = await call('GET', '/api/user', { token: token3, cookies: false });
    step('after logout: the LibreChat access token stays valid until it expires (docs/logout-events-revocation.md, "Logout")',
      afterLogout.status === 200, `${afterLogout.status}`);
    // ---- log out everywhere, the session list, and a backend event (docs/logout-events-revocation.md)
    const tabs = [client(base), client(base)];
    const tabTokens = [];
    for (const tab of tabs) {
      const r = await tab.call('POST', '/api/auth/login', { body: { email: USER.username, password: USER.password } });
      tabTokens.push(r.json?.token);
    }
    const sessions = await tabs[0].call('GET', '/api/auth/sessions', { token: tabTokens[0] });
    step('GET /api/auth/sessions: two sessions, this browser\'s marked current, nothing secret',
      sessions.status === 200 && sessions.json?.sessions?.length === 2 && sessions.json.sessions.filter((x) => x.current).length === 1
        && !/ey[\w-]{10,}\./.test(sessions.text),
      `${sessions.status}; ${sessions.json?.sessions?.length ?? 0} sessions`);
    const all = await tabs[0].call('POST', '/api/auth/logout/all', { token: tabTokens[0] });
    const otherTab = await tabs[1].call('GET', '/api/user', { token: tabTokens[1] });
    const otherRefresh = await tabs[1].call('POST', '/api/auth/refresh');
    step('POST /api/auth/logout/all: both sessions end, the other tab\'s access token and refresh cookie are refused at once',
      all.status === 200 && all.json?.sessions === 2 && otherTab.status === 401 && otherRefresh.status === 401,
      `${brief(all)}; other tab /api/user ${otherTab.status}, refresh ${otherRefresh.status}`);
    const relogin = await tabs[0].call('POST', '/api/auth/login', { body: { email: USER.username, password: USER.password } });
    const eventPath = '/api/auth/custom-backend/events';
    const event = JSON.stringify({ id: `e2e-${Date.now()}`, type: 'user.disabled', time: Date.now() / 1000, userId: mock.users.find((u) => u.username === USER.username)?.id });
    const unsigned = await fetch(`${base}${eventPath}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: event });
    const t = Math.floor(Date.now() / 1000);
    const sig = crypto.createHmac('sha256', envVars.BACKEND_EVENTS_SECRET).update(`${t}.${event}`).digest('hex');
    const signed = await fetch(`${base}${eventPath}`, { method: 'POST', body: event,
      headers: { 'Content-Type': 'application/json', 'X-Custom-Backend-Signature': `t=${t},v1=${sig}` } });
    const signedBody = await signed.json().catch(() => null);
    const disabled = await tabs[0].call('GET', '/api/user', { token: relogin.json?.token });
    step('backend event (mounted before express.json): unsigned 401; signed user.disabled applied, the session\'s token refused',
      unsigned.status === 401 && signed.status === 200 && signedBody?.status === 'applied' && signedBody?.sessionsEnded === 1
        && disabled.status === 401,
      `unsigned ${unsigned.status}; signed ${signed.status} ${signedBody?.status}, ${signedBody?.sessionsEnded} ended; /api/user ${disabled.status}`);
    if (tenants) await tenantSteps(base, mongoWithDb);
    await mfaSteps(dir, base, path.join(logsTo, 'screenshots'));
    // LibreChat's own registration and password reset are closed while the switch is on (issue 22.5).
    const regOn = await call('POST', '/api/auth/register', { cookies: false, body: { name: 'Late Local', username: 'latelocal',
      email: 'late.local@example.net', password: LOCAL.password, confirm_password: LOCAL.password } });
    const resetOn = await call('POST', '/api/auth/requestPasswordReset', { cookies: false, body: { email: LOCAL.email } });
    step('switch on: registration and password reset answer 403 as LibreChat does with them off (ALLOW_REGISTRATION=true in .env)',
      regOn.status === 403 && regOn.json?.message === 'Registration is not allowed.' && resetOn.status === 403,
      `register ${brief(regOn)}; requestPasswordReset ${resetOn.status} ${resetOn.text.slice(0, 40)}`);

    // ---- single sign-on (issue 26): restarted with the portal cookie and a trusted proxy
    await stopLibreChat(lc);
    if (aborted) return 1;
    const portal = await startPortal();
    cleanups.push(() => portal.close());
    const proxy = await startIdentityProxy(port, SSO_PROXY_ADDRESS, { 'remote-user': 'dave', 'remote-email': 'dave@example.net', 'remote-name': 'Dave' });
    cleanups.push(() => proxy.close());
    writeEnv({ ...envVars, BACKEND_SSO_COOKIE: 'portal_session', BACKEND_SSO_COOKIE_URL: `${portal.url}/session`,
      BACKEND_SSO_PROXIES: SSO_PROXY_ADDRESS, BACKEND_SSO_PROXY_USERS: 'headers' });
    lc = startLibreChat(dir, nodeBin, port, logFile.replace(/\.log$/, '.sso.log'));
    if (!step('single sign-on: LibreChat restarts with BACKEND_SSO_COOKIE (the portal\'s session check) and BACKEND_SSO_PROXIES', await lc.ready)) return 1;
    await ssoSteps(dir, base, portal, proxy, path.join(logsTo, 'screenshots'));

    // ---- LibreChat's login limiter (LOGIN_MAX per LOGIN_WINDOW minutes per IP) runs before the package
    await stopLibreChat(lc);
    if (aborted) return 1;
    writeEnv({ ...envVars, LOGIN_MAX: '2' });
    lc = startLibreChat(dir, nodeBin, port, logFile.replace(/\.log$/, '.limiter.log'));
    if (!step('limiter: LibreChat restarts with LOGIN_MAX=2 (switch on)', await lc.ready)) return 1;
    const statuses = [];
    const loginsBefore = mock.calls.login;
    for (let i = 0; i < 3; i++) {
      const r = await call('POST', '/api/auth/login', { body: { email: USER.username, password: 'wrong' }, cookies: false });
      statuses.push(r.status);
    }
    step('limiter: the third login within the window answers 429, without asking the backend',
      statuses[2] === 429 && statuses[0] !== 429 && statuses[1] !== 429 && mock.calls.login === loginsBefore + 2,
      `statuses ${statuses.join(', ')}; backend login calls ${mock.calls.login - loginsBefore}`);
    return results.every((r) => r.ok) ? 0 : 1;
  } catch (err) {
    step('unexpected error', false, err.stack || String(err));
    return 1;
  } finally {
    await cleanupAll();
    if (aborted) await new Promise(() => {}); // the signal handler prints and exits
    if (before && !process.env.E2E_KEEP_WIRING) {
      const diffs = leftAsFound(dir, before);
      step('the checkout is left as it was: every file outside node_modules and the installed package (a hash of each, before and after)',
        diffs.length === 0, diffs.length ? diffs.slice(0, 8).join('; ') : `${before.size} paths compared`);
    }
    const failed = results.filter((r) => !r.ok).length;
    if (lcDir && process.env.E2E_MARKDOWN) console.log(`\n${markdownTable(results)}\n`);
    if (lcDir) console.log(`${failed ? 'FAILED' : 'PASSED'}: ${results.length - failed} of ${results.length} steps passed`);
  }
}

if (require.main === module) {
  main().then((code) => process.exit(code), (err) => { console.error(err); process.exit(1); });
}

module.exports = { main, BROWSER_UA };
