'use strict';

// Issue 11 section 3: the circuit breaker per backend host, over HTTP against the LibreChat-shaped
// app and the mock backend. States are waited for (metrics), never timed.

const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const request = require('supertest');
const { Registry } = require('prom-client');
const { until } = require('./support/until');
const { startHarness, parseSetCookies } = require('./support/harness');
const { startMockBackend } = require('./support/mockBackend');
const { mongoUri } = require('./support/mongoUri');
const { closedPort } = require('./support/tcpProxy');
const { registerCustomBackendMetrics } = require('..');

const ALICE = { email: 'Alice', password: 'alice-password-1' };
const WRONG = { email: 'Alice', password: 'not-the-password' };
const CLI = path.join(__dirname, '..', 'bin', 'cli.js');
const CLOSED = 0;
const HALF_OPEN = 1;
const OPEN = 2;

describe('#11.3 circuit breaker', () => {
  let h;
  // Three failures open it; a short cool-down (the tests wait for the state, not for a time).
  const BREAKER = { BACKEND_BREAKER_FAILURES: '3', BACKEND_BREAKER_COOLDOWN_MS: '300', BACKEND_TIMEOUT_MS: '1000' };

  const login = (body = ALICE) => request(h.app).post('/api/auth/login').send(body);
  const refresh = (cookie) => request(h.app).post('/api/auth/refresh').set('Cookie', cookie);
  const cookieOf = (res) => Object.entries(parseSetCookies(res)).map(([k, c]) => `${k}=${c.value}`).join('; ');
  const breaker = (host = h.mock.url) => h.service.metrics().backendBreakers.find((b) => b.host === host);
  const stateOf = (host) => breaker(host)?.state;
  const waitFor = (state, host) => until(() => stateOf(host) === state, `breaker state ${state}`);
  const outage = (res) => {
    expect(res.status).toBe(500); // LibreChat's "please wait and try again", as for BACKEND_UNAVAILABLE
    return res.body.code;
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'breaker-11-3', env: BREAKER });
  });

  beforeEach(async () => {
    await h.reconfigure(BREAKER); // a fresh service: every breaker closed
    h.mock.answerHanging(503);
    h.mock.reset();
  });

  afterAll(async () => {
    await h?.clear();
    await h?.close();
  });

  test.each([
    ['answers 503', async () => {
      h.mock.set({ login: { status: 503 } });
    }],
    ['hangs past BACKEND_TIMEOUT_MS', async () => {
      h.mock.set({ login: { hang: true } });
    }],
    ['refuses connections', async () => ({ BACKEND_AUTH_URL: `http://127.0.0.1:${await closedPort()}/login` })],
  ])('#11.3 the breaker opens after BACKEND_BREAKER_FAILURES failures in a row: the backend %s', async (_name, provoke) => {
    const extra = await provoke();
    let host = h.mock.url;
    if (extra) {
      await h.reconfigure({ ...BREAKER, ...extra });
      host = new URL(extra.BACKEND_AUTH_URL).origin;
    }
    for (let i = 0; i < 3; i += 1) {
      expect(stateOf(host)).toBe(CLOSED);
      expect(['BACKEND_UNAVAILABLE', 'BACKEND_TIMEOUT']).toContain(outage(await login()));
    }
    expect(stateOf(host)).toBe(OPEN);
    expect(breaker(host).openings).toBe(1);
    const sent = h.mock.calls.login;
    for (let i = 0; i < 5; i += 1) {
      const res = await login();
      expect(outage(res)).toBe('BACKEND_CIRCUIT_OPEN');
      expect(res.body.message).toMatch(/^The authentication service is unavailable \(not called: .+\)\. Please try again later\.$/);
    }
    expect(h.mock.calls.login).toBe(sent); // nothing reached the backend while open
  });

  test('#11.3 wrong passwords, 429 and unusable answers are answers, not failures: it stays closed', async () => {
    for (let i = 0; i < 6; i += 1) expect((await login(WRONG)).status).toBe(404);
    h.mock.set({ login: { status: 429 } });
    for (let i = 0; i < 6; i += 1) expect((await login()).body.code).toBe('BACKEND_RATE_LIMITED');
    h.mock.set({ login: { status: null, malformed: true } });
    for (let i = 0; i < 6; i += 1) expect((await login()).body.code).toBe('BACKEND_BAD_RESPONSE');
    expect(stateOf()).toBe(CLOSED);
    expect(h.mock.calls.login).toBe(18);
  });

  test('#11.3 while open: no backend call; login 500, backend bearer token 503, refresh 200 from the session, logout ok; LibreChat tokens keep working', async () => {
    await h.reconfigure({ ...BREAKER, BACKEND_LOGOUT_URL: h.mock.urls.logout });
    const session = await login();
    expect(session.status).toBe(200);
    const backendToken = h.mock.issueAccessToken('u-1002'); // not known to the service yet
    h.mock.set({ status: 503 }); // every endpoint
    for (let i = 0; i < 3; i += 1) outage(await login());
    expect(stateOf()).toBe(OPEN);
    const before = { ...h.mock.calls };

    expect(outage(await login())).toBe('BACKEND_CIRCUIT_OPEN');
    const api = await request(h.app).get('/api/user').set('Authorization', `Bearer ${session.body.token}`);
    expect(api.status).toBe(200);
    expect(api.body.email).toBe('alice@example.com');
    const bearer = await request(h.app).get('/api/user').set('Authorization', `Bearer ${backendToken}`);
    expect(bearer.status).toBe(503);
    const refreshed = await refresh(cookieOf(session));
    expect(refreshed.status).toBe(200); // README section 7: the outage answer, no rotation
    expect(refreshed.headers['set-cookie']).toBeUndefined();
    expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${refreshed.body.token}`)).status).toBe(200);
    const out = await request(h.app).post('/api/auth/logout').set('Cookie', cookieOf(session))
      .set('Authorization', `Bearer ${session.body.token}`);
    expect(out.status).toBe(200);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    expect(h.mock.calls).toEqual(before); // login, user info, refresh and logout: none was sent
    expect(h.logs.lines.some((l) => l.includes('backend logout failed for user'))).toBe(true);
    expect(h.service.metrics().outcomes.login.BACKEND_CIRCUIT_OPEN).toBe(1);
  });

  test('#11.3 refresh and logout answer 503 with Retry-After when the outage answer cannot help (backend session mode)', async () => {
    await h.reconfigure({ ...BREAKER, BACKEND_SESSION_MODE: 'backend' });
    const session = await login();
    h.mock.set({ login: { status: 503 } });
    for (let i = 0; i < 3; i += 1) outage(await login());
    expect(stateOf()).toBe(OPEN);
    const res = await refresh(cookieOf(session));
    expect(res.status).toBe(503);
    expect(res.body.message).toMatch(/not called/);
    expect(res.headers['retry-after']).toBe('1');
    expect(h.mock.calls.refresh).toBe(0);
  });

  test('#11.3 half-open after the cool-down: one probe at a time; a failed probe re-opens, an answered probe closes', async () => {
    h.mock.set({ login: { status: 503 } });
    for (let i = 0; i < 3; i += 1) outage(await login());
    expect(stateOf()).toBe(OPEN);
    await waitFor(HALF_OPEN);

    // A failing probe: open again for another cool-down.
    expect(outage(await login())).toBe('BACKEND_UNAVAILABLE');
    expect(h.mock.calls.login).toBe(4);
    expect(stateOf()).toBe(OPEN);
    expect(breaker().openings).toBe(2);
    expect(outage(await login())).toBe('BACKEND_CIRCUIT_OPEN');
    await waitFor(HALF_OPEN);

    // BACKEND_BREAKER_PROBES=1: while the probe hangs, others are answered at once.
    h.mock.set({ login: { status: null, hang: true } });
    const probe = login();
    const probeDone = probe.then((r) => r);
    await until(() => h.mock.inFlight.login === 1, 'the probe at the backend');
    const others = await Promise.all([login(), login(), login()]);
    for (const r of others) expect(outage(r)).toBe('BACKEND_CIRCUIT_OPEN');
    expect(h.mock.calls.login).toBe(5);
    h.mock.set({ login: { hang: false } });
    h.mock.answerHanging(401); // an answer (a refusal): the backend is up
    expect((await probeDone).status).toBe(404);
    expect(stateOf()).toBe(CLOSED);
    expect((await login()).status).toBe(200);
    expect(breaker().openings).toBe(2);
  });

  test('#11.3 a hanging backend never has more than BACKEND_MAX_PENDING calls pending; the rest are refused at once', async () => {
    await h.reconfigure({ ...BREAKER, BACKEND_MAX_PENDING: '4', BACKEND_TIMEOUT_MS: '60000' });
    h.mock.set({ login: { hang: true } });
    const answers = [];
    const all = Array.from({ length: 12 }, () => login().then((r) => answers.push(r)));
    await until(() => answers.length === 8 && h.mock.inFlight.login === 4, '8 answers and 4 calls pending');
    for (const r of answers) expect(outage(r)).toBe('BACKEND_CIRCUIT_OPEN');
    expect(h.mock.calls.login).toBe(4);
    expect(h.service.metrics().backendCallsInFlight).toBe(4);
    // Refused for the bound, not for failures: the breaker is still closed.
    expect(stateOf()).toBe(CLOSED);
    h.mock.answerHanging(503);
    await Promise.all(all);
    expect(answers.slice(8).map(outage)).toEqual(Array(4).fill('BACKEND_UNAVAILABLE'));
    expect(h.mock.inFlight.login).toBe(0);
    expect(stateOf()).toBe(OPEN);
  });

  test('#11.3 a login storm (100 at once, backend answering in 20 ms) is not shed by the default bound', async () => {
    await h.reconfigure({ BACKEND_TIMEOUT_MS: '5000' }); // the defaults: BACKEND_MAX_PENDING 256
    h.mock.set({ latencyMs: 20 });
    const answers = await Promise.all(Array.from({ length: 100 }, () => login()));
    expect(answers.filter((r) => r.status !== 200).map((r) => r.body.code)).toEqual([]);
    expect(stateOf()).toBe(CLOSED);
  });

  test('#11.3 metrics: a state gauge and an openings counter per configured backend host', async () => {
    const registry = registerCustomBackendMetrics(new Registry(), { service: h.service });
    const host = h.mock.url;
    const scrape = async () => registry.metrics();
    let text = await scrape();
    expect(text).toContain(`librechat_custom_backend_backend_breaker_state{host="${host}"} 0`);
    expect(text).toContain(`librechat_custom_backend_backend_breaker_openings_total{host="${host}"} 0`);
    h.mock.set({ login: { status: 503 } });
    for (let i = 0; i < 3; i += 1) await login();
    text = await scrape();
    expect(text).toContain(`librechat_custom_backend_backend_breaker_state{host="${host}"} 2`);
    expect(text).toContain(`librechat_custom_backend_backend_breaker_openings_total{host="${host}"} 1`);
    await until(async () => (await scrape()).includes(`breaker_state{host="${host}"} 1`), 'half-open in the scrape');
    // Only configured hosts are labels (one here: every URL is on the mock).
    expect(text.match(/backend_breaker_state\{/g)).toHaveLength(1);
    expect(text).toContain('librechat_custom_backend_logins_total{code="BACKEND_UNAVAILABLE"} 3');
  });

  test('#11.3 BACKEND_BREAKER_FAILURES=0 turns the breaker off: every call reaches the failing backend', async () => {
    await h.reconfigure({ ...BREAKER, BACKEND_BREAKER_FAILURES: '0' });
    h.mock.set({ login: { status: 503 } });
    for (let i = 0; i < 10; i += 1) expect(outage(await login())).toBe('BACKEND_UNAVAILABLE');
    expect(h.mock.calls.login).toBe(10);
    expect(stateOf()).toBe(CLOSED);
    expect(breaker().openings).toBe(0);
  });

  test.each([
    ['BACKEND_BREAKER_FAILURES', '-1'],
    ['BACKEND_BREAKER_FAILURES', '1001'],
    ['BACKEND_BREAKER_COOLDOWN_MS', '0'],
    ['BACKEND_BREAKER_COOLDOWN_MS', '86400001'],
    ['BACKEND_BREAKER_PROBES', '0'],
    ['BACKEND_MAX_PENDING', '0'],
    ['BACKEND_MAX_PENDING', 'lots'],
  ])('#11.3 %s=%s is CONFIG_INVALID', (name, value) => {
    expect(() => h.makeService({ [name]: value })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }));
  });
});

describe('#11.3 doctor', () => {
  let mock;
  beforeAll(async () => {
    mock = await startMockBackend({ status: 503 });
  });
  afterAll(async () => {
    await mock?.close();
  });

  const run = (extra) => new Promise((resolve) => {
    const env = {
      PATH: process.env.PATH,
      BACKEND_ALLOW_INSECURE_HTTP: 'true',
      JWT_SECRET: crypto.randomBytes(16).toString('hex'),
      JWT_REFRESH_SECRET: crypto.randomBytes(16).toString('hex'),
      BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
      BACKEND_AUTH_URL: mock.urls.login,
      BACKEND_USER_INFO_URL: mock.urls.userinfo,
      BACKEND_REFRESH_URL: mock.urls.refresh,
      MONGO_URI: mongoUri('breaker-11-3-doctor'),
      BACKEND_TIMEOUT_MS: '2000',
      MONGO_TIMEOUT_MS: '3000',
      ...extra,
    };
    execFile(process.execPath, [CLI, 'doctor'], { env, cwd: __dirname, timeout: 25000 }, (err, stdout) => resolve(stdout));
  });

  test('#11.3 doctor shows the breaker\'s configuration and each host\'s state after its own probes', async () => {
    let out = await run({});
    expect(out).toMatch(/^ {2}BACKEND_BREAKER_FAILURES +\= \(default\) 5$/m);
    expect(out).toMatch(/^ {2}BACKEND_BREAKER_COOLDOWN_MS +\= \(default\) 30000$/m);
    expect(out).toMatch(/^ {2}BACKEND_BREAKER_PROBES +\= \(default\) 1$/m);
    expect(out).toMatch(/^ {2}BACKEND_MAX_PENDING +\= \(default\) 256$/m);
    expect(out).toContain('OK       breaker: opens after 5 failures in a row');
    expect(out).toContain(`INFO     breaker ${mock.url}: closed after doctor's probes, 3 of 5 failures in a row`);
    out = await run({ BACKEND_BREAKER_FAILURES: '2' });
    expect(out).toContain(`PROBLEM  breaker ${mock.url}: open after doctor's probes`);
    out = await run({ BACKEND_BREAKER_FAILURES: '0' });
    expect(out).toContain('INFO     breaker: off (BACKEND_BREAKER_FAILURES=0)');
    expect(out).toContain(`INFO     breaker ${mock.url}: off`);
  });
});
