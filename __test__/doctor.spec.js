'use strict';

// `librechat-custom-backend-auth doctor` (bin/cli.js) run as a child process, as an operator runs it:
// a good configuration, a down backend, a backend answering 5xx or redirecting, databases made by
// LibreChat's models (the installed @librechat/data-schemas, and as LibreChat v0.8.8-rc1 makes it),
// a database without LibreChat's indexes (MONGO_AUTO_INDEX) or collections, an invalid
// configuration, NODE_ENV, the .env of LibreChat's root, and MONGO_URI with a password.
// No run may print a secret.

const fs = require('fs');
const os = require('os');
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const { Mongoose } = require('mongoose');
const { createModels } = require('@librechat/data-schemas');
const { startMockBackend } = require('./support/mockBackend');
const { mongoUri } = require('./support/mongoUri');
const { closedPort } = require('./support/tcpProxy');

const CLI = path.join(__dirname, '..', 'bin', 'cli.js');

const DB_OK = 'doctor-ok';
const DB_RC1 = 'doctor-rc1';
const DB_NO_INDEXES = 'doctor-noidx';
const DB_EMPTY = 'doctor-empty';

// The collections doctor checks, by the model names of @librechat/data-schemas.
const CHECKED_MODELS = { users: 'User', sessions: 'Session', balances: 'Balance' };
const DATA_SCHEMAS_VERSION = JSON.parse(fs.readFileSync(
  path.join(path.dirname(require.resolve('@librechat/data-schemas')), '..', 'package.json'), 'utf8')).version;

/** mongosh-like, as doctor prints: `{googleId: {$exists: true}}`. */
function fmt(v) {
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${fmt(x)}`).join(', ')}}`;
  return typeof v === 'string' ? `"${v}"` : String(v);
}

/**
 * The indexes LibreChat's models define on the checked collections, read from the installed
 * data-schemas now (`schema.indexes()` holds the schema-level indexes and the fields' `index`,
 * `unique`, `sparse` and `expires`), each as the command that creates it.
 */
function librechatIndexes() {
  const models = createModels(new Mongoose());
  const out = {};
  for (const [collection, name] of Object.entries(CHECKED_MODELS)) {
    out[collection] = models[name].schema.indexes().map(([keys, opts]) => {
      // An option doctor does not compare would be drift of a new kind: fail here.
      const known = ['unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression', 'background'];
      expect(Object.keys(opts).filter((k) => !known.includes(k))).toEqual([]);
      const o = [];
      if (opts.unique) o.push('unique: true');
      if (opts.sparse) o.push('sparse: true');
      if (opts.expireAfterSeconds !== undefined) o.push(`expireAfterSeconds: ${opts.expireAfterSeconds}`);
      if (opts.partialFilterExpression) o.push(`partialFilterExpression: ${fmt(opts.partialFilterExpression)}`);
      return `db.${collection}.createIndex(${fmt(keys)}${o.length ? `, {${o.join(', ')}}` : ''})`;
    });
  }
  return out;
}

/**
 * A database as LibreChat makes it with MONGO_AUTO_INDEX unset (`api/db/connect.js` then passes
 * no autoIndex, mongoose's default is on): every model of createModels, init() (its collection
 * and its indexes).
 */
async function librechatDatabase(dbName) {
  const lc = new Mongoose();
  const models = createModels(lc);
  await lc.connect(mongoUri(dbName));
  await Promise.all(Object.values(models).map((m) => m.init()));
  return lc;
}

// Throwaway secrets, distinct per run: none of them may appear in any output.
const SECRETS = Object.freeze({
  JWT_SECRET: `doctor-jwt-${crypto.randomBytes(12).toString('hex')}`,
  JWT_REFRESH_SECRET: `doctor-refresh-${crypto.randomBytes(12).toString('hex')}`,
  BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
});
const DB_PASSWORD = `Db-Pa55-${crypto.randomBytes(8).toString('hex')}`;

let mock;
let mongoose;
let tmp;
let redirector;

function baseEnv(extra = {}) {
  return {
    PATH: process.env.PATH,
    // The mock backend speaks http://; without NODE_ENV doctor checks as production.
    BACKEND_ALLOW_INSECURE_HTTP: 'true',
    ...SECRETS,
    BACKEND_AUTH_URL: mock.urls.login,
    BACKEND_USER_INFO_URL: mock.urls.userinfo,
    BACKEND_REFRESH_URL: mock.urls.refresh,
    MONGO_URI: mongoUri(DB_OK),
    BACKEND_TIMEOUT_MS: '2000',
    MONGO_TIMEOUT_MS: '3000',
    ...extra,
  };
}

