'use strict';

// Issue 11 section 5: BACKEND_BEARER_TOKENS=introspection (RFC 7662). Over HTTP against the
// LibreChat-shaped app, with the mock backend's real introspection endpoint: the call's shape,
// the checks (active, exp, aud, iss, scope), the cache, single-flight, the call budget, the
// endpoint's failures, the policy, LibreChat tokens never introspected, metrics and doctor.

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const jwt = require('jsonwebtoken');
const { until } = require('./support/until');
const { startHarness } = require('./support/harness');
const { ALICE, sleep, loginSession, getWithBearer, secretsSeen } = require('./support/auth');

const CLI = path.join(__dirname, '..', 'bin', 'cli.js');
const nowSec = () => Math.floor(Date.now() / 1000);
/** application/x-www-form-urlencoded, as RFC 6749 2.3.1 asks for the client id and secret. */
const formEncode = (v) => new URLSearchParams({ v }).toString().slice(2);

describe('token introspection (issue 11 section 5)', () => {
  let h;
  const { seen, keep } = secretsSeen();
  const get = (token, p) => getWithBearer(h.app, token, p);
  const randomToken = () => keep(`at_${crypto.randomBytes(24).toString('hex')}`);
  const introspectionEnv = (extra = {}) => ({
    BACKEND_BEARER_TOKENS: 'introspection',
    BACKEND_INTROSPECTION_URL: h.mock.urls.introspection,
    BACKEND_INTROSPECTION_CLIENT_ID: h.mock.introspectionClient.id,
    BACKEND_INTROSPECTION_CLIENT_SECRET: h.mock.introspectionClient.secret,
    ...extra,
  });
  /** The Authorization header our client sends, as the mock expects it. */
  const basicHeader = () => {
    const { id, secret } = h.mock.introspectionClient;
    return `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
  };
  const calls = (endpoint, outcome) => h.service.metrics().backendCalls
    .filter((c) => c.endpoint === endpoint && (!outcome || c.outcome === outcome))
    .reduce((n, c) => n + c.count, 0);

  const login = (creds = ALICE) => loginSession(h.app, creds, seen);

  beforeAll(async () => {
    h = await startHarness({ db: 'introspection' });
  });
  beforeEach(async () => {
    await h.reconfigure(introspectionEnv());
    await h.clear();
    h.mock.reset({ tokens: true });
  });
  afterAll(async () => {
    h.assertNoSecretsLogged([...seen, basicHeader().slice(6)]);
    await h.close();
  });

  test('#11.5 an active token: 200 with its user after one RFC 7662 call (POST form, hint, HTTP Basic with form-encoded id and secret)', async () => {
    const { userId } = await login();
    const t = keep(h.mock.issueAccessToken('u-1001'));
    const res = await get(t);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(userId);
    expect(res.body.provider).toBe('custom-backend');
    expect(h.mock.calls.introspection).toBe(1);
    expect(h.mock.calls.userinfo).toBe(0);
    const [call] = h.mock.requests.filter((q) => q.name === 'introspection');
    expect(call.method).toBe('POST');
    expect(call.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(call.rawBody))).toEqual({ token: t, token_type_hint: 'access_token' });
    // The mock's client id has a space and its secret `:+/%&`: RFC 6749 2.3.1 encodes both first.
    expect(call.headers.authorization).toBe(basicHeader());
    expect(calls('introspection', 'ok')).toBe(1);
  });

  test('#11.5 an inactive token is 401: unknown, revoked or expired at the backend, or active with a past exp', async () => {
    await login();
    const revoked = keep(h.mock.issueAccessToken('u-1001'));
    h.mock.revokeToken(revoked);
    const expired = keep(h.mock.issueAccessToken('u-1001'));
    h.mock.expire(expired);
    for (const t of [randomToken(), revoked, expired]) {
      const res = await get(t);
      expect(res.status).toBe(401);
      expect(res.body.message).toBe('Unauthorized');
    }
    expect(h.mock.calls.introspection).toBe(3);
    // Our own exp check, whatever `active` says (0 s leeway).
    h.mock.set({ introspectionAnswer: (a) => ({ ...a, exp: nowSec() }) });
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(401);
    expect(h.mock.calls.introspection).toBe(4);
  });

  test.each([
    ['aud of another client', 401, (a) => ({ ...a, aud: 'another-client' })],
    ['no aud', 401, ({ aud, ...a }) => a], // eslint-disable-line no-unused-vars
    ['aud as an array that holds ours', 200, (a) => ({ ...a, aud: ['x', 'librechat'] })],
    ['another iss', 401, (a) => ({ ...a, iss: 'https://evil.example' })],
    ['no iss', 401, ({ iss, ...a }) => a], // eslint-disable-line no-unused-vars
    ['scope without the required one', 401, (a) => ({ ...a, scope: 'openid chatty' })],
    ['no scope', 401, ({ scope, ...a }) => a], // eslint-disable-line no-unused-vars
    ['nbf in the future', 401, (a) => ({ ...a, nbf: nowSec() + 60 })],
  ])('#11.5 with audience, issuer and scope checked: %s is %i', async (_what, status, change) => {
    await h.reconfigure(introspectionEnv({
      BACKEND_INTROSPECTION_AUDIENCE: 'librechat',
      BACKEND_INTROSPECTION_ISSUER: h.mock.issuer,
      BACKEND_INTROSPECTION_SCOPE: 'chat',
    }));
    await login();
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
    h.mock.set({ introspectionAnswer: change });
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(status);
  });

  test('#11.5 a backend refresh token the backend reports active is not an access token: 401', async () => {
    await login();
    const { refreshToken } = h.mock.issueTokens('u-1001');
    keep(refreshToken);
    expect(h.mock.introspect(refreshToken).active).toBe(true);
    expect((await get(refreshToken)).status).toBe(401);
  });

  test('#11.5 verdicts are cached: the second request makes no call, a refusal neither, and an accepted token not past its exp', async () => {
    await login();
    const t = keep(h.mock.issueAccessToken('u-1001', { ttlSec: 2 }));
    expect((await get(t)).status).toBe(200);
    expect((await get(t)).status).toBe(200);
    expect(h.mock.calls.introspection).toBe(1);
    const unknown = randomToken();
    expect((await get(unknown)).status).toBe(401);
    expect((await get(unknown)).status).toBe(401);
    expect(h.mock.calls.introspection).toBe(2);
    // Past the token's exp (BACKEND_TOKEN_CACHE_TTL is 60 s): asked again, and now inactive.
    const { exp } = h.mock.tokenInfo(t);
    await sleep(Math.max(0, exp - Date.now()) + 1100);
    expect((await get(t)).status).toBe(401);
    expect(h.mock.calls.introspection).toBe(3);
  });

  test('#11.5 20 concurrent first-sight requests with one token make one introspection call', async () => {
    await login();
    const t = keep(h.mock.issueAccessToken('u-1001'));
    const base = h.service.metrics().singleFlightJoins.backend_token;
    // The answer waits until the 19 others joined the call, however slowly a loaded machine sends them.
    const joined = () => h.service.metrics().singleFlightJoins.backend_token - base === 19;
    h.mock.set({ introspection: { beforeSend: () => until(joined, '19 requests joining the first call') } });
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(t)));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(h.mock.calls.introspection).toBe(1);
  });

  test('#11.5 unknown tokens count under BACKEND_USERINFO_MAX_CONCURRENT, _RATE and _BURST: beyond them 503 without a call', async () => {
    const RATE = 1;
    const BURST = 4;
    await h.reconfigure(introspectionEnv({
      BACKEND_USERINFO_MAX_CONCURRENT: '2', BACKEND_USERINFO_RATE: String(RATE), BACKEND_USERINFO_BURST: String(BURST),
    }));
    h.mock.set({ introspection: { latencyMs: 50 } });
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 40 }, () => get(randomToken())));
    const elapsedSec = (Date.now() - started) / 1000;
    expect(new Set(answers.map((r) => r.status))).toEqual(new Set([401, 503]));
    expect(h.mock.calls.introspection).toBeLessThanOrEqual(BURST + Math.ceil(RATE * (elapsedSec + 1)));
    expect(h.mock.peakInFlight.introspection).toBeLessThanOrEqual(2);
    for (const r of answers.filter((a) => a.status === 503)) {
      expect(r.body.message).toMatch(/too many unknown tokens to check at once/);
    }
  });

  describe('#11.5 failures of the introspection endpoint', () => {
    // A 429 is the backend's rate limit, answered 503 and not logged per request (as in every mode).
    test.each([
      ['wrong client credentials (401)', { BACKEND_INTROSPECTION_CLIENT_SECRET: `wrong-${crypto.randomBytes(8).toString('hex')}` }, {}, /introspection refused the client credentials/, 'refused', true],
      ['5xx', {}, { introspection: { status: 502 } }, /introspection answered 502/, 'unavailable', true],
      ['a timeout', { BACKEND_TIMEOUT_MS: '400' }, { introspection: { hang: true } }, /introspection timed out/, 'timeout', true],
      ['garbage', {}, { introspection: { malformed: true } }, /introspection answer is not JSON/, 'bad_response', true],
      ['another 4xx', {}, { introspection: { status: 400 } }, /introspection answered 400/, 'bad_response', true],
      ['429', {}, { introspection: { status: 429 } }, /Too many requests/, 'rate_limited', false],
    ])('#11.5 %s: 503, not cached, a log line per request that names the cause, no secret logged', async (_what, env, switches, message, outcome, logs) => {
      await h.reconfigure(introspectionEnv(env));
      await login();
      h.mock.set(switches);
      const t = keep(h.mock.issueAccessToken('u-1001'));
      const before = h.logs.lines.length;
      for (let i = 1; i <= 2; i++) {
        const res = await get(t);
        expect(res.status).toBe(503);
        expect(res.body.message).toMatch(message);
        expect(h.mock.calls.introspection).toBe(i);
      }
      const logged = h.logs.lines.slice(before).filter((l) => l.includes('[customBackendAuth] token check failed'));
      expect(logged).toHaveLength(logs ? 2 : 0);
      if (logs) expect(logged[0]).toMatch(message);
      expect(calls('introspection', outcome)).toBe(2);
      h.assertNoSecretsLogged([t, h.mock.introspectionClient.secret, basicHeader().slice(6)]);
    });

    test('#21.11d an answer with a repeated key (`active` false, then true) is refused as a bad response (503, not cached)', async () => {
      await login();
      const t = keep(h.mock.issueAccessToken('u-1001'));
      const answer = JSON.stringify(h.mock.introspect(t)).replace('"active":true', '"active":false,"active":true');
      expect(JSON.parse(answer).active).toBe(true); // what a last-wins parser sees
      h.mock.set({ introspection: { status: 200, body: answer } });
      for (let i = 1; i <= 2; i++) {
        const res = await get(t);
        expect(res.status).toBe(503);
        expect(res.body.message).toMatch(/introspection answer repeats a key/);
      }
      expect(h.mock.calls.introspection).toBe(2);
    });

    test.each([
      ['without `active`', ({ active, ...a }) => a], // eslint-disable-line no-unused-vars
      ['with `active: "true"`', (a) => ({ ...a, active: 'true' })],
      ['with `active: 1`', (a) => ({ ...a, active: 1 })],
      ['that is an array', () => [{ active: true }]],
    ])('#11.5 an answer %s is refused as a bad response (503, not cached)', async (_what, change) => {
      await login();
      h.mock.set({ introspectionAnswer: change });
      const t = keep(h.mock.issueAccessToken('u-1001'));
      for (let i = 1; i <= 2; i++) {
        const res = await get(t);
        expect(res.status).toBe(503);
        expect(res.body.message).toMatch(/introspection answer has no boolean `active`/);
      }
      expect(h.mock.calls.introspection).toBe(2);
    });
  });

  test('#11.5 LibreChat tokens are never introspected, valid, expired, forged or a refresh token', async () => {
    const { token, refreshToken, userId } = await login();
    expect((await get(token)).status).toBe(200);
    const expired = keep(jwt.sign({ id: userId, exp: nowSec() - 10 }, h.vars.JWT_SECRET));
    const forged = keep(jwt.sign({ id: userId }, 'not-the-secret', { expiresIn: 60 }));
    for (const t of [expired, forged, refreshToken, `${token.slice(0, -2)}xx`]) {
      expect((await get(t)).status).toBe(401);
    }
    expect(h.mock.calls.introspection).toBe(0);
  });

  test('#11.5 the role policy, required roles and email domains apply to introspected users, provisioning too', async () => {
    await h.reconfigure(introspectionEnv({
      BACKEND_ROLES_FIELD: 'roles',
      BACKEND_REQUIRED_ROLES: 'admin',
      BACKEND_ADMIN_ROLES: 'admin',
      BACKEND_PROVISION_ON_BEARER: 'true',
    }));
    const bob = await get(keep(h.mock.issueAccessToken('u-1002')));
    expect(bob.status).toBe(200);
    expect(bob.body.email).toBe('bob@example.com');
    expect(bob.body.role).toBe('ADMIN');
    const alice = keep(h.mock.issueAccessToken('u-1001'));
    for (let i = 0; i < 2; i++) expect((await get(alice)).status).toBe(403);

    await h.reconfigure(introspectionEnv({ BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.org', BACKEND_PROVISION_ON_BEARER: 'true' }));
    const carol = await get(keep(h.mock.issueAccessToken('u-1003')));
    expect(carol.status).toBe(200);
    expect(carol.body.email).toBe('carol@example.org');
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(403);
    // Without provisioning, a backend user with no LibreChat account is a 401.
    await h.reconfigure(introspectionEnv());
    await h.clear();
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(401);
  });

  test('#11.5 BACKEND_SESSION_MODE=backend: the browser\'s backend token needs no call where it was issued, one introspection call on another server', async () => {
    await h.reconfigure(introspectionEnv({ BACKEND_SESSION_MODE: 'backend' }));
    const { token, userId } = await login();
    expect(h.mock.tokenInfo(token)).not.toBeNull(); // the backend's own access token
    expect((await get(token)).status).toBe(200);
    expect(h.mock.calls.introspection).toBe(0);
    const other = h.makeService(introspectionEnv({ BACKEND_SESSION_MODE: 'backend' }));
    try {
      const user = await other.authenticateBackendToken(token);
      expect(String(user.id)).toBe(userId);
      expect(h.mock.calls.introspection).toBe(1);
      h.mock.revokeToken(token);
      const fresh = h.makeService(introspectionEnv({ BACKEND_SESSION_MODE: 'backend' }));
      try {
        await expect(fresh.authenticateBackendToken(token)).rejects.toMatchObject({ code: 'TOKEN_INVALID', status: 401 });
      } finally {
        await fresh.close();
      }
    } finally {
      await other.close();
    }
  });

  test('#11.5 the configuration names the missing variable', () => {
    for (const name of ['BACKEND_INTROSPECTION_URL', 'BACKEND_INTROSPECTION_CLIENT_ID', 'BACKEND_INTROSPECTION_CLIENT_SECRET']) {
      const env = { ...introspectionEnv(), [name]: '' };
      expect(() => h.makeService(env)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }));
    }
  });

  test('#11.5 doctor shows the new variables (the secret as its length) and probes the URL with a bare GET', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-introspection-'));
    const env = { PATH: process.env.PATH, ...h.vars, ...introspectionEnv(), NODE_ENV: 'development' };
    const r = await new Promise((resolve) => {
      execFile(process.execPath, [CLI, 'doctor'], { env, cwd: tmp, timeout: 25000 }, (err, stdout, stderr) => {
        resolve({ stdout, all: `${stdout}\n${stderr}` });
      });
    });
    fs.rmSync(tmp, { recursive: true, force: true });
    const { secret } = h.mock.introspectionClient;
    expect(r.stdout).toMatch(new RegExp(`^ {2}BACKEND_INTROSPECTION_CLIENT_SECRET += set \\(${secret.length} chars\\)$`, 'm'));
    expect(r.stdout).toMatch(/^ {2}BACKEND_INTROSPECTION_ID_CLAIM += \(default\) sub$/m);
    expect(r.stdout).toMatch(/^ {2}BACKEND_BEARER_TOKENS += introspection$/m);
    expect(r.stdout).toMatch(/OK +BACKEND_INTROSPECTION_URL: http:\/\/127\.0\.0\.1:\d+\/oauth\/introspect answers \(HTTP 405 to a GET without credentials\)/);
    expect(r.all).not.toContain(secret);
    expect(r.all).not.toContain(formEncode(secret));
    const probes = h.mock.requests.filter((q) => q.name === 'introspection');
    expect(probes).toHaveLength(1);
    expect(probes[0].method).toBe('GET');
    expect(probes[0].headers.authorization).toBeUndefined();
    expect(probes[0].rawBody || '').toBe('');
  });
});
