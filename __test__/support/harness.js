'use strict';

/**
 * One test file's world: a mock backend, the LibreChat-shaped app wired with our package as
 * docs/install.md says, its shared service configured for both, and every log line captured.
 *
 *   const h = await startHarness({ db: 'login-e5', express: require('express') });
 *   await request(h.app).post('/api/auth/login').send({ email, password });
 *   h.assertNoSecretsLogged([...extra]);
 *   await h.close();
 */

const crypto = require('crypto');
const { startMockBackend } = require('./mockBackend');
const { createLibreChatApp } = require('./librechat/server');
const { mongoUri } = require('./mongoUri');

const TEST_ENV = Object.freeze({
  USE_CUSTOM_BACKEND_AUTH: 'true',
  JWT_SECRET: 'test-jwt-secret-0123456789',
  JWT_REFRESH_SECRET: 'test-jwt-refresh-secret-0123456789',
  BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
  SESSION_EXPIRY: '1000 * 60 * 15',
  REFRESH_TOKEN_EXPIRY: '(1000 * 60 * 60 * 24) * 7',
  BACKEND_TIMEOUT_MS: '2000',
  // LibreChat's login limiter (7 per 5 minutes per IP) would stop the suites; one test lowers it.
  LOGIN_MAX: '1000000',
  // Every refusal its own log line, as the suites count them; #21.9 (audit.spec.js) checks the counting.
  AUTH_LOG_REPEAT_SECONDS: '0',
});

