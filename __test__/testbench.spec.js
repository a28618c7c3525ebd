'use strict';

/** Tests of the test bench itself: the test DB (scripts/test-db.js) and the mock backend. */

const crypto = require('crypto');
const { MongoClient } = require('mongodb');
const { mongoUri } = require('./support/mongoUri');
const { startMockBackend } = require('./support/mockBackend');
const { startTestDb, stopTestDb } = require('../scripts/test-db');

const post = (url, body, headers = {}) => fetch(url, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const get = (url, token) => fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
const login = async (mock, username = 'Alice', password = 'alice-password-1') => {
  const r = await post(mock.urls.login, { username, password });
  expect(r.status).toBe(200);
  return r.json();
};

function verifyWithJwks(token, jwks) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, header };
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const hash = { RS256: 'sha256', ES256: 'sha256', EdDSA: null }[header.alg];
  const opts = header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  const ok = crypto.verify(hash, Buffer.from(`${h}.${p}`), opts, Buffer.from(s, 'base64url'));
  return { ok, header, claims: JSON.parse(Buffer.from(p, 'base64url')) };
}

describe('test DB', () => {
  test('answers ping at mongoUri(bench) and stores documents', async () => {
    const client = new MongoClient(mongoUri('bench'), { serverSelectionTimeoutMS: 5000 });
    try {
      await client.connect();
      expect((await client.db('admin').command({ ping: 1 })).ok).toBe(1);
      const col = client.db().collection('things');
      await col.deleteMany({});
      await col.insertOne({ name: 'widget', n: 1 });
      expect(await col.findOne({ name: 'widget' }, { projection: { _id: 0 } })).toEqual({ name: 'widget', n: 1 });
      expect(client.db().databaseName).toBe('bench');
      await client.db().dropDatabase();
    } finally {
      await client.close();
    }
  });

  test('startTestDb / stopTestDb start a second server and wait until its pid is gone', async () => {
    const db = await startTestDb({ log: false });
    expect(db.uri).toBe(`mongodb://127.0.0.1:${db.port}`);
    expect(process.env.MONGO_URI).not.toBe(db.uri);
    const client = new MongoClient(db.uri, { serverSelectionTimeoutMS: 5000 });
    await client.db('admin').command({ ping: 1 });
    await client.close();
    await stopTestDb(db.pid);
    expect(() => process.kill(db.pid, 0)).toThrow();
    await db.stop(); // a second stop is a no-op
  }, 60000);
});