/** Runs the CLI in an empty folder whose parent is empty too (no stray .env): { code, stdout, stderr, all }. */
function runCli(args, env, cwd = path.join(tmp, 'cwd')) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, cwd, timeout: 25000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, all: `${stdout}\n${stderr}` });
    });
  });
}

function expectNoSecret(all, extra = []) {
  for (const secret of [...Object.values(SECRETS), DB_PASSWORD, ...extra]) {
    expect(all.includes(secret)).toBe(false);
  }
}

const lines = (out, level) => out.split('\n').filter((l) => l.trimStart().startsWith(`${level} `));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-doctor-'));
  mock = await startMockBackend({ jwtTokens: 'RS256' });
  redirector = http.createServer((req, res) => {
    res.writeHead(302, { Location: 'https://elsewhere.example/sso?ticket=REDIRECT-TICKET-123' });
    res.end();
  });
  await new Promise((resolve) => redirector.listen(0, '127.0.0.1', resolve));

  fs.mkdirSync(path.join(tmp, 'cwd'));

  mongoose = new Mongoose();
  await mongoose.connect(mongoUri(DB_OK), { autoIndex: false, autoCreate: false });
  for (const db of [DB_OK, DB_RC1, DB_NO_INDEXES, DB_EMPTY]) await mongoose.connection.useDb(db).dropDatabase();

  // LibreChat's models create the collections and indexes of DB_OK and DB_RC1.
  for (const db of [DB_OK, DB_RC1]) await (await librechatDatabase(db)).disconnect();
  // LibreChat v0.8.8-rc1 (commit 0ab3414c; data-schemas 0.0.68 in its source,
  // packages/data-schemas/src/schema/session.ts) defines no {user, refreshTokenHash} index on
  // sessions, which the installed data-schemas does: its database lacks exactly that one.
  await mongoose.connection.useDb(DB_RC1).collection('sessions').dropIndex('user_1_refreshTokenHash_1');

  // Collections without LibreChat's indexes (as LibreChat's first writes leave them with
  // MONGO_AUTO_INDEX off), and a database without the collections.
  const noIdx = mongoose.connection.useDb(DB_NO_INDEXES);
  await noIdx.collection('users').insertOne({ email: 'someone@example.com', provider: 'local' });
  await noIdx.collection('sessions').insertOne({ refreshTokenHash: 'x', expiration: new Date() });
  await noIdx.collection('balances').insertOne({ tokenCredits: 0 });
});

afterAll(async () => {
  await mongoose?.disconnect();
  await mock?.close();
  await new Promise((resolve) => (redirector ? redirector.close(resolve) : resolve()));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => mock.reset());

test('a good configuration: exit 0, every check OK, no credentials sent, no secret printed', async () => {
  const env = baseEnv({
    BACKEND_LOGOUT_URL: mock.urls.logout,
    BACKEND_BEARER_TOKENS: 'jwks',
    BACKEND_JWKS_URL: mock.urls.jwks,
    BACKEND_JWT_ISSUER: mock.issuer,
  });
  const r = await runCli(['doctor'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^Effective configuration$/m);
  expect(r.stdout).toMatch(/^ {2}JWT_SECRET +=/m);
  expect(r.stdout).toContain(`= set (${SECRETS.JWT_SECRET.length} chars)`);
  expect(r.stdout).toContain('= set (64 chars)');
  expect(r.stdout).toMatch(/^ {2}BACKEND_SESSION_MODE += \(default\) librechat$/m);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([]);
  const ok = lines(r.stdout, 'OK').join('\n');
  for (const name of ['configuration', 'BACKEND_AUTH_URL', 'BACKEND_USER_INFO_URL', 'BACKEND_REFRESH_URL',
    'BACKEND_LOGOUT_URL', 'BACKEND_JWKS_URL', 'database']) {
    expect(ok).toContain(`${name}: `);
  }
  expect(ok).toMatch(/BACKEND_JWKS_URL: .* answers with 1 usable signing key/);
  for (const [collection, list] of Object.entries(librechatIndexes())) {
    expect(ok).toContain(`${collection}: ${list.length} of the ${list.length} indexes LibreChat's models define are present`);
  }
  expect(r.stdout).toMatch(/^No problems found\.$/m);
  expectNoSecret(r.all);

  // Each URL got one bare GET: no Authorization, no cookie, no body.
  expect(mock.requests.map((q) => q.name).sort()).toEqual(['jwks', 'login', 'logout', 'refresh', 'userinfo']);
  for (const q of mock.requests) {
    expect(q.method).toBe('GET');
    expect(q.headers.authorization).toBeUndefined();
    expect(q.headers.cookie).toBeUndefined();
    expect(q.rawBody || '').toBe('');
  }
});

test('reads .env from the current folder, --env-file and --env; the environment wins', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'envfile-'));
  const file = Object.entries(SECRETS).map(([k, v]) => `${k}="${v}"`).join('\n');
  fs.writeFileSync(path.join(dir, '.env'), `# LibreChat .env\n${file}\nBACKEND_TIMEOUT_MS=1\n`);
  const env = baseEnv();
  for (const k of Object.keys(SECRETS)) delete env[k];
  let r = await runCli(['doctor'], env, dir);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Env file: ${path.join(dir, '.env')}`);
  expect(r.stdout).toMatch(/^ {2}BACKEND_TIMEOUT_MS += 2000$/m); // process.env wins over the file
  expectNoSecret(r.all);

  const other = path.join(dir, 'other.env');
  fs.writeFileSync(other, file);
  r = await runCli(['doctor', '--env-file', other], env, tmp);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Env file: ${other}`);
  expectNoSecret(r.all);

  r = await runCli(['doctor', `--env=${other}`], env, tmp);
  expect(r.code).toBe(0);

  // (`--env-file missing.env` would be stopped by Node 20 itself, exit code 9.)
  r = await runCli(['doctor', '--env', path.join(dir, 'missing.env')], env, tmp);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/cannot read the env file/);
});