/** A logger that keeps every line, plus console capture for anything logged elsewhere. */
function captureLogs() {
  const lines = [];
  const keep = (level) => (...args) => lines.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`);
  const logger = { error: keep('error'), warn: keep('warn'), info: keep('info'), debug: keep('debug') };
  const spies = ['log', 'info', 'warn', 'error', 'debug'].map((m) => jest.spyOn(console, m).mockImplementation(keep(`console.${m}`)));
  return { lines, logger, restore: () => spies.forEach((s) => s.mockRestore()) };
}

function backendVars(mock) {
  return {
    BACKEND_AUTH_URL: mock.urls.login,
    BACKEND_USER_INFO_URL: mock.urls.userinfo,
    BACKEND_REFRESH_URL: mock.urls.refresh,
  };
}

async function startHarness({ db, express = require('express'), version, env = {}, mockOptions, appConfig } = {}) {
  const logs = captureLogs();
  const mock = await startMockBackend(mockOptions);
  const vars = { ...TEST_ENV, ...backendVars(mock), MONGO_URI: mongoUri(db), ...env };
  // LibreChat's own code (the stock jwt strategy) reads these from process.env.
  Object.assign(process.env, vars);
  const pkg = require('../..');
  // Secrets seen during the run: what must never appear in a log line (see assertNoSecretsLogged).
  const secrets = new Set([...mock.users.map((u) => u.password), mock.introspectionClient.secret]);
  const keepConfigSecrets = (extra) => {
    for (const [name, value] of Object.entries(extra)) {
      if (typeof value !== 'string') continue;
      if (/SECRET|KEY/.test(name)) secrets.add(value);
      if (/URI|URL/.test(name)) secrets.add(uriPassword(value));
    }
  };
  keepConfigSecrets(vars);
  let service = pkg.configureCustomBackendAuth({ ...vars, logger: logs.logger });
  // Services built by h.makeService and not yet closed: close() closes them and fails the file.
  const unclosed = new Set();
  const lc = await createLibreChatApp({
    express,
    version,
    mongoUri: vars.MONGO_URI,
    logger: logs.logger,
    appConfig,
    inspect: (req, res) => keepExchangedSecrets(req, res, secrets),
  });
  const rawDb = lc.connection.db;

  return {
    mock,
    lc,
    app: lc.app,
    vars,
    logs,
    db: rawDb,
    secrets,
    /** Removes users, sessions, balances and pending 2FA logins (indexes stay). */
    async clear() {
      await Promise.all(['users', 'sessions', 'balances', 'customBackendPending2fa', 'customBackendRevocations', 'customBackendEvents'].map((c) => rawDb.collection(c).deleteMany({})));
      mock.reset({ users: true });
    },
    async counts() {
      const [users, sessions, balances] = await Promise.all(
        ['users', 'sessions', 'balances'].map((c) => rawDb.collection(c).countDocuments({})),
      );
      return { users, sessions, balances };
    },
    get service() {
      return service;
    },
    /** Replaces the shared service (the one the app's handlers use) with other variables. */
    async reconfigure(extra = {}) {
      keepConfigSecrets(extra);
      const old = service;
      service = pkg.configureCustomBackendAuth({ ...vars, ...extra, logger: logs.logger });
      await old.close();
      return service;
    },
    /** Builds a second service over the same world with other variables. */
    makeService(extra = {}) {
      keepConfigSecrets(extra);
      const made = new pkg.CustomBackendAuthService({ ...vars, ...extra, logger: logs.logger });
      unclosed.add(made);
      const close = made.close.bind(made);
      made.close = () => {
        unclosed.delete(made);
        return close();
      };
      return made;
    },
    /**
     * Fails when a log line holds a secret: every password, token and refresh token a request sent
     * or a response carried, every token the mock backend issued, every secret, key and URI
     * password configured, and `extra`. Strings shorter than 8 characters are not searched (they
     * match ordinary words).
     */
    assertNoSecretsLogged(extra = []) {
      const all = [...secrets, ...mock.issuedTokens(), ...extra].filter((s) => typeof s === 'string' && s.length >= 8);
      expect(all.length).toBeGreaterThan(0);
      for (const line of logs.lines) {
        for (const secret of all) {
          if (line.includes(secret)) throw new Error(`a secret appears in a log line: ${line.slice(0, 80)}…`);
        }
      }
    },
    /**
     * Closes everything, then checks every line logged during the run for secrets, and that every
     * service the tests built was closed by them: one left open holds its database connections
     * (and a test that forgets it elsewhere leaks them in production code too). The shared service
     * must be replaced with h.reconfigure, which closes the one it replaces.
     */
    async close() {
      logs.restore();
      const leaked = [...unclosed];
      const shared = pkg.getAuthService();
      const replaced = shared !== service;
      for (const s of leaked) await s.close();
      if (replaced) await shared.close();
      await service.close();
      await lc.close();
      await mock.close();
      this.assertNoSecretsLogged();
      const problems = [];
      if (leaked.length) problems.push(`${leaked.length} service(s) built with h.makeService were never closed`);
      if (replaced) problems.push('the shared service was replaced outside h.reconfigure and never closed');
      if (problems.length) throw new Error(`${problems.join('; ')} (closed now)`);
    },
  };
}

/** Before each test: a fresh shared service (the harness's variables), then empty collections. */
async function freshService(h) {
  await h.reconfigure();
  await h.clear();
}

/** Before each test: empty collections and a mock backend with its default switches, same service. */
async function clearWorld(h) {
  await h.clear();
  h.mock.reset();
}

/**
 * A describe block's usual hooks: `startHarness(options)` before all (handed to `set`), `each(h)`
 * before each test (freshService or clearWorld), and after all the secrets check with `seen` (when
 * given) and close.
 *
 *   let h;
 *   const seen = [];
 *   harnessHooks({ db: 'jwt' }, (made) => (h = made), { each: freshService, seen });
 */
function harnessHooks(options, set, { each, seen } = {}) {
  let h;
  beforeAll(async () => {
    h = await startHarness(options);
    set(h);
  });
  beforeEach(() => each(h));
  afterAll(async () => {
    if (seen) h.assertNoSecretsLogged(seen);
    await h.close();
  });
}

/** BSON type names of a raw document's fields, for diffs against LibreChat's own writes. */
function shape(doc) {
  const typeOf = (v) => {
    if (v === null) return 'null';
    if (v instanceof Date) return 'date';
    if (Array.isArray(v)) return 'array';
    if (v?._bsontype) return v._bsontype;
    if (typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, typeOf(v[k])]));
    return typeof v;
  };
  return typeOf(doc);
}

/** The password of a URI with credentials (`mongodb://user:pass@host`), else null. */
function uriPassword(uri) {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/@:]*:([^/@]*)@/i.exec(uri);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/** Keeps the secrets a request carries (password, bearer token, cookies) and those its answer sets. */
function keepExchangedSecrets(req, res, secrets) {
  const body = req.body !== null && typeof req.body === 'object' ? req.body : {};
  for (const key of ['password', 'refresh_token', 'token', 'tempToken']) {
    if (typeof body[key] === 'string') secrets.add(body[key]);
  }
  const auth = /^\s*bearer\s+(\S+)/i.exec(req.headers.authorization ?? '');
  if (auth) secrets.add(auth[1]);
  if (typeof req.cookies?.refreshToken === 'string') secrets.add(req.cookies.refreshToken);
  const cookie = res.cookie;
  res.cookie = function (name, value, ...rest) {
    if (name === 'refreshToken') secrets.add(String(value));
    return cookie.call(this, name, value, ...rest);
  };
  const json = res.json;
  res.json = function (payload) {
    for (const key of ['token', 'tempToken', 'refreshToken']) {
      if (typeof payload?.[key] === 'string') secrets.add(payload[key]);
    }
    return json.call(this, payload);
  };
}

/** `Set-Cookie` headers of a response as { name: { value, attrs } }. */
function parseSetCookies(res) {
  const out = {};
  for (const header of res.headers['set-cookie'] ?? []) {
    const [pair, ...attrs] = header.split(';').map((s) => s.trim());
    const i = pair.indexOf('=');
    const name = pair.slice(0, i);
    const attrMap = {};
    for (const a of attrs) {
      const j = a.indexOf('=');
      attrMap[(j < 0 ? a : a.slice(0, j)).toLowerCase()] = j < 0 ? true : a.slice(j + 1);
    }
    out[name] = { value: decodeURIComponent(pair.slice(i + 1)), attrs: attrMap };
  }
  return out;
}

module.exports = { startHarness, harnessHooks, freshService, clearWorld, parseSetCookies, shape, TEST_ENV, backendVars, captureLogs };