describe('mock backend', () => {
  let mock;
  beforeAll(async () => {
    mock = await startMockBackend();
  });
  afterAll(() => mock.close());
  beforeEach(() => mock.reset({ tokens: true, users: true, keys: true }));

  test('urls and defaults', () => {
    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(mock.urls).toEqual({
      login: `${mock.url}/api/auth/login`,
      userinfo: `${mock.url}/api/auth/userinfo`,
      refresh: `${mock.url}/api/auth/refresh`,
      logout: `${mock.url}/api/auth/logout`,
      jwks: `${mock.url}/.well-known/jwks.json`,
      introspection: `${mock.url}/oauth/introspect`,
      mfa: `${mock.url}/api/auth/mfa/verify`,
    });
    expect(mock.issuer).toBe(mock.url);
    expect(mock.users.map((u) => u.id)).toEqual(['u-1001', 'u-1002', 'u-1003']);
  });

  test('#11.5 introspection: client credentials checked (RFC 6749 2.3.1 encoding), active only for live tokens it issued', async () => {
    const enc = (v) => new URLSearchParams({ v }).toString().slice(2);
    const basic = (id, secret) => `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
    const { id, secret } = mock.introspectionClient;
    const introspect = (token, auth = basic(id, secret)) => fetch(mock.urls.introspection, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: auth },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    });
    const t = mock.issueTokens('u-1001');
    expect((await introspect(t.token, basic(id, 'wrong'))).status).toBe(401);
    // Unencoded credentials (a client skipping 2.3.1) are wrong credentials: the secret has `:+/%&`.
    expect((await introspect(t.token, `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`)).status).toBe(401);
    expect((await introspect('')).status).toBe(400);
    const active = await (await introspect(t.token)).json();
    expect(active).toMatchObject({
      active: true, sub: 'u-1001', username: 'Alice', email: 'Alice@Example.com', roles: ['staff'],
      aud: mock.audience, iss: mock.issuer, token_type: 'Bearer', scope: expect.stringContaining('chat'),
    });
    expect(active.exp).toBe(Math.floor(mock.tokenInfo(t.token).exp / 1000));
    expect(await (await introspect(t.refreshToken)).json()).toMatchObject({ active: true, token_type: 'refresh_token' });
    expect(await (await introspect('at_unknown')).json()).toEqual({ active: false });
    mock.revokeToken(t.token);
    expect(await (await introspect(t.token)).json()).toEqual({ active: false });
    mock.set({ introspectionAnswer: ({ active, ...rest }) => rest }); // eslint-disable-line no-unused-vars
    expect((await (await introspect(mock.issueAccessToken('u-1002'))).json()).active).toBeUndefined();
    expect(mock.calls.introspection).toBe(8);
    mock.reset();
  });

  test('login -> userinfo -> refresh (rotation, reuse) -> logout', async () => {
    const a = await login(mock, 'alice@EXAMPLE.com');
    expect(a).toEqual({
      token: expect.stringMatching(/^at_[0-9a-f]+$/),
      refreshToken: expect.stringMatching(/^rt_[0-9a-f]+$/),
      expiresIn: 3600,
      user: { id: 'u-1001', username: 'Alice', email: 'Alice@Example.com', name: 'Alice Liddell', roles: ['staff'] },
      session_id: mock.lastSessionId,
    });
    expect(a.session_id).toMatch(/^[0-9a-f]{16}$/);
    expect(mock.requests[0]).toMatchObject({
      name: 'login', method: 'POST', body: { username: 'alice@EXAMPLE.com', password: 'alice-password-1' },
    });
    expect(mock.requests[0].headers['content-type']).toMatch(/application\/json/);

    let r = await get(mock.urls.userinfo, a.token);
    expect(r.status).toBe(200);
    expect((await r.json()).user.id).toBe('u-1001');
    expect((await get(mock.urls.userinfo)).status).toBe(401);
    expect((await get(mock.urls.userinfo, 'at_nope')).status).toBe(401);

    r = await post(mock.urls.refresh, { refreshToken: a.refreshToken });
    expect(r.status).toBe(200);
    const b = await r.json();
    expect(Object.keys(b).sort()).toEqual(['expiresIn', 'refreshToken', 'token']);
    expect(b.refreshToken).not.toBe(a.refreshToken);
    expect((await get(mock.urls.userinfo, b.token)).status).toBe(200);

    // Reuse of the rotated token: 401 and the whole family is revoked.
    r = await post(mock.urls.refresh, { refreshToken: a.refreshToken });
    expect(r.status).toBe(401);
    expect(mock.reuseDetected).toBe(1);
    expect((await post(mock.urls.refresh, { refreshToken: b.refreshToken })).status).toBe(401);
    expect((await get(mock.urls.userinfo, b.token)).status).toBe(401);
    expect((await get(mock.urls.userinfo, a.token)).status).toBe(401);

    // Logout revokes what it is given.
    const c = await login(mock, 'bob', 'bob-password-2');
    r = await post(mock.urls.logout, { refreshToken: c.refreshToken }, { Authorization: `Bearer ${c.token}` });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
    expect(mock.lastLogout).toEqual({ refreshToken: c.refreshToken });
    expect((await post(mock.urls.refresh, { refreshToken: c.refreshToken })).status).toBe(401);
    expect((await get(mock.urls.userinfo, c.token)).status).toBe(401);
    expect(mock.calls).toEqual({ login: 2, userinfo: 7, refresh: 4, logout: 1, jwks: 0, introspection: 0, mfa: 0 });
  });

  test('login errors: wrong password, unknown user, bad JSON, missing fields', async () => {
    expect((await post(mock.urls.login, { username: 'bob', password: 'nope' })).status).toBe(401);
    const r = await post(mock.urls.login, { username: 'nobody', password: 'x' });
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ message: 'Invalid credentials' });
    expect((await post(mock.urls.login, '{"username":')).status).toBe(400);
    expect((await post(mock.urls.login, { username: 'bob' })).status).toBe(400);
    expect((await post(mock.urls.refresh, 'nope')).status).toBe(400);
    expect((await post(mock.urls.refresh, { refreshToken: 'rt_unknown' })).status).toBe(401);
    expect((await post(mock.urls.login, 'x'.repeat(1024 * 1024 + 1))).status).toBe(413);
  });

  test('rotateRefresh off / revokeFamilyOnReuse off', async () => {
    mock.set({ rotateRefresh: false });
    const a = await login(mock);
    for (let i = 0; i < 2; i++) {
      const r = await post(mock.urls.refresh, { refreshToken: a.refreshToken });
      expect(r.status).toBe(200);
      expect((await r.json()).refreshToken).toBe(a.refreshToken);
    }
    mock.set({ rotateRefresh: true, revokeFamilyOnReuse: false });
    const b = await (await post(mock.urls.refresh, { refreshToken: a.refreshToken })).json();
    expect((await post(mock.urls.refresh, { refreshToken: a.refreshToken })).status).toBe(401);
    expect((await post(mock.urls.refresh, { refreshToken: b.refreshToken })).status).toBe(200);
  });

  test('latencyMs (global, and per endpoint wins)', async () => {
    // A latency far beyond the test timeout: only an endpoint without it can answer at all.
    mock.set({ latencyMs: 600_000, jwks: { latencyMs: 0 } });
    const err = await fetch(mock.urls.userinfo, { signal: AbortSignal.timeout(200) }).catch((e) => e);
    expect(err.name).toBe('TimeoutError');
    expect((await get(mock.urls.jwks)).status).toBe(200);
    mock.set({ latencyMs: 150 });
    const t = Date.now();
    expect((await get(mock.urls.userinfo)).status).toBe(401);
    expect(Date.now() - t).toBeGreaterThanOrEqual(140); // a lower bound: load cannot make it fail
  });

  test('status (global and per endpoint)', async () => {
    mock.set({ status: 500, login: { status: 503 } });
    let r = await post(mock.urls.login, { username: 'bob', password: 'bob-password-2' });
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ message: 'forced error' });
    expect((await get(mock.urls.jwks)).status).toBe(500);
    mock.set({ status: null });
    expect((await get(mock.urls.jwks)).status).toBe(200);
    expect((await post(mock.urls.login, {})).status).toBe(503);
    mock.set({ login: { status: 403 } });
    r = await post(mock.urls.login, { username: 'bob', password: 'bob-password-2' });
    expect(r.status).toBe(403);
    mock.reset();
    expect((await post(mock.urls.login, { username: 'bob', password: 'bob-password-2' })).status).toBe(200);
  });

  test('hang: counted, never answered; close() does not wait for it', async () => {
    const m2 = await startMockBackend({ userinfo: { hang: true } });
    const err = await fetch(m2.urls.userinfo, { signal: AbortSignal.timeout(200) }).catch((e) => e);
    expect(err.name).toBe('TimeoutError');
    expect(m2.calls.userinfo).toBe(1);
    // A raw request left hanging: close() must still finish (the test timeout is the bound).
    const pending = fetch(m2.urls.userinfo).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    await m2.close();
    expect((await pending).name).toBe('TypeError'); // fetch failed: socket closed
    expect(m2.calls.userinfo).toBe(2);
  });

  test('malformed, noToken, noUserInLogin', async () => {
    mock.set({ login: { malformed: true } });
    let r = await post(mock.urls.login, { username: 'bob', password: 'bob-password-2' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    const text = await r.text();
    expect(() => JSON.parse(text)).toThrow();

    mock.reset();
    mock.set({ noToken: true, noUserInLogin: true });
    const a = await login(mock, 'bob', 'bob-password-2');
    expect(a).not.toHaveProperty('token');
    expect(a).not.toHaveProperty('user');
    expect(a.refreshToken).toMatch(/^rt_/);
    r = await post(mock.urls.refresh, { refreshToken: a.refreshToken });
    expect(await r.json()).not.toHaveProperty('token');
  });

  test('fieldStyle snake, userShape bare, userFields', async () => {
    mock.set({ fieldStyle: 'snake' });
    const a = await login(mock, 'CAROL', 'carol-password-3');
    expect(Object.keys(a).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'session_id', 'user']);
    const r = await post(mock.urls.refresh, { refreshToken: a.refresh_token });
    expect(Object.keys(await r.json()).sort()).toEqual(['access_token', 'expires_in', 'refresh_token']);

    mock.set({ userShape: 'bare' });
    expect(await (await get(mock.urls.userinfo, a.access_token)).json()).toMatchObject({ id: 'u-1003', email: 'carol@example.org' });

    mock.set({
      userShape: 'wrapped',
      userFields: (u) => ({ uid: u.id, profile: { mail: u.email }, login: u.username, displayName: u.name, groups: u.roles }),
    });
    expect(await (await get(mock.urls.userinfo, a.access_token)).json()).toEqual({
      user: { uid: 'u-1003', profile: { mail: 'carol@example.org' }, login: 'carol', displayName: 'Carol', groups: [] },
    });
  });

  test('users can change at run time; minted, expired and revoked tokens', async () => {
    const t = mock.issueAccessToken('u-1002');
    mock.updateUser('u-1002', { roles: ['staff'], name: 'Robert Builder' });
    expect((await (await get(mock.urls.userinfo, t)).json()).user).toMatchObject({ name: 'Robert Builder', roles: ['staff'] });
    mock.addUser({ id: 'u-2000', username: 'Dave', password: 'pw', email: 'Dave@Example.NET', name: 'Dave' });
    expect((await login(mock, 'dave@example.net', 'pw')).user.id).toBe('u-2000');
    mock.expire(t);
    expect((await get(mock.urls.userinfo, t)).status).toBe(401);
    const t2 = mock.issueAccessToken('u-1002', { ttlSec: 60 });
    mock.revokeUser('u-1002');
    expect((await get(mock.urls.userinfo, t2)).status).toBe(401);
  });

  test.each(['RS256', 'ES256', 'EdDSA'])('jwtTokens %s: signed access tokens verify against the JWKS', async (alg) => {
    mock.set({ jwtTokens: alg });
    const a = await login(mock, 'bob', 'bob-password-2');
    const jwks = await (await get(mock.urls.jwks)).json();
    const v = verifyWithJwks(a.token, jwks);
    expect(v.ok).toBe(true);
    expect(v.header).toMatchObject({ alg, typ: 'JWT' });
    expect(jwks.keys.find((k) => k.kid === v.header.kid)).toMatchObject({ alg, use: 'sig' });
    expect(v.claims).toMatchObject({
      sub: 'u-1002', iss: mock.url, aud: 'librechat', email: 'bob@example.com', name: 'Bob Builder',
      preferred_username: 'bob', roles: ['admin', 'staff'],
    });
    expect(v.claims.exp - v.claims.iat).toBe(3600);
    expect((await get(mock.urls.userinfo, a.token)).status).toBe(200);
  });

  test('signingKey: another process can sign tokens the published JWKS verifies', async () => {
    const k = mock.signingKey('EdDSA');
    expect(k).toEqual({ kid: expect.any(String), alg: 'EdDSA', privateKeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) });
    const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: k.kid })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ sub: 'u-1001' })).toString('base64url');
    const sig = crypto.sign(null, Buffer.from(`${header}.${body}`), crypto.createPrivateKey(k.privateKeyPem)).toString('base64url');
    const jwks = await (await get(mock.urls.jwks)).json();
    expect(verifyWithJwks(`${header}.${body}.${sig}`, jwks)).toMatchObject({ ok: true, header: { kid: k.kid } });
  });

  test('rotateKeys and forged tokens', async () => {
    mock.set({ jwtTokens: 'RS256' });
    const oldKid = verifyWithJwks(mock.issueAccessToken('u-1001'), mock.jwks()).header.kid;
    const newKid = mock.rotateKeys();
    let jwks = await (await get(mock.urls.jwks)).json();
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    const t = mock.issueAccessToken('u-1001');
    expect(verifyWithJwks(t, jwks)).toMatchObject({ ok: true, header: { kid: newKid } });
    mock.rotateKeys({ dropOld: true });
    jwks = await (await get(mock.urls.jwks)).json();
    expect(jwks.keys.filter((k) => k.alg === 'RS256')).toHaveLength(1);
    expect(jwks.keys.map((k) => k.kid)).not.toContain(newKid);
    expect(verifyWithJwks(t, jwks).ok).toBe(false);

    const claims = { sub: 'u-1001', iss: mock.issuer, aud: 'librechat', exp: Math.floor(Date.now() / 1000) + 60 };
    const good = mock.signJwt(claims);
    expect(verifyWithJwks(good, jwks).ok).toBe(true);
    expect((await get(mock.urls.userinfo, good)).status).toBe(200);
    const forged = mock.signJwt(claims, { key: mock.newKey('RS256'), kid: jwks.keys[0].kid });
    expect(verifyWithJwks(forged, jwks).ok).toBe(false);
    expect((await get(mock.urls.userinfo, forged)).status).toBe(401);
  });
});

describe('npm run bench (structure only: no figure is checked)', () => {
  const bench = require('../bench/run');
  const path = require('path');
  const os = require('os');
  const fs = require('fs');
  const { spawn } = require('child_process');

  test('#12.1 targets are closeness to the limit: d/a and f/a >= 0.95; d/b, a/b and f/e shown, not targets', () => {
    const byName = Object.fromEntries(bench.RATIOS.map((r) => [r.name, r]));
    expect(byName['d/a']).toMatchObject({ num: 'd', den: 'a', target: 0.95 });
    expect(byName['f/a']).toMatchObject({ num: 'f', den: 'a', target: 0.95 });
    for (const n of ['d/b', 'a/b', 'f/e', 'gRS256/a', 'gES256/a', 'gEdDSA/a', 'p/a', 'd/p', 'f/p']) expect(byName[n]?.target).toBeNull();
    // Passport alone (p) is the ceiling of d/a and f/a: measured in the same run.
    expect(byName['p/a']).toMatchObject({ num: 'p', den: 'a' });
    expect(byName['d/p']).toMatchObject({ num: 'd', den: 'p' });
    expect(bench.JWKS_RS256_TARGET_US).toBe(30);
  });

  test('#12.3 every row is there: JWKS per algorithm, login and refresh against LibreChat\'s own', () => {
    expect(bench.STACKS.map((s) => s.key)).toEqual([
      'a', 'p', 'b', 'c', 'd', 'd0', 'dx', 'e', 'f', 'fx', 'gRS256', 'gES256', 'gEdDSA', 'login', 'loginLC', 'refresh', 'refreshLC', 'refreshSSO', 'bN', 'dN',
    ]);
    expect(bench.STACKS.filter((s) => s.jwks).map((s) => s.env.BACKEND_BEARER_TOKENS)).toEqual(['jwks', 'jwks', 'jwks']);
  });

  // One short round of every row, against the test database: each stack must pass its smoke check
  // and every one-shot row must answer. Timings are not looked at.
  test('#12.4 a smoke run of one short round of every row writes every row, the machine and the targets', async () => {
    const out = path.join(os.tmpdir(), `lcbench-smoke-${process.pid}.json`);
    const env = {
      ...process.env,
      MONGO_URI: mongoUri('bench_smoke'),
      BENCH_RESULTS_FILE: out,
      BENCH_ROUNDS: '1', BENCH_DURATION: '0.3', BENCH_NEW_DURATION: '0.3', BENCH_WARMUP: '0', BENCH_LOW_LOAD_SEC: '0.3',
      BENCH_CONNECTIONS: '4', BENCH_USERS: '20', BENCH_REFRESHES: '10', BENCH_MICRO_MS: '20', BENCH_MICRO_ITERS: '200',
      BENCH_JWKS_TOKENS: '60', BENCH_MEMORY_SIZES: '50,100', BENCH_FLOOD: '100', BENCH_COLD_RUNS: '1', BENCH_PIN: '0',
    };
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'bench', 'run.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.stderr.on('data', (d) => { text += d; });
    const code = await new Promise((r) => child.on('exit', r));
    expect({ code, tail: code === 0 ? '' : text.slice(-2000) }).toEqual({ code: 0, tail: '' });
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    fs.rmSync(out, { force: true });
    const states = Object.fromEntries(report.stacks.map((s) => [s.key, s.status === 'failed' ? `failed: ${s.reason}` : 'ran']));
    expect(states).toEqual(Object.fromEntries(bench.STACKS.map((s) => [s.key, 'ran'])));
    // A row whose measured run got no answer measured nothing (LibreChat's logins once outlasted it).
    const answered = Object.fromEntries(report.stacks.map((s) => [s.key, s.runs.map((r) => r.ok2xx > 0)]));
    expect(answered).toEqual(Object.fromEntries(bench.STACKS.map((s) => [s.key, [true]])));
    expect(report.machine).toMatchObject({ cpuModel: expect.any(String), speedReqPerSecA: expect.any(Number), summary: expect.any(String) });
    expect(report.targets.map((t) => t.name)).toEqual(expect.arrayContaining(['d/a >= 0.95', 'f/a >= 0.95', 'JWKS RS256 first sight <= 30 us']));
    for (const t of report.targets) expect(t.machine).toBe(report.machine.summary);
    expect(text).toMatch(/d\/a >= 0\.95\s+(met|NOT MET)/);
    expect(report.targets.find((t) => t.name === 'd/a >= 0.95').note).toMatch(/^ceiling p\/a \d\.\d\d \(passport alone\)$/);
    expect(report.micro.jwks.results.filter((r) => r.error)).toEqual([]);
    expect(report.micro.jwks.results.map((r) => `${r.key} ${r.alg}`)).toEqual(expect.arrayContaining(
      ['RS256', 'ES256', 'EdDSA'].flatMap((a) => [`ours ${a}`, `jose ${a}`, `fastJwt ${a}`]),
    ));
    expect(report.flows.login.ours.lowLoad.backendMs).toBe(20);
    expect(report.flows.login.librechat).not.toBeNull();
    expect(report.flows.refresh.librechat).not.toBeNull();
    expect(report.probes.singleflight.map((r) => [r.tabs, r.backendCalls])).toEqual([[1, 1], [5, 1], [20, 1], [50, 1]]);
    expect(report.probes.cold.fromRequireToFirstAnswerMs).toBeGreaterThan(0);
    expect(report.probes.memory.users.map((r) => r.entries)).toEqual([50, 100]);
    expect(report.probes.memory.flood).toMatchObject({ waves: 3, refused: 300, rssAfterMB: [expect.any(Number), expect.any(Number), expect.any(Number)] });
    // Where the time goes: every phase in seconds, and the five-minute target (judged on a
    // full run only: this one changes the settings).
    expect(report.phases).toMatchObject({
      setupSec: expect.any(Number), microSec: expect.any(Number), totalSec: expect.any(Number), memoryUsersSec: expect.any(Number),
      rows: Object.fromEntries(bench.STACKS.map((st) => [st.key, expect.any(Number)])),
      probes: { singleflight: expect.any(Number), cold: expect.any(Number), memory: expect.any(Number) },
    });
    expect(report.targets.find((t) => t.name === 'whole bench <= 300 s')).toMatchObject({ value: report.phases.totalSec, met: null });
    expect(text).toMatch(/time \(s\): total [\d.]+ = setup [\d.]+ \+ rows [\d.]+ \+ micro [\d.]+ \+ probes [\d.]+/);
    expect(text).toMatch(/whole bench <= 300 s\s+n\/a/);
  }, 240000);
});