test('a down backend: exit 1 and one PROBLEM line naming BACKEND_REFRESH_URL', async () => {
  const port = await closedPort();
  const r = await runCli(['doctor'], baseEnv({ BACKEND_REFRESH_URL: `http://127.0.0.1:${port}/api/auth/refresh?k=v` }));
  expect(r.code).toBe(1);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([
    `  PROBLEM  BACKEND_REFRESH_URL: no answer from 127.0.0.1:${port} (connection refused)`,
  ]);
  expect(r.stdout).toMatch(/OK +BACKEND_AUTH_URL: /);
  expect(r.stdout).toMatch(/^ {2}BACKEND_REFRESH_URL += +http:\/\/127\.0\.0\.1:\d+\/api\/auth\/refresh\?…$/m);
  expect(r.stdout).toMatch(/^1 problem found\.$/m);
  expectNoSecret(r.all);
});

test('a backend answering 5xx, and one redirecting: PROBLEM each, redirect target without its query', async () => {
  mock.set({ userinfo: { status: 503 } });
  const { port } = redirector.address();
  const r = await runCli(['doctor'], baseEnv({ BACKEND_LOGOUT_URL: `http://127.0.0.1:${port}/logout` }));
  expect(r.code).toBe(1);
  const problems = lines(r.stdout, 'PROBLEM');
  expect(problems).toHaveLength(2);
  expect(problems[0]).toMatch(/PROBLEM +BACKEND_USER_INFO_URL: http:\/\/127\.0\.0\.1:\d+\/api\/auth\/userinfo answers HTTP 503 \(server error\)$/);
  expect(problems[1]).toMatch(/PROBLEM +BACKEND_LOGOUT_URL: .* answers HTTP 302, a redirect to https:\/\/elsewhere\.example\/sso\?…; redirects are not followed/);
  expect(r.all).not.toContain('REDIRECT-TICKET-123');
  expectNoSecret(r.all);
});

test('#10.6 a database LibreChat\'s models make: exit 0, and doctor checks exactly their indexes, as of the installed data-schemas', async () => {
  const expected = librechatIndexes();
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_OK) }));
  expect(r.code).toBe(0);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([]);
  for (const [collection, list] of Object.entries(expected)) {
    expect(r.stdout).toContain(`OK       ${collection}: ${list.length} of the ${list.length} indexes LibreChat's models define are present (as of @librechat/data-schemas ${DATA_SCHEMAS_VERSION})`);
  }
  // Nothing about LibreChat's indexes is missing, so MONGO_AUTO_INDEX is not mentioned.
  expect(r.stdout).not.toMatch(/MONGO_AUTO_INDEX:/);
});

