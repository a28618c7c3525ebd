'use strict';

// Issue 10 item 7: the package's own metrics, counted natively, read as a snapshot, and scraped
// with prom-client, both appended to a LibreChat-shaped /metrics (its own registry behind
// METRICS_SECRET, as createMetrics() in LibreChat main 0ab3414c) and registered in a registry.

const express = require('express');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { Registry, Counter } = require('prom-client');
const { until } = require('./support/until');
const { startHarness, parseSetCookies } = require('./support/harness');
const { startTcpProxy } = require('./support/tcpProxy');
const { ALICE, BOB, loginSession } = require('./support/auth');

const METRICS_SECRET = 'metrics-secret-for-the-test';

/** Samples of a Prometheus text exposition: `name{a="x",b="y"}` (labels sorted) -> value. */
function parseExposition(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort() : [];
    samples.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return samples;
}

/** The value of one sample (0 when absent: a series not yet created). */
function value(samples, name, labels = {}) {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
  return samples.get(key) ?? 0;
}

const P = 'librechat_custom_backend_';

describe('#10.7 metrics', () => {
  let h;
  let outer;
  let lcMetrics;

  beforeAll(async () => {
    // The test app mounts compression() and LibreChat's /metrics with the wiring's line before it.
    h = await startHarness({ db: 'metrics-10-7', env: { METRICS_SECRET } });
    lcMetrics = h.lc.metrics;
    outer = h.app;
  });

  afterAll(async () => {
    await h?.close();
  });

  beforeEach(() => h.mock.reset());

  const scrape = async () => {
    const res = await request(outer).get('/metrics').set('Authorization', `Bearer ${METRICS_SECRET}`);
    expect(res.status).toBe(200);
    return { res, samples: parseExposition(res.text) };
  };

  const login = (creds = ALICE) => loginSession(outer, creds);

  test('#10.7 LibreChat\'s /metrics scrape carries the package\'s counters, moved by logins, refreshes, logouts, bearer checks and outages', async () => {
    lcMetrics.lookups.inc({ result: 'found' });
    const before = (await scrape()).samples;

    // Logins: two good, one wrong password, one refused by the shim for its fields, one outage.
    const a = await login(ALICE);
    await login(BOB);
    // (Statuses are other items' business: only success or not matters here.)
    expect((await request(outer).post('/api/auth/login').send({ email: 'Alice', password: 'wrong' })).status).not.toBe(200);
    await expect(h.service.login({ email: 'Alice' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    h.mock.set({ login: { status: 503 } });
    expect((await request(outer).post('/api/auth/login').send(ALICE)).status).not.toBe(200);
    h.mock.reset();

    // Bearer checks: three good, one garbage, one expired LibreChat token.
    for (let i = 0; i < 3; i++) {
      expect((await request(outer).get('/api/user').set('Authorization', `Bearer ${a.token}`)).status).toBe(200);
    }
    expect((await request(outer).get('/api/user').set('Authorization', 'Bearer not-a-token')).status).toBe(401);
    const { id } = jwt.decode(a.token);
    const expired = jwt.sign({ id, exp: Math.floor(Date.now() / 1000) - 60 }, h.vars.JWT_SECRET);
    expect((await request(outer).get('/api/user').set('Authorization', `Bearer ${expired}`)).status).toBe(401);

    // Refresh: one good, one during a backend outage; then the logout.
    const refreshed = await request(outer).post('/api/auth/refresh').set('Cookie', `refreshToken=${a.refreshToken}`);
    expect(refreshed.status).toBe(200);
    const rt = parseSetCookies(refreshed).refreshToken.value;
    h.mock.set({ refresh: { status: 503 } });
    // The outage answer (docs/sessions-and-tokens.md, "Refresh") keeps the page in the app; it counts as the backend's failure.
    const during = await request(outer).post('/api/auth/refresh').set('Cookie', `refreshToken=${rt}`);
    expect([during.status, typeof during.body.token]).toEqual([200, 'string']);
    h.mock.reset();
    const out = await request(outer)
      .post('/api/auth/logout')
      .set('Authorization', `Bearer ${refreshed.body.token}`)
      .set('Cookie', `refreshToken=${rt}`);
    expect(out.status).toBe(200);

    const { res, samples: after } = await scrape();
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const delta = (name, labels) => value(after, name, labels) - value(before, name, labels);

    // LibreChat's own metrics are still there.
    expect(value(after, 'openid_user_lookup_total', { result: 'found' })).toBe(1);
    expect(res.text).toContain(`# TYPE ${P}logins_total counter`);

    expect(delta(`${P}logins_total`, { code: 'ok' })).toBe(2);
    expect(delta(`${P}logins_total`, { code: 'INVALID_CREDENTIALS' })).toBe(1);
    expect(delta(`${P}logins_total`, { code: 'BAD_REQUEST' })).toBe(1);
    expect(delta(`${P}logins_total`, { code: 'BACKEND_UNAVAILABLE' })).toBe(1);
    // The logout's requireJwtAuth is a bearer check too.
    expect(delta(`${P}bearer_checks_total`, { code: 'ok' })).toBe(4);
    expect(delta(`${P}bearer_checks_total`, { code: 'TOKEN_INVALID' })).toBe(1);
    expect(delta(`${P}bearer_checks_total`, { code: 'TOKEN_EXPIRED' })).toBe(1);
    expect(delta(`${P}refreshes_total`, { code: 'ok' })).toBe(1);
    expect(delta(`${P}refreshes_total`, { code: 'BACKEND_UNAVAILABLE' })).toBe(1);
    expect(delta(`${P}logouts_total`, { code: 'ok' })).toBe(1);

    const calls = (endpoint, outcome) => delta(`${P}backend_call_duration_seconds_count`, { endpoint, outcome });
    expect(calls('login', 'ok')).toBe(2);
    expect(calls('login', 'refused')).toBe(1);
    expect(calls('login', 'unavailable')).toBe(1);
    expect(calls('refresh', 'ok')).toBe(1);
    expect(calls('refresh', 'unavailable')).toBe(1);
    // A histogram: +Inf equals the count, buckets never decrease, the sum is a duration.
    const inf = value(after, `${P}backend_call_duration_seconds_bucket`, { endpoint: 'login', outcome: 'ok', le: '+Inf' });
    expect(inf).toBe(value(after, `${P}backend_call_duration_seconds_count`, { endpoint: 'login', outcome: 'ok' }));
    let last = 0;
    for (const le of ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']) {
      const n = value(after, `${P}backend_call_duration_seconds_bucket`, { endpoint: 'login', outcome: 'ok', le });
      expect(n).toBeGreaterThanOrEqual(last);
      last = n;
    }
    expect(value(after, `${P}backend_call_duration_seconds_sum`, { endpoint: 'login', outcome: 'ok' })).toBeGreaterThan(0);
    expect(value(after, `${P}backend_calls_in_flight`)).toBe(0);
    // The three good checks of one user were answered from the user cache.
    expect(delta(`${P}cache_hits_total`, { cache: 'user' })).toBeGreaterThanOrEqual(3);

    // Compressed as LibreChat compresses it (a scraper sending Accept-Encoding: gzip; superagent
    // unzips the answer).
    const gz = await request(outer)
      .get('/metrics')
      .set('Authorization', `Bearer ${METRICS_SECRET}`)
      .set('Accept-Encoding', 'gzip');
    expect(gz.headers['content-encoding']).toBe('gzip');
    const unzipped = parseExposition(gz.text);
    expect(value(unzipped, `${P}logins_total`, { code: 'ok' })).toBe(value(after, `${P}logins_total`, { code: 'ok' }));
    expect(value(unzipped, 'openid_user_lookup_total', { result: 'found' })).toBe(1);

    // Without the secret LibreChat answers 401, and nothing of ours is added.
    const denied = await request(outer).get('/metrics');
    expect(denied.status).toBe(401);
    expect(denied.text).toBe('');
    h.assertNoSecretsLogged();
  });

  test('#10.7 registerCustomBackendMetrics: a prom-client registry at /metrics shows single-flight joins, the in-flight gauge and cache hits of backend tokens', async () => {
    const pkg = require('..');
    const service = await h.reconfigure({ BACKEND_BEARER_TOKENS: 'userinfo' });
    const registry = pkg.registerCustomBackendMetrics(new Registry(), { service });
    // Registering again replaces the families instead of throwing.
    expect(pkg.registerCustomBackendMetrics(registry, { service })).toBe(registry);
    const app = express();
    app.get('/metrics', async (req, res) => res.type(registry.contentType).send(await registry.metrics()));
    app.use(h.app);
    const read = async () => parseExposition((await request(app).get('/metrics')).text);

    await login(ALICE);
    const token = h.mock.issueAccessToken('u-1001');
    const N = 5;
    const base = service.metrics();
    let inFlightSeen = null;
    // The user-info answer is held until the other N-1 requests joined the one call in flight.
    h.mock.set({
      userinfo: {
        beforeSend: async () => {
          await until(() => service.metrics().singleFlightJoins.backend_token - base.singleFlightJoins.backend_token === N - 1, 'the joins');
          inFlightSeen = value(await read(), `${P}backend_calls_in_flight`);
        },
      },
    });
    const answers = await Promise.all(
      Array.from({ length: N }, () => request(app).get('/api/user').set('Authorization', `Bearer ${token}`)),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect(h.mock.calls.userinfo).toBe(1);
    expect(inFlightSeen).toBe(1);
    h.mock.reset();
    expect((await request(app).get('/api/user').set('Authorization', `Bearer ${token}`)).status).toBe(200);

    const s = await read();
    const was = (label) => base.singleFlightJoins[label];
    expect(value(s, `${P}single_flight_joins_total`, { flight: 'backend_token' }) - was('backend_token')).toBe(N - 1);
    expect(value(s, `${P}single_flight_joins_total`, { flight: 'jwks' })).toBe(was('jwks'));
    // N misses while the first check was in flight, then one hit.
    expect(value(s, `${P}cache_misses_total`, { cache: 'backend_token' }) - base.cache.backend_token.misses).toBe(N);
    expect(value(s, `${P}cache_hits_total`, { cache: 'backend_token' }) - base.cache.backend_token.hits).toBe(1);
    expect(value(s, `${P}bearer_checks_total`, { code: 'ok' }) - base.outcomes.bearer.ok).toBe(N + 1);
    expect(value(s, `${P}backend_call_duration_seconds_count`, { endpoint: 'userinfo', outcome: 'ok' })).toBe(1);
    expect(value(s, `${P}backend_calls_in_flight`)).toBe(0);
  });

  test('#12 backend tokens of one user whose LibreChat id is not cached share one database lookup (backend_user joins)', async () => {
    // Every USER_CACHE_TTL the user and its backend id expire together, and every request of that
    // user in flight then missed both: each looked the user up by { provider, idOnTheSource } on its
    // own (on secantusdb a collection scan each: the bench's 100k verdict fill took 140-300 s).
    // The database answers through a proxy that keeps its replies while the N lookups are in
    // flight: they overlap whatever the machine's load (CI once ran the first to its end before the
    // others arrived).
    const proxy = await startTcpProxy(h.vars.MONGO_URI);
    try {
      const service = await h.reconfigure({ BACKEND_BEARER_TOKENS: 'userinfo', MONGO_URI: proxy.uri });
      await login(ALICE);
      const N = 8;
      const tokens = Array.from({ length: N }, () => h.mock.issueAccessToken('u-1001'));
      const base = service.metrics().singleFlightJoins.backend_user;
      expect(base).toBe(0);
      proxy.hold();
      const answers = Promise.all(tokens.map((t) => service.authenticateBackendToken(t)));
      // Without the single flight no lookup joins another: each waits for its own held reply.
      await until(() => service.metrics().singleFlightJoins.backend_user === N - 1, 'N - 1 lookups joining the first');
      proxy.release();
      const users = await answers;
      expect(new Set(users.map((u) => String(u._id))).size).toBe(1);
      expect(h.mock.calls.userinfo).toBe(N);
      expect(service.metrics().singleFlightJoins.backend_user).toBe(N - 1);
    } finally {
      proxy.release();
      await h.reconfigure();
      await proxy.close();
    }
  });

  test('#10.7 a refresh that waits for another refresh\'s lease is counted', async () => {
    const service = await h.reconfigure();
    const { refreshToken } = await login(ALICE);
    const base = service.metrics().refreshLeaseWaits;
    // The first refresh holds the lease while its backend call is held; the second waits for it.
    h.mock.set({ refresh: { beforeSend: () => until(() => service.metrics().refreshLeaseWaits > base, 'the lease wait') } });
    const both = await Promise.all([0, 1].map(() => request(outer).post('/api/auth/refresh').set('Cookie', `refreshToken=${refreshToken}`)));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(h.mock.calls.refresh).toBe(1);
    const s = (await scrape()).samples;
    expect(value(s, `${P}refresh_lease_waits_total`)).toBe(base + 1);
  });

  test('#10.7 the snapshot API: getAuthService().metrics() is a plain object of fixed shape', async () => {
    const pkg = require('..');
    const service = pkg.getAuthService();
    await login(ALICE);
    const m = service.metrics();
    expect(Object.keys(m).sort()).toEqual(
      ['backendBreakers', 'backendCalls', 'backendCallsInFlight', 'bucketBoundsSeconds', 'cache', 'jwtFastPathAnswers', 'outcomes', 'refreshLeaseWaits', 'singleFlightJoins', 'ssoUntrustedHeaders'].sort(),
    );
    expect(Object.keys(m.outcomes).sort()).toEqual(['bearer', 'login', 'logout', 'refresh']);
    for (const flow of Object.values(m.outcomes)) expect(typeof flow.ok).toBe('number');
    expect(m.outcomes.login.ok).toBeGreaterThanOrEqual(1);
    expect(m.bucketBoundsSeconds).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    const loginOk = m.backendCalls.find((c) => c.endpoint === 'login' && c.outcome === 'ok');
    expect(loginOk.count).toBeGreaterThanOrEqual(1);
    expect(loginOk.buckets.map((b) => b.le)).toEqual(m.bucketBoundsSeconds);
    expect(loginOk.buckets[loginOk.buckets.length - 1].count).toBeLessThanOrEqual(loginOk.count);
    expect(Object.keys(m.cache).sort()).toEqual(['backend_token', 'user']);
    expect(Object.keys(m.singleFlightJoins).sort()).toEqual(['backend_token', 'backend_user', 'jwks']);
    expect(m.backendCallsInFlight).toBe(0);
    // A snapshot is a copy: later counts do not change it.
    const loginsBefore = m.outcomes.login.ok;
    await login(ALICE);
    expect(m.outcomes.login.ok).toBe(loginsBefore);
    expect(service.metrics().outcomes.login.ok).toBe(loginsBefore + 1);
  });

  test('#10.7 labels are bounded: unknown codes and flows create no series, random tokens add no series', async () => {
    const native = require('../binding');
    const service = new native.CustomBackendAuthService({ ...h.vars });
    expect(service.countOutcome('login', 'NOT_A_CODE')).toBe(false);
    expect(service.countOutcome('login', 'bad_request')).toBe(false);
    expect(service.countOutcome('login', 'code="x"} 1\nevil')).toBe(false);
    expect(service.countOutcome('signup', 'ok')).toBe(false);
    expect(service.countOutcome('login', 'BAD_REQUEST')).toBe(true);
    const codes = service.metrics().outcomes.filter((o) => o.flow === 'login').map((o) => o.code);
    expect(codes.sort()).toEqual(['BAD_REQUEST', 'ok']);
    await service.close();

    const { STATUS_BY_CODE } = require('..');
    const allowed = {
      code: ['ok', ...Object.keys(STATUS_BY_CODE)],
      endpoint: ['login', 'refresh', 'userinfo', 'jwks', 'logout', 'introspection'],
      outcome: ['ok', 'refused', 'timeout', 'unavailable', 'rate_limited', 'bad_response'],
      cache: ['user', 'backend_token'],
      flight: ['backend_token', 'backend_user', 'jwks'],
      le: ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'],
      host: [h.mock.url], // the breakers' (#11.3): the configured backend hosts only
      lane: ['login', 'token', 'session', 'keys'], // and their lanes (#21.1)
    };
    await h.reconfigure({ BACKEND_BEARER_TOKENS: 'userinfo' });
    const junk = [];
    for (let i = 0; i < 30; i++) {
      junk.push(i % 2 ? `opaque-${i}-${Math.random()}` : `${'e'.repeat(i + 1)}.${i}.x`);
      await request(outer).get('/api/user').set('Authorization', `Bearer ${junk[i]}`);
    }
    const { res, samples } = await scrape();
    const ours = [...samples.keys()].filter((k) => k.startsWith(P));
    expect(value(samples, `${P}bearer_checks_total`, { code: 'TOKEN_INVALID' })).toBeGreaterThan(0);
    for (const key of ours) {
      for (const [, label, v] of key.matchAll(/(\w+)="([^"]*)"/g)) {
        expect(allowed[label]).toContain(v);
      }
    }
    // At most every flow x code, endpoint x outcome histogram (12 buckets, sum, count), the
    // breaker's two series per lane of the one backend host, and the rest.
    expect(ours.length).toBeLessThanOrEqual(4 * 20 + 6 * 6 * 14 + 1 + 2 * 2 + 3 + 1 + 2 * 4);
    for (const t of junk) expect(res.text).not.toContain(t);
  });

  test('#10.7 appendCustomBackendMetrics leaves other answers alone', async () => {
    const pkg = require('..');
    const app = express();
    app.use('/m', pkg.appendCustomBackendMetrics());
    app.get('/m/json', (req, res) => res.json({ a: 1 }));
    app.get('/m/text', (req, res) => res.type('text/plain').send('mine 1\n'));
    app.get('/m/fail', (req, res) => res.status(500).type('text/plain').send('broken'));
    const json = await request(app).get('/m/json');
    expect(json.body).toEqual({ a: 1 });
    const fail = await request(app).get('/m/fail');
    expect(fail.status).toBe(500);
    expect(fail.text).toBe('broken');
    // res.send sets Content-Length for its body: the appended answer is whole all the same.
    const text = await request(app).get('/m/text');
    expect(text.text.startsWith('mine 1\n')).toBe(true);
    expect(parseExposition(text.text).has(`${P}logins_total{code="ok"}`)).toBe(true);
    expect(Number(text.headers['content-length'])).toBe(Buffer.byteLength(text.text));
  });
});
