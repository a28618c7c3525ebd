'use strict';

// Issue 14.20: the suite cleans up after itself and declares what it uses. A service a test builds
// holds database connections until closed; a package the tests require only through another
// package's dependencies (mongodb through mongoose) breaks when that package changes its own.
// Issue 14.3: the harness's secrets-in-logs check finds every kind of secret a test sends or
// configures (seen failing against a deliberately broken check).

const fs = require('fs');
const path = require('path');
const { builtinModules } = require('module');
const request = require('supertest');
const { startHarness } = require('./support/harness');

const ROOT = path.join(__dirname, '..');

describe('issue 14.20: services are closed, dependencies are declared', () => {
  test('#14.20 a service a test builds and never closes fails the harness\'s close, which closes it', async () => {
    const h = await startHarness({ db: 'hygiene-unclosed' });
    const closed = h.makeService();
    await closed.close();
    const leaked = h.makeService();
    let leakedClosed = false;
    const close = leaked.close;
    leaked.close = () => {
      leakedClosed = true;
      return close();
    };
    // The shared service replaced behind the harness's back (not with h.reconfigure).
    require('..').configureCustomBackendAuth({ ...h.vars, logger: h.logs.logger });
    await expect(h.close()).rejects.toThrow(
      /^1 service\(s\) built with h\.makeService were never closed; the shared service was replaced outside h\.reconfigure/,
    );
    expect(leakedClosed).toBe(true);
  });

  test('#14.20 every package the tests, their support code, scripts and bench require is a direct dependency', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const declared = new Set([
      pkg.name,
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.devDependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ]);
    const files = [];
    const walk = (dir) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'node_modules' && e.name !== 'results') walk(p);
        } else if (/\.(c?js)$/.test(e.name)) {
          files.push(p);
        }
      }
    };
    for (const dir of ['__test__', 'scripts', 'bench', 'demo', 'soak']) {
      if (fs.existsSync(path.join(ROOT, dir))) walk(path.join(ROOT, dir));
    }
    expect(files.length).toBeGreaterThan(10);
    const missing = new Set();
    let seen = 0;
    for (const file of files) {
      const text = fs.readFileSync(file, 'utf8');
      // Static requires of bare names (not ./, ../, ~/, node:).
      for (const m of text.matchAll(/\brequire\(\s*['"]([^'"./~][^'"]*)['"]\s*\)/g)) {
        const spec = m[1];
        if (spec.includes('${')) continue; // a template for a child's script, not a require of ours
        if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
        // A require in a comment or a string (documentation, a child's script) counts as well.
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        seen++;
        if (!declared.has(name)) missing.add(`${name} (${path.relative(ROOT, file)})`);
      }
    }
    expect(seen).toBeGreaterThan(20);
    expect([...missing]).toEqual([]);
  });
});

describe('#14.3 the secrets-in-logs check searches every secret a test sends or configures', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'review-secrets' });
  });
  afterEach(() => {
    h.logs.lines.length = 0; // the lines planted below must not fail close()
  });
  afterAll(() => h.close());

  const planted = (line) => {
    h.logs.logger.warn(line);
    return () => h.assertNoSecretsLogged();
  };

  test('#14.3 a wrong password a request sent', async () => {
    await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'a-wrong-password-9' });
    expect(planted('login failed: a-wrong-password-9')).toThrow(/secret appears/);
  });

  test('#14.3 JWT_SECRET, JWT_REFRESH_SECRET and BACKEND_TOKEN_ENCRYPTION_KEY', () => {
    for (const name of ['JWT_SECRET', 'JWT_REFRESH_SECRET', 'BACKEND_TOKEN_ENCRYPTION_KEY']) {
      expect(planted(`value ${h.vars[name]}`)).toThrow(/secret appears/);
      h.logs.lines.length = 0;
    }
  });

  test('#14.3 the password of a MONGO_URI configured later', async () => {
    await h.reconfigure({ MONGO_URI: 'mongodb://lc:s3cr3t-pass%2Dword@127.0.0.1:9/x', MONGO_TIMEOUT_MS: '200' });
    expect(planted('cannot reach the database with s3cr3t-pass-word')).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    await h.reconfigure({ MONGO_URI: h.vars.MONGO_URI });
  });

  test('#14.3 an access token and a refresh token the app answered, and a bearer token a request sent', async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    const refresh = /refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1];
    expect(planted(`token ${res.body.token}`)).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    expect(planted(`refresh ${decodeURIComponent(refresh)}`)).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    await request(h.app).get('/api/user').set('Authorization', 'Bearer some-forged-token-123');
    expect(planted('refused some-forged-token-123')).toThrow(/secret appears/);
  });
});