test('#10.6 a database as LibreChat v0.8.8-rc1 makes it (no unique {user, refreshTokenHash} on sessions): exit 0', async () => {
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_RC1) }));
  expect(lines(r.stdout, 'PROBLEM')).toEqual([]);
  expect(r.code).toBe(0);
  expect(lines(r.stdout, 'INFO').join('\n')).toMatch(/INFO +sessions: missing index \{user: 1, refreshTokenHash: 1\} \{unique: true\} \(defined by @librechat\/data-schemas 0\.0\.71 \(after LibreChat v0\.8\.8-rc1\) and newer\)/);
  expect(r.stdout).toMatch(/INFO +sessions: 2 of the 3 indexes LibreChat's models define are present/);
  expect(r.stdout).toMatch(/OK +users: 15 of the 15 indexes/);
  // v0.8.8-rc1 would not create it either: nothing to say about MONGO_AUTO_INDEX.
  expect(r.stdout).not.toMatch(/MONGO_AUTO_INDEX:/);
});

test('#10.6 without indexes and MONGO_AUTO_INDEX empty: a line with the exact createIndex command per index of LibreChat\'s models, and MONGO_AUTO_INDEX named as the cause', async () => {
  const expected = Object.values(librechatIndexes()).flat();
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_NO_INDEXES), MONGO_AUTO_INDEX: '' }));
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/OK +database: reachable at .*, database "doctor-noidx"/);
  const commands = r.stdout.split('\n')
    .map((l) => / (?:users|sessions|balances): .*; create it: (db\.(?:users|sessions|balances)\.createIndex\(.*\))$/.exec(l))
    .filter(Boolean).map((m) => m[1]);
  expect(commands.sort()).toEqual([...expected].sort());
  const problems = lines(r.stdout, 'PROBLEM');
  // #22.6 counted apart: those every LibreChat since v0.7.9 defines, and those only newer ones do.
  const newer = lines(r.stdout, 'INFO').filter((l) => /: missing index .*create it:/.test(l)).length;
  const counts = `${expected.length - newer}, and ${newer} that only a newer LibreChat defines`;
  expect(newer).toBeGreaterThan(0);
  expect(problems[problems.length - 1]).toBe(`  PROBLEM  MONGO_AUTO_INDEX: is empty (as in LibreChat's .env.example), which turns LibreChat's index creation off (anything but true does): that is why its indexes are missing (${counts}). Set MONGO_AUTO_INDEX=true and start LibreChat once (it creates every model's indexes, on all its collections; keep it, or set it back afterwards), or create them with the commands above`);
  // Required (every LibreChat since v0.7.9 defines them): PROBLEM; only newer LibreChat: INFO.
  expect(problems.join('\n')).toContain('PROBLEM  sessions: missing index {expiration: 1} {expireAfterSeconds: 0}; create it: db.sessions.createIndex({expiration: 1}, {expireAfterSeconds: 0})');
  expect(problems.join('\n')).toContain('PROBLEM  users: missing index {email: 1, tenantId: 1} {unique: true} (LibreChat v0.7.9 to v0.8.4: {email: 1} {unique: true}); create it: db.users.createIndex({email: 1, tenantId: 1}, {unique: true})');
  expect(r.stdout).toMatch(/^ {2}INFO +sessions: missing index \{tenantId: 1\} \(defined by LibreChat v0\.8\.5 and newer\); create it: db\.sessions\.createIndex\(\{tenantId: 1\}\)$/m);
  expect(r.stdout).not.toMatch(/LibreChat creates it at start-up/);
  expectNoSecret(r.all);

  // The same database with MONGO_AUTO_INDEX unset: LibreChat would create them; it never started here.
  const unset = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_NO_INDEXES) }));
  expect(unset.code).toBe(1);
  expect(lines(unset.stdout, 'INFO').join('\n')).toMatch(/INFO +MONGO_AUTO_INDEX: not set: LibreChat creates its models' indexes when it starts, so the missing ones \(\d+, and \d+ that only a newer LibreChat defines\) were never created/);
  expect(unset.stdout).not.toMatch(/PROBLEM +MONGO_AUTO_INDEX/);
});

