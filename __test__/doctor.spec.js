'use strict';

// `librechat-custom-backend-auth doctor` (bin/cli.js) run as a child process, as an operator runs it:
// a good configuration, a down backend, a backend answering 5xx or redirecting, a database without
// LibreChat's indexes or collections, an invalid configuration, and MONGO_URI with a password.
// No run may print a secret.

const fs = require('fs');
const os = require('os');
const net = require('net');
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const { Mongoose } = require('mongoose');
const { createModels } = require('@librechat/data-schemas');
const { startMockBackend } = require('./support/mockBackend');
const { mongoUri } = require('./support/mongoUri');

const CLI = path.join(__dirname, '..', 'bin', 'cli.js');

const DB_OK = 'doctor-ok';
const DB_NO_INDEXES = 'doctor-noidx';
const DB_EMPTY = 'doctor-empty';

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

/** A port nothing listens on. */
async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function baseEnv(extra = {}) {
  return {
    PATH: process.env.PATH,
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

/** Runs the CLI in an empty folder (no stray .env): { code, stdout, stderr, all }. */
function runCli(args, env, cwd = tmp) {
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

  // LibreChat's own models create LibreChat's indexes on users and sessions in DB_OK.
  mongoose = new Mongoose();
  const models = createModels(mongoose);
  await mongoose.connect(mongoUri(DB_OK), { autoIndex: false, autoCreate: false });
  await mongoose.connection.dropDatabase();
  await models.User.createIndexes();
  await models.Session.createIndexes();

  // Collections without LibreChat's indexes, and a database without the collections.
  const noIdx = mongoose.connection.useDb(DB_NO_INDEXES);
  await noIdx.dropDatabase();
  await noIdx.collection('users').insertOne({ email: 'someone@example.com', provider: 'local' });
  await noIdx.collection('sessions').insertOne({ refreshTokenHash: 'x', expiration: new Date() });
  await mongoose.connection.useDb(DB_EMPTY).dropDatabase();
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
  expect(ok).toMatch(/users: index \{email: 1, tenantId: 1\} \(email_1_tenantId_1, unique\)/);
  expect(ok).toMatch(/users: index \{idOnTheSource: 1\}/);
  expect(ok).toMatch(/sessions: index \{expiration: 1\} \(expiration_1, TTL 0 s\)/);
  expect(ok).toMatch(/sessions: index \{user: 1, refreshTokenHash: 1\}/);
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

test('a database without LibreChat\'s indexes: exit 1 and one PROBLEM line per missing index', async () => {
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_NO_INDEXES) }));
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/OK +database: reachable at .*, database "doctor-noidx"/);
  const problems = lines(r.stdout, 'PROBLEM');
  expect(problems).toHaveLength(4);
  expect(problems[0]).toMatch(/PROBLEM +users: missing index unique \{email: 1\}/);
  expect(problems[1]).toMatch(/PROBLEM +users: missing index \{idOnTheSource: 1\}/);
  expect(problems[2]).toMatch(/PROBLEM +sessions: missing index TTL \{expiration: 1\} with expireAfterSeconds: 0/);
  expect(problems[3]).toMatch(/PROBLEM +sessions: missing index \{user: 1, …\}/);
  for (const p of problems) expect(p).toMatch(/run LibreChat once against this database/);
  expect(r.stdout).toMatch(/^4 problems found\.$/m);
  expectNoSecret(r.all);
});

test('a database without the collections: a PROBLEM line for users and for sessions', async () => {
  const r = await runCli(['doctor'], baseEnv({ MONGO_URI: mongoUri(DB_EMPTY) }));
  expect(r.code).toBe(1);
  expect(lines(r.stdout, 'PROBLEM')).toEqual([
    '  PROBLEM  users: collection missing in database "doctor-empty"; start LibreChat once against this database (it creates the collections and their indexes)',
    '  PROBLEM  sessions: collection missing in database "doctor-empty"; start LibreChat once against this database (it creates the collections and their indexes)',
  ]);
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
