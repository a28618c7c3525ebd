'use strict';

// The real-LibreChat check (scripts/e2e-librechat.js, `npm run e2e:librechat`) outside LibreChat: it
// stays out of CI's way when LIBRECHAT_DIR is unset, and refuses a folder that is not an installed
// LibreChat checkout before it starts anything. Its run against real LibreChat is by hand; the
// result is in README section 3 ("Checked against real LibreChat"), which the last test reads.

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