test('#25 with tenants in use, LibreChat\'s tenant-aware indexes are required: missing, a PROBLEM rather than INFO', async () => {
  const env = baseEnv({ MONGO_URI: mongoUri(DB_NO_INDEXES) });
  const r = await runCli(['doctor'], { ...env, TRUST_TENANT_HEADER: 'true' });
  expect(r.stdout).toMatch(/INFO +tenants: in use \(TRUST_TENANT_HEADER, BACKEND_TENANT_FIELD or users with a tenantId\)/);
  expect(lines(r.stdout, 'PROBLEM').join('\n')).toMatch(/PROBLEM +sessions: missing index \{tenantId: 1\} \(defined by LibreChat v0\.8\.5 and newer\), needed with tenants in use;/);
  expect(lines(r.stdout, 'PROBLEM').join('\n')).toMatch(/PROBLEM +users: missing index \{email: 1, tenantId: 1\} \{unique: true\} .*, needed with tenants in use;/);
  // The same database without tenants: those are information only, and no tenants line.
  const without = await runCli(['doctor'], env);
  expect(without.stdout).toMatch(/INFO +sessions: missing index \{tenantId: 1\} \(defined by LibreChat v0\.8\.5 and newer\);/);
  expect(without.stdout).not.toMatch(/tenants: in use/);
  // A user with a tenantId is enough to count as in use.
  const users = mongoose.connection.useDb(DB_NO_INDEXES).collection('users');
  try {
    await users.insertOne({ email: 'x@acme.io', tenantId: 'acme' });
    const byData = await runCli(['doctor'], env);
    expect(byData.stdout).toMatch(/tenants: in use/);
  } finally {
    await users.deleteMany({ tenantId: 'acme' });
  }
});

test('#10.6 run in LibreChat\'s api/ folder: reads the root\'s .env (../.env) and says which file it used', async () => {
  const root = fs.mkdtempSync(path.join(tmp, 'librechat-'));
  const api = path.join(root, 'api');
  fs.mkdirSync(api);
  const file = Object.entries(SECRETS).map(([k, v]) => `${k}="${v}"`).join('\n');
  fs.writeFileSync(path.join(root, '.env'), `# LibreChat's .env\n${file}\nMONGO_AUTO_INDEX=\n`);
  const env = baseEnv();
  for (const k of Object.keys(SECRETS)) delete env[k];
  let r = await runCli(['doctor'], env, api);
  expect(r.stdout).toContain(`Env file: ${path.join(root, '.env')}`);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([]);
  expect(r.code).toBe(0);
  // MONGO_AUTO_INDEX came from that file: indexes all there, but upgrades will not add theirs.
  expect(r.stdout).toMatch(/INFO +MONGO_AUTO_INDEX: is empty \(as in LibreChat's \.env\.example\): LibreChat creates no indexes/);
  expectNoSecret(r.all);

  // A .env in the current folder comes first; none in either: the process environment only.
  r = await runCli(['doctor'], env, root);
  expect(r.stdout).toContain(`Env file: ${path.join(root, '.env')}`);
  r = await runCli(['doctor'], baseEnv());
  expect(r.stdout).toContain('Env file: (none in this folder or its parent; process environment only)');
});

test('#10.6 without NODE_ENV doctor checks as production: an http:// backend URL is the problem npm run backend would stop on', async () => {
  const env = baseEnv();
  delete env.BACKEND_ALLOW_INSECURE_HTTP;
  let r = await runCli(['doctor'], env);
  expect(r.code).toBe(1);
  expect(lines(r.stdout, 'INFO')).toContain('  INFO     NODE_ENV: not set here: checked as production, which `npm run backend` and LibreChat\'s Docker image set (set NODE_ENV=development to check for `npm run backend:dev`)');
  expect(lines(r.stdout, 'PROBLEM')).toEqual([
    expect.stringMatching(/^ {2}PROBLEM {2}configuration: \[CONFIG_INVALID\] BACKEND_AUTH_URL: must use https:\/\/ when NODE_ENV=production/),
  ]);

  // NODE_ENV=development: checked as such, with what production will do.
  r = await runCli(['doctor'], { ...env, NODE_ENV: 'development' });
  expect(r.code).toBe(0);
  expect(lines(r.stdout, 'INFO').join('\n')).toMatch(/INFO +NODE_ENV: is "development": checked as such, but `npm run backend` and LibreChat's Docker image start with NODE_ENV=production, whatever \.env says; production refuses it at start: \[CONFIG_INVALID\] BACKEND_AUTH_URL: must use https:\/\//);
});

test('a database without the collections: a PROBLEM line for each of LibreChat\'s', async () => {
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_EMPTY) }));
  expect(r.code).toBe(1);
  const missing = (c) => `  PROBLEM  ${c}: collection missing in database "doctor-empty"; start LibreChat once against this database (it creates the collections and their indexes), and check that MONGO_URI names LibreChat's database`;
  expect(lines(r.stdout, 'PROBLEM')).toEqual([missing('users'), missing('sessions'), missing('balances')]);
  expect(r.stdout).toMatch(/INFO +customBackendPending2fa: not created yet/);

  // #10.6 With MONGO_AUTO_INDEX off (and MONGO_AUTO_CREATE, as .env.example has them) a collection
  // appears only at LibreChat's first write: the one problem is the setting.
  const off = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_EMPTY), MONGO_AUTO_INDEX: '' }));
  expect(off.code).toBe(1);
  expect(lines(off.stdout, 'PROBLEM')).toEqual([expect.stringMatching(new RegExp(`^ {2}PROBLEM {2}MONGO_AUTO_INDEX: is empty .*: that is why its indexes are missing \\(\\d+, and \\d+ that only a newer LibreChat defines\\)\\.`))]);
  expect(lines(off.stdout, 'INFO').join('\n')).toMatch(/INFO +balances: collection not created yet in database "doctor-empty" \(LibreChat creates it at start-up, or at its first write with MONGO_AUTO_CREATE off/);
});

