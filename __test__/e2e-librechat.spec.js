'use strict';

// The real-LibreChat check (scripts/e2e-librechat.js, `npm run e2e:librechat`) outside LibreChat: it
// stays out of CI's way when LIBRECHAT_DIR is unset, and refuses a folder that is not an installed
// LibreChat checkout before it starts anything. Its run against real LibreChat is by hand; the
// result is in docs/install.md ("Checked against real LibreChat"), which the last test reads.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const REPO = path.join(__dirname, '..');
const SCRIPT = path.join(REPO, 'scripts', 'e2e-librechat.js');

function runScript(env) {
  const clean = { ...process.env };
  delete clean.LIBRECHAT_DIR;
  return spawnSync(process.execPath, [SCRIPT], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 });
}

test('#10.9 npm run e2e:librechat without LIBRECHAT_DIR prints one skip line and exits 0; npm test does not run it', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  expect(pkg.scripts['e2e:librechat']).toBe('node scripts/e2e-librechat.js');
  expect(pkg.scripts.test).not.toMatch(/e2e/);
  const r = runScript({});
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('e2e:librechat skipped: LIBRECHAT_DIR is unset\n');
  expect(r.stderr).toBe('');
});

test('#10.9 e2e:librechat refuses a folder that is not an installed LibreChat checkout, saying what is missing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-e2e-spec-'));
  try {
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'LibreChat', version: 'v0.0.0' }));
    const r = runScript({ LIBRECHAT_DIR: dir });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}checkout is installed and built {2}\(missing node_modules, packages\/data-provider\/dist/m);
    expect(r.stdout).toMatch(/FAILED: 0 of 1 steps passed/);
    // It stopped before touching the folder: no .env, no package, no wiring.
    expect(fs.readdirSync(dir)).toEqual(['package.json']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('#10.8 docs/install.md records the real-LibreChat run: version, Node 24, .env, User-Agent, login limiter, result table', () => {
  const install = fs.readFileSync(path.join(REPO, 'docs', 'install.md'), 'utf8');
  const start = install.indexOf('\n## Checked against real LibreChat\n');
  expect(start).toBeGreaterThan(0);
  const next = install.indexOf('\n## ', start + 1);
  const sub = install.slice(start, next < 0 ? undefined : next);
  // The LibreChat version and commit the wiring ran in, and how to repeat it.
  expect(sub).toMatch(/v0\.8\.8-rc1, commit `0ab3414c`/);
  expect(sub).toMatch(/`LIBRECHAT_DIR=\S+ npm run e2e:librechat`/);
  expect(sub).toMatch(/Result of the run on main, \d{4}-\d\d-\d\d/);
  // #22: the versions the real server ran, each with its steps.
  expect(sub).toMatch(/^\| v0\.7\.9, commit `bef5c26b` \| .* \| \d+ of \d+ \|/m);
  expect(sub).toMatch(/^\| v0\.8\.7, commit `9e74cc0e` \| .* \| \d+ of \d+ \|/m);
  expect(sub).toMatch(/the web client: LibreChat.s login page in Chromium/);
  // The facts an operator meets.
  expect(sub).toMatch(/Node 24\.16\.0 \(`\.nvmrc`, and `node:24\.16\.0-alpine` in its `Dockerfile`\)/);
  expect(sub).toMatch(/root `\.env`/);
  expect(sub).toMatch(/`uaParser`[^]*browser `User-Agent`/);
  expect(sub).toMatch(/`LOGIN_MAX` \(7\) logins per `LOGIN_WINDOW` \(5\s+minutes\)/);
  expect(sub).toMatch(/`xlsx@0\.18\.5`/);
  expect(sub).toMatch(/client\/dist\/index\.html/);
  // The result table: one row per step, each PASS or FAIL, covering what item 9 asks for.
  const rows = sub.split('\n').filter((l) => /^\| .* \| (PASS|FAIL) \|/.test(l));
  expect(rows.length).toBeGreaterThanOrEqual(20);
  for (const want of [/init wires LibreChat/, /registration and password reset answer 403/, /checkout is left as it was/, /login with a user name/, /GET \/api\/user \|/, /GET \/api\/convos/,
    /GET \/api\/balance/, /refresh with the cookie/, /POST \/api\/auth\/logout/, /outage: login/,
    /outage: API calls/, /outage: refresh/, /Node v24\.16\.0/, /ldap\.username/, /admin panel: POST/,
    /switch off/, /limiter/]) {
    expect(rows.some((r) => want.test(r))).toBe(true);
  }
  // docs/testing.md says how to run it.
  const testing = fs.readFileSync(path.join(REPO, 'docs', 'testing.md'), 'utf8').replace(/\s+/g, ' ');
  expect(testing).toContain('LIBRECHAT_DIR=/path/to/LibreChat npm run e2e:librechat');
  expect(testing).toContain('e2e:librechat skipped: LIBRECHAT_DIR is unset');
});