test.each([
  ['JWT_REFRESH_SECRET', { JWT_REFRESH_SECRET: SECRETS.JWT_SECRET }],
  ['MONGO_URI', { MONGO_URI: '' }],
  ['BACKEND_TIMEOUT_MS', { BACKEND_TIMEOUT_MS: '0' }],
])('an invalid configuration: exit 1 and the variable named (%s)', async (name, extra) => {
  const r = await runCli(['doctor'], baseEnv(extra));
  expect(r.code).toBe(1);
  const problems = lines(r.stdout, 'PROBLEM');
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatch(new RegExp(`PROBLEM +configuration: \\[CONFIG_INVALID\\] ${name}: `));
  expect(r.stdout).toMatch(/^Effective configuration$/m);
  expectNoSecret(r.all);
});

test('MONGO_URI with user:password: the password is never printed', async () => {
  const withCredentials = mongoUri(DB_OK).replace('mongodb://', `mongodb://doctor-user:${DB_PASSWORD}@`);
  let r = await runCli(['doctor'], baseEnv({ MONGO_URI: `${withCredentials}?authSource=admin` }));
  expect(r.stdout).toMatch(/^ {2}MONGO_URI += +mongodb:\/\/doctor-user:\*\*\*@127\.0\.0\.1:\d+\/doctor-ok\?authSource=admin$/m);
  // The test server may ignore or refuse the credentials: either way, one database line.
  expect(r.stdout).toMatch(/(OK +database: reachable|PROBLEM +database: unreachable at 127\.0\.0\.1:\d+ \(authentication failed)/);
  expectNoSecret(r.all);

  const port = await closedPort();
  r = await runCli(['doctor'], baseEnv({
    MONGO_URI: `mongodb://doctor-user:${DB_PASSWORD}@127.0.0.1:${port}/lc`,
    MONGO_TIMEOUT_MS: '1500',
  }));
  expect(r.code).toBe(1);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([
    `  PROBLEM  database: unreachable at 127.0.0.1:${port} (connection refused; no server selected within 1500 ms)`,
  ]);
  expectNoSecret(r.all);
});

test('usage: --help exits 0; an unknown command or option exits 2 with the usage', async () => {
  const env = { PATH: process.env.PATH };
  let r = await runCli(['--help'], env);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Usage: librechat-custom-backend-auth <command>/);
  r = await runCli(['frobnicate'], env);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown command frobnicate[\s\S]*Usage:/);
  r = await runCli([], env);
  expect(r.code).toBe(2);
  r = await runCli(['doctor', '--verbose'], env);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown option --verbose/);
});

describe('#22.6 doctor checks the wiring while the switch is on', () => {
  const { stockOf, wiredOf, makeTree } = require('./support/librechatTrees');
  const wiring = require('../lib/wiring');
  const ON = { USE_CUSTOM_BACKEND_AUTH: 'true', ALLOW_REGISTRATION: 'true' };

  test('#22.6 not wired: a PROBLEM naming the files; exit 1', async () => {
    const dir = makeTree(tmp, 'v0.8.8-rc1', stockOf('main'));
    const r = await runCli(['doctor', '--dir', dir], baseEnv(ON));
    expect(r.code).toBe(1);
    const problem = lines(r.stdout, 'PROBLEM').join('\n');
    expect(problem).toContain(`wiring: USE_CUSTOM_BACKEND_AUTH is true but LibreChat v0.8.8-rc1 in ${dir} is not wired (api/server/index.js, api/server/routes/auth.js, api/server/routes/config.js, api/server/routes/admin/auth.js)`);
    expect(problem).toContain('npx librechat-custom-backend-auth init');
    expect(problem).toContain('ALLOW_REGISTRATION: is true');
  });

  test('#22.6 wired in part (a version\'s file left out): a PROBLEM naming that file', async () => {
    const dir = makeTree(tmp, 'v0.8.8-rc1', { ...wiredOf('main'), 'api/server/routes/admin/auth.js': stockOf('main')['api/server/routes/admin/auth.js'] });
    const r = await runCli(['doctor', '--dir', dir], baseEnv(ON));
    expect(r.code).toBe(1);
    expect(lines(r.stdout, 'PROBLEM').join('\n')).toMatch(/wiring: api\/server\/routes\/admin\/auth\.js of LibreChat v0\.8\.8-rc1 .* is not wired \(the others are\)/);
  });

  test('#22.6 a line init looks for gone from a file that does not use the package: a PROBLEM; one wired by hand: not checked (INFO)', async () => {
    const files = wiredOf('main');
    files['api/server/routes/config.js'] = stockOf('main')['api/server/routes/config.js'].replace("require('~/server/services/Config/ldap')", "require('./ldap')");
    files['api/server/index.js'] = files['api/server/index.js'].replace('passport.use(useCustomAuth ? customJwtStrategy() : jwtLogin());', 'passport.use(useCustomAuth ? customJwtStrategy() : ownJwt());');
    const dir = makeTree(tmp, 'v0.8.8-rc1', files);
    const r = await runCli(['doctor', '--dir', dir], baseEnv(ON));
    expect(lines(r.stdout, 'PROBLEM').join('\n')).toContain('wiring: api/server/routes/config.js: the package, after the require of ~/server/services/Config/ldap: anchor not found, and the file does not use the package');
    expect(lines(r.stdout, 'INFO').join('\n')).toContain("wiring: api/server/index.js: the strategies: passport.use(jwtLogin());: not in the form init makes (wired by hand, or by an older wiring); not checked");
  });

  test('#22.6 the older wiring (through LibreChat\'s barrels, the patches before init): not checked (INFO), not a problem', async () => {
    const files = wiredOf('main');
    const ours = /const \{\n {2}isCustomBackendAuthEnabled,\n {2}customJwtStrategy,[^]*?\} = require\('librechat-custom-backend-auth'\);\n/;
    expect(files['api/server/index.js']).toMatch(ours);
    files['api/server/index.js'] = files['api/server/index.js'].replace(ours, "const { customJwtStrategy, customBackendStrategy } = require('~/strategies');\n");
    const dir = makeTree(tmp, 'v0.8.8-rc1', files);
    const r = await runCli(['doctor', '--dir', dir], baseEnv(ON));
    expect(lines(r.stdout, 'PROBLEM').join('\n')).not.toMatch(/ wiring: /);
    expect(lines(r.stdout, 'INFO').join('\n')).toMatch(/wiring: api\/server\/index\.js: the package, after the require of ~\/strategies: not in the form init makes/);
  });

  test('#22.6 wired: OK, and open registration is no problem (the wiring answers it 403); switched off: no wiring check', async () => {
    const dir = makeTree(tmp, 'v0.8.8-rc1', stockOf('main'));
    wiring.change(dir, 'wired');
    const r = await runCli(['doctor', '--dir', dir], baseEnv(ON));
    expect(r.code).toBe(0);
    expect(lines(r.stdout, 'OK').join('\n')).toContain(`wiring: LibreChat v0.8.8-rc1 in ${dir} is wired`);
    expect(lines(r.stdout, 'INFO').join('\n')).toMatch(/ALLOW_REGISTRATION: is true, and the wiring answers 403/);
    const off = await runCli(['doctor', '--dir', dir], baseEnv({ ALLOW_REGISTRATION: 'true' }));
    expect(off.stdout).not.toMatch(/ wiring: /);
  });

  test('#22.6 run in LibreChat\'s api/ folder with the root .env: the root is found from the env file', async () => {
    const dir = makeTree(tmp, 'v0.8.8-rc1', stockOf('main'));
    const env = baseEnv(ON);
    fs.writeFileSync(path.join(dir, '.env'), Object.entries(env).filter(([k]) => k !== 'PATH').map(([k, v]) => `${k}=${v}`).join('\n'));
    const r = await runCli(['doctor'], { PATH: process.env.PATH }, path.join(dir, 'api'));
    expect(lines(r.stdout, 'PROBLEM').join('\n')).toContain(`in ${dir} is not wired`);
  });
});

describe('#22.3 doctor --check-login: a canary login that writes nothing', () => {
  const { spawn } = require('child_process');
  const PASSWORD = 'alice-password-1';
  /** The CLI with `input` on stdin (a pipe: no terminal). */
  const runWithStdin = (args, env, input) => new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: path.join(tmp, 'cwd') });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr, all: `${stdout}\n${stderr}` }));
    child.stdin.end(input);
  });
  const counts = async () => {
    const db = mongoose.connection.useDb(DB_OK);
    return [await db.collection('users').countDocuments({}), await db.collection('sessions').countDocuments({})];
  };

  test('#22.3 the backend accepts: OK with who it is; the backend session is ended; no user, no session written; the password never printed', async () => {
    const before = await counts();
    const env = baseEnv({ BACKEND_LOGOUT_URL: mock.urls.logout, BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' });
    const r = await runWithStdin(['doctor', '--check-login', 'alice'], env, `${PASSWORD}\n`);
    expect(r.code).toBe(0);
    expect(lines(r.stdout, 'OK').join('\n')).toMatch(/check-login: the backend accepted "alice": backend id u-1001, email alice@example\.com, LibreChat user name alice, role USER; no user written, no session kept; its backend session was ended/);
    // Besides doctor's bare GET of each URL: one login posted, one logout posted.
    const posted = (name) => mock.requests.filter((q) => q.name === name && q.method === 'POST').length;
    expect([posted('login'), posted('logout')]).toEqual([1, 1]);
    expect(await counts()).toEqual(before);
    expect(r.all).not.toContain(PASSWORD);
    expectNoSecret(r.all);
  });

  test('#27 a backend asking for its second factor: the password was right, the check stops there (OK), nothing written', async () => {
    mock.addUser({ id: 'u-2001', username: 'dora', email: 'dora@example.com', password: 'dora-password-4', mfaCode: '246810' });
    try {
      const before = await counts();
      const r = await runWithStdin(['doctor', '--check-login', 'dora'], baseEnv({ BACKEND_MFA_VERIFY_URL: mock.urls.mfa }), 'dora-password-4\n');
      expect(lines(r.stdout, 'OK').join('\n')).toMatch(/check-login: the backend accepted "dora"'s password and asks for its second factor/);
      expect(await counts()).toEqual(before);
      expect(r.all).not.toContain('dora-password-4');
    } finally {
      mock.removeUser('u-2001');
    }
  });

  test('#22.3 a wrong password, and no password at all: a PROBLEM, exit 1, nothing printed of it', async () => {
    const wrong = await runWithStdin(['doctor', '--check-login', 'alice'], baseEnv(), 'not-the-password\n');
    expect(wrong.code).toBe(1);
    expect(lines(wrong.stdout, 'PROBLEM').join('\n')).toMatch(/check-login: the login failed: \[INVALID_CREDENTIALS\]/);
    expect(wrong.all).not.toContain('not-the-password');
    const none = await runWithStdin(['doctor', '--check-login', 'alice'], baseEnv(), '');
    expect(none.code).toBe(1);
    expect(lines(none.stdout, 'PROBLEM').join('\n')).toContain('check-login: no password: type it at the prompt, or give it on stdin (never on the command line)');
  });

  (fs.existsSync('/usr/bin/script') ? test : test.skip)('#22.3 at a terminal the password is asked with no echo', async () => {
    const env = baseEnv({ TERM: 'dumb' });
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} doctor --check-login alice`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env, cwd: path.join(tmp, 'cwd') });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    for (let i = 0; i < 400 && !output.includes('(not shown): '); i += 1) await new Promise((res) => setTimeout(res, 25));
    child.stdin.write(`${PASSWORD}\r`);
    const code = await new Promise((res) => child.on('close', res));
    expect(code).toBe(0);
    expect(output).toContain('Password of alice at the backend (not shown): ');
    expect(output).toMatch(/check-login: the backend accepted "alice"/);
    expect(output).not.toContain(PASSWORD);
  });
});
