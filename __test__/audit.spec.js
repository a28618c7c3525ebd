'use strict';

// Issue 11, section 4: audit events. Each action over HTTP against the LibreChat-shaped app emits
// exactly its event, to the logger (`info`, AUDIT_PREFIX + JSON) and to `onAuditEvent`, with the
// identifiers it knows and never a secret.

const crypto = require('crypto');
const path = require('path');
const { spawnSync } = require('child_process');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { startHarness, parseSetCookies } = require('./support/harness');
const { requestIdOf } = require('../lib/audit');
const { EVENTS_PATH, SIGNATURE_HEADER, EVENTS_SECRET, backendEvent, signEvent } = require('./support/events');
const { ALICE, CAROL, sleep, postLogin, postRefresh, refreshCookieOf, rememberTokensIn } = require('./support/auth');

const HEX_ID = /^[0-9a-f]{24}$/;

describe('#11.4 audit events', () => {
  let h;
  /** What onAuditEvent received, for the current test and for the whole file. */
  let events = [];
  const everyEvent = [];
  const seen = [];
  const onAuditEvent = (e) => {
    events.push(e);
    everyEvent.push(e);
  };
  let firstLine = 0;

  /** The events logged since the test began (the `info` lines under the prefix). */
  const logged = () =>
    h.logs.lines
      .slice(firstLine)
      .filter((l) => l.startsWith('info [customBackendAuth:audit] '))
      .map((l) => JSON.parse(l.slice('info [customBackendAuth:audit] '.length)));
  /** Lets the callbacks (run after the request's work) and native deliveries run. */
  const settle = async (count) => {
    for (let i = 0; i < 400 && (count === undefined ? i < 3 : events.length < count); i++) await sleep(10);
    await sleep(30); // and any event that should not be there
  };
  /** The events of the test so far: the callback's, which must equal the logged ones. */
  const emitted = async (count) => {
    await settle(count);
    expect(logged()).toEqual(events);
    return events;
  };
  const names = (list) => list.map((e) => e.event);

  const remember = rememberTokensIn(seen);
  const login = (body = ALICE, headers = {}) => postLogin(h.app, body, headers).then(remember);
  const refresh = (cookie) => postRefresh(h.app, cookie).then(remember);
  const cookieOf = refreshCookieOf;
  const sessionIdOf = (res) => jwt.decode(parseSetCookies(res).refreshToken.value).sessionId;
  const userOf = (backendId) => h.db.collection('users').findOne({ idOnTheSource: backendId });

  beforeAll(async () => {
    h = await startHarness({ db: 'audit' });
  });
  beforeEach(async () => {
    await h.reconfigure({ onAuditEvent });
    await h.clear();
    h.app.set('trust proxy', 1); // LibreChat's default (TRUST_PROXY)
    events = [];
    firstLine = h.logs.lines.length;
  });
  afterAll(async () => {
    // No secret in any event the callback got: every password, token and refresh token exchanged,
    // every token the backend issued, every configured secret, nor their SHA-256 (the stored hash).
    const secrets = [...h.secrets, ...h.mock.issuedTokens(), ...seen].filter((s) => typeof s === 'string' && s.length >= 8);
    const hashes = secrets.map((s) => crypto.createHash('sha256').update(s).digest('hex'));
    expect(everyEvent.length).toBeGreaterThan(10);
    const text = JSON.stringify(everyEvent);
    for (const s of [...secrets, ...hashes]) {
      if (text.includes(s)) throw new Error(`a secret appears in an audit event: ${s.slice(0, 6)}…`);
    }
    h.assertNoSecretsLogged([...seen, ...hashes]);
    await h.close();
  });

  test('#11.4 login: login.success only, with user, backend id, session, ip, request id and time', async () => {
    const before = Date.now();
    const res = await login(ALICE, { 'X-Request-Id': 'req-login-1' });
    expect(res.status).toBe(200);
    const user = await userOf('u-1001');
    const [e, ...rest] = await emitted(1);
    expect(rest).toEqual([]);
    expect(e).toEqual({
      time: expect.any(String),
      event: 'login.success',
      outcome: 'ok',
      userId: user._id.toHexString(),
      backendId: 'u-1001',
      session: sessionIdOf(res),
      ip: expect.stringMatching(/127\.0\.0\.1$/),
      requestId: 'req-login-1',
    });
    expect(Date.parse(e.time)).toBeGreaterThanOrEqual(before - 1000);
    expect(e.time).toBe(new Date(e.time).toISOString());
  });

  test('#11.4 login failures: login.failure with the code, and nothing else', async () => {
    expect((await login({ email: 'Alice', password: 'wrong-password-9' })).status).toBe(404);
    expect((await login({ email: 'Alice' })).status).toBe(400);
    const list = await emitted(2);
    expect(list.map((e) => [e.event, e.outcome, e.userId, e.session])).toEqual([
      ['login.failure', 'INVALID_CREDENTIALS', null, null],
      ['login.failure', 'BAD_REQUEST', null, null],
    ]);
  });

  test('#11.4 login refused by policy: login.failure ACCESS_DENIED; with BACKEND_LOGOUT_URL the addon audits the backend session it ended (no request)', async () => {
    await h.reconfigure({ onAuditEvent, BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff', BACKEND_LOGOUT_URL: h.mock.urls.logout });
    expect((await login(CAROL, { 'X-Request-Id': 'req-refused' })).status).toBe(404);
    // Two sources, so either may come first.
    const list = [...(await emitted(2))].sort((a, b) => a.event.localeCompare(b.event));
    expect(names(list)).toEqual(['backend_session.ended', 'login.failure']);
    expect(list[1]).toMatchObject({ outcome: 'ACCESS_DENIED', userId: null, backendId: 'u-1003', requestId: 'req-refused' });
    // From the addon's background task: no request, so no ip and no request id.
    expect(list[0]).toEqual({
      time: expect.any(String),
      event: 'backend_session.ended',
      outcome: 'ok',
      userId: null,
      backendId: 'u-1003',
      session: null,
      ip: null,
    });
    expect(h.mock.calls.logout).toBe(1);
    expect(h.service.auditEventsDropped).toBe(0);
  });

  test('#11.4 2FA: login.2fa_pending, no session yet', async () => {
    await login();
    await h.db.collection('users').updateOne({ idOnTheSource: 'u-1001' }, { $set: { twoFactorEnabled: true } });
    events = [];
    firstLine = h.logs.lines.length;
    const res = await login();
    expect(res.body.twoFAPending).toBe(true);
    seen.push(res.body.tempToken);
    const user = await userOf('u-1001');
    const list = await emitted(1);
    expect(list.map((e) => [e.event, e.outcome, e.userId, e.backendId, e.session])).toEqual([
      ['login.2fa_pending', 'ok', user._id.toHexString(), 'u-1001', null],
    ]);
  });

  test('#11.4 refresh: refresh.success with the session of the login', async () => {
    const res = await login();
    const refreshed = await refresh(cookieOf(res));
    expect(refreshed.status).toBe(200);
    const list = await emitted(2);
    expect(names(list)).toEqual(['login.success', 'refresh.success']);
    expect(list[1]).toMatchObject({ outcome: 'ok', userId: list[0].userId, backendId: 'u-1001', session: sessionIdOf(res) });
  });

  test('#11.4 refresh reuse: refresh.reuse_detected (not refresh.refused), with user and session', async () => {
    await h.reconfigure({ onAuditEvent, REFRESH_GRACE_MS: '0' });
    const res = await login();
    const first = await refresh(cookieOf(res));
    await refresh(cookieOf(first));
    await sleep(5);
    const replay = await refresh(cookieOf(res));
    expect(replay.status).toBe(401);
    const list = await emitted(4);
    expect(names(list)).toEqual(['login.success', 'refresh.success', 'refresh.success', 'refresh.reuse_detected']);
    expect(list[3]).toMatchObject({ outcome: 'SESSION_INVALID', userId: list[0].userId, session: sessionIdOf(res) });
  });

  test('#11.4 refresh refused: refresh.refused with the code; a forged token names no one', async () => {
    const res = await login();
    await h.db.collection('sessions').deleteMany({});
    expect((await refresh(cookieOf(res))).status).toBe(401);
    const forged = jwt.sign({ id: 'a'.repeat(24), sessionId: 'b'.repeat(24) }, 'not-the-refresh-secret', { expiresIn: 60 });
    expect((await refresh(`refreshToken=${forged}`)).status).toBe(401);
    seen.push(forged);
    const list = await emitted(3);
    expect(list.map((e) => [e.event, e.outcome])).toEqual([
      ['login.success', 'ok'],
      ['refresh.refused', 'SESSION_INVALID'],
      ['refresh.refused', 'SESSION_INVALID'],
    ]);
    expect(list[1]).toMatchObject({ userId: list[0].userId, session: sessionIdOf(res) });
    expect(list[2]).toMatchObject({ userId: null, session: null });
  });

  test('#11.4 refresh during a backend outage: refresh.outage with the backend\'s code', async () => {
    const res = await login();
    h.mock.set({ refresh: { status: 503 } });
    const answered = await refresh(cookieOf(res));
    expect(answered.status).toBe(200);
    const list = await emitted(2);
    expect(names(list)).toEqual(['login.success', 'refresh.outage']);
    expect(list[1]).toMatchObject({ outcome: 'BACKEND_UNAVAILABLE', userId: list[0].userId, session: sessionIdOf(res) });
  });

  test('#11.4 refresh that cannot be decided now (backend down, backend session mode): refresh.failure', async () => {
    await h.reconfigure({ onAuditEvent, BACKEND_SESSION_MODE: 'backend' });
    const res = await login();
    h.mock.set({ refresh: { status: 503 } });
    expect((await refresh(cookieOf(res))).status).toBe(503);
    const list = await emitted(2);
    expect(list.map((e) => [e.event, e.outcome])).toEqual([
      ['login.success', 'ok'],
      ['refresh.failure', 'BACKEND_UNAVAILABLE'],
    ]);
  });

  test('#11.4 logout: logout with user, backend id and the session ended', async () => {
    const res = await login();
    const out = await request(h.app)
      .post('/api/auth/logout')
      .set('Authorization', `Bearer ${res.body.token}`)
      .set('Cookie', cookieOf(res))
      .set('X-Correlation-Id', 'corr-7');
    expect(out.status).toBe(200);
    const list = await emitted(2);
    expect(names(list)).toEqual(['login.success', 'logout']);
    expect(list[1]).toMatchObject({ outcome: 'ok', userId: list[0].userId, backendId: 'u-1001', session: sessionIdOf(res), requestId: 'corr-7' });
  });

  test('#11.4 log out everywhere: logout.all only, with user and backend id; ending one session: logout with it', async () => {
    const a = await login();
    const b = await login();
    const user = await userOf('u-1001');
    await emitted(2);
    events = [];
    firstLine = h.logs.lines.length;
    const end = await request(h.app).delete(`/api/auth/sessions/${sessionIdOf(a)}`).set('Authorization', `Bearer ${b.body.token}`);
    expect(end.status).toBe(200);
    const refreshed = await refresh(cookieOf(b)); // b's access token predates the revocation
    const all = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${refreshed.body.token}`);
    expect(all.status).toBe(200);
    const list = await emitted(3);
    expect(names(list)).toEqual(['logout', 'refresh.success', 'logout.all']);
    expect(list[0]).toMatchObject({ outcome: 'ok', userId: user._id.toHexString(), backendId: 'u-1001', session: sessionIdOf(a) });
    expect(list[2]).toMatchObject({ outcome: 'ok', userId: user._id.toHexString(), backendId: 'u-1001', session: null, ip: expect.stringMatching(/127\.0\.0\.1$/) });
  });

  test('#11.4 backend events: backend_event.received (with the refusal code) and backend_event.applied', async () => {
    const { EVENTS_SECRET, backendEvent, postEvent } = require('./support/events');
    await h.reconfigure({ onAuditEvent, BACKEND_EVENTS_SECRET: EVENTS_SECRET });
    await login();
    const user = await userOf('u-1001');
    await emitted(1);
    events = [];
    firstLine = h.logs.lines.length;
    expect((await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'), { signature: 't=1,v1=00' })).status).toBe(401);
    expect((await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'))).status).toBe(200);
    const list = await emitted(3);
    expect(list.map((e) => [e.event, e.outcome, e.userId, e.backendId])).toEqual([
      ['backend_event.received', 'SIGNATURE_INVALID', null, null],
      ['backend_event.received', 'ok', user._id.toHexString(), 'u-1001'],
      ['backend_event.applied', 'ok', user._id.toHexString(), 'u-1001'],
    ]);
  });

  test('#11.4 the breaker: breaker.opened and breaker.closed from the addon, with the backend host and lane', async () => {
    await h.reconfigure({ onAuditEvent, BACKEND_BREAKER_FAILURES: '2', BACKEND_BREAKER_COOLDOWN_MS: '200' });
    h.mock.set({ login: { status: 503 } });
    for (let i = 0; i < 2; i++) await login();
    h.mock.reset();
    await sleep(250);
    expect((await login()).status).toBe(200); // the probe: answered, so the breaker closes
    const list = await emitted(6);
    const host = new URL(h.mock.urls.login).origin;
    expect(list.filter((e) => e.event.startsWith('breaker.'))).toEqual([
      { time: expect.any(String), event: 'breaker.opened', outcome: 'ok', userId: null, backendId: null, session: null, ip: null, host, lane: 'login' },
      { time: expect.any(String), event: 'breaker.closed', outcome: 'ok', userId: null, backendId: null, session: null, ip: null, host, lane: 'login' },
    ]);
  });

  test('#11.4 a backend token refused by the policy: access.denied (403); accepted requests are not audited', async () => {
    await h.reconfigure({ onAuditEvent, BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff' });
    const ok = h.mock.issueAccessToken('u-1001');
    const refused = h.mock.issueAccessToken('u-1003');
    seen.push(ok, refused);
    await login(); // Alice's LibreChat user exists (no provisioning from a bearer token)
    await settle(1);
    events = [];
    firstLine = h.logs.lines.length;
    expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${ok}`)).status).toBe(200);
    expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${refused}`)).status).toBe(403);
    const list = await emitted(1);
    expect(list.map((e) => [e.event, e.outcome, e.backendId])).toEqual([['access.denied', 'ACCESS_DENIED', 'u-1003']]);
  });

  test('#11.4 ip is req.ip: X-Forwarded-For counts only when the application trusts the proxy', async () => {
    await login(ALICE, { 'X-Forwarded-For': '203.0.113.7' });
    h.app.set('trust proxy', false);
    await login(ALICE, { 'X-Forwarded-For': '203.0.113.7' });
    const list = await emitted(2);
    expect(list[0].ip).toBe('203.0.113.7');
    expect(list[1].ip).toMatch(/127\.0\.0\.1$/);
  });

  test('#11.4 request id: control characters stripped, at most 128 characters, a JWT-shaped value skipped', async () => {
    await login(ALICE, { 'X-Request-Id': `\tid\t${'x'.repeat(300)}` });
    await login(ALICE, { 'X-Request-Id': 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl' });
    const list = await emitted(2);
    expect(list[0].requestId).toBe(`id${'x'.repeat(126)}`);
    expect(list[1].requestId).toBeUndefined();
    // LibreChat's own id (req.requestId, set by its requestContextMiddleware) comes first.
    expect(requestIdOf({ requestId: 'lc-1', headers: { 'x-request-id': 'hdr' } })).toBe('lc-1');
    expect(requestIdOf({ headers: { 'x-request-id': ['a-1', 'a-2'] } })).toBe('a-1');
    expect(requestIdOf({ headers: { 'x-request-id': 'a\u0085b\u2028c\u0000' } })).toBe('abc');
    expect(requestIdOf({ headers: {} })).toBeNull();
  });

  test('#11.4 a throwing, rejecting or never-settling callback does not break or delay the login', async () => {
    for (const cb of [
      () => {
        throw new Error('callback broke');
      },
      () => Promise.reject(new Error('callback rejected')),
      () => new Promise(() => {}),
    ]) {
      await h.reconfigure({ onAuditEvent: cb });
      firstLine = h.logs.lines.length;
      const res = await login();
      expect(res.status).toBe(200);
      expect((await refresh(cookieOf(res))).status).toBe(200);
      await settle();
      expect(logged().map((e) => e.event)).toEqual(['login.success', 'refresh.success']);
    }
    // Reported once per service, never with the callback's message.
    expect(h.logs.lines.filter((l) => l.includes('onAuditEvent failed')).length).toBe(2);
    expect(h.logs.lines.some((l) => l.includes('callback broke') || l.includes('callback rejected'))).toBe(false);
  });

  test('#11.4 the API: unknown names are dropped and logged, fields that are not identifiers become null', async () => {
    h.service.audit('logout.all', { outcome: 'ok', userId: 'not-an-id', session: 'c'.repeat(24), backendId: 'u\n1' });
    h.service.audit('made.up', { outcome: 'ok' });
    const list = await emitted(1);
    expect(list).toEqual([
      { time: expect.any(String), event: 'logout.all', outcome: 'ok', userId: null, backendId: 'u1', session: 'c'.repeat(24), ip: null },
    ]);
    expect(h.logs.lines.slice(firstLine).filter((l) => l.startsWith('error ') && l.includes('made.up'))).toHaveLength(1);
    expect(HEX_ID.test(list[0].session)).toBe(true);
  });

  test('#11.4 the listener does not keep Node running', () => {
    const script = `
      const { CustomBackendAuthService } = require(${JSON.stringify(path.join(__dirname, '..'))});
      // Held to the end, so that no finalizer releases the listener before the loop is idle.
      globalThis.service = new CustomBackendAuthService({ ...JSON.parse(process.env.LCBA_VARS), onAuditEvent: () => {} });
      console.log('BUILT');`;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, LCBA_VARS: JSON.stringify(h.vars) },
      encoding: 'utf8',
      timeout: 60000,
    });
    expect([r.signal, r.status, r.stdout.trim()]).toEqual([null, 0, 'BUILT']);
  });

  describe('#21.9 refusals callers cause do not buy a log line each', () => {
    const linesOf = (re) => h.logs.lines.slice(firstLine).filter((l) => re.test(l));
    const wrong = { email: ALICE.email, password: 'not-the-password' };

    test('#21.9 a flood of bad logins, tokens and forged events: one warn line per kind, then one per interval with the count', async () => {
      await h.reconfigure({
        onAuditEvent, AUTH_LOG_REPEAT_SECONDS: '3', BACKEND_USERINFO_BURST: '1', BACKEND_USERINFO_RATE: '1', BACKEND_EVENTS_SECRET: EVENTS_SECRET,
      });
      firstLine = h.logs.lines.length;
      const logins = await Promise.all(Array.from({ length: 20 }, () => login(wrong)));
      expect(logins.map((r) => r.status)).toEqual(Array(20).fill(404));
      // Junk backend tokens past the user-info budget: 503, the backend not called.
      await Promise.all(Array.from({ length: 20 }, () =>
        request(h.app).get('/api/user').set('Authorization', `Bearer tok_${crypto.randomBytes(12).toString('hex')}`)));
      // Events signed with another secret: 401, nothing done.
      const forged = await Promise.all(Array.from({ length: 20 }, () => {
        const { body, signature } = signEvent('not-the-secret-0123456789abcdef0123', backendEvent('user.disabled', 'u-1001'));
        return request(h.app).post(EVENTS_PATH).set(SIGNATURE_HEADER, signature).set('Content-Type', 'application/json').send(body);
      }));
      expect(forged.map((r) => r.status)).toEqual(Array(20).fill(401));
      await settle(40);
      expect(linesOf(/backend event failed: SIGNATURE_INVALID/)).toHaveLength(1);
      expect(linesOf(/"event":"backend_event.received"/)).toHaveLength(1);
      expect(linesOf(/login failed: INVALID_CREDENTIALS/)).toHaveLength(1);
      expect(linesOf(/token check failed: BACKEND_CIRCUIT_OPEN/)).toHaveLength(1);
      expect(linesOf(/^error /)).toEqual([]);
      expect(linesOf(/"event":"login.failure"/)).toHaveLength(1);
      // onAuditEvent gets every one.
      expect(events.filter((e) => e.event === 'login.failure')).toHaveLength(20);
      await sleep(3300);
      const [, counted] = linesOf(/login failed: INVALID_CREDENTIALS/);
      expect(counted).toMatch(/^warn .*\(and 19 more like it in 3 s\)$/);
      expect(linesOf(/token check failed: BACKEND_CIRCUIT_OPEN/)[1]).toMatch(/^warn .*and \d+ more like it/);
      const audit = linesOf(/"event":"login.failure"/).map((l) => JSON.parse(l.slice(l.indexOf('{'))));
      expect(audit).toHaveLength(2);
      expect(audit[1]).toMatchObject({ event: 'login.failure', outcome: 'INVALID_CREDENTIALS', repeated: 19, seconds: 3 });
      // Nothing more counted: no further line.
      await sleep(3300);
      expect(linesOf(/INVALID_CREDENTIALS/)).toHaveLength(4);
    }, 20000);

    test('#21.9 a count whose interval ended before its timer ran is written, not lost', () => {
      const { RepeatedLines } = require('../lib/repeatedLines');
      const lines = [];
      const repeated = new RepeatedLines({ warn: (l) => lines.push(l) }, 50);
      const log = () => repeated.log('kind', 'warn', 'refused', (n) => `refused, ${n} more`);
      log();
      log();
      for (const started = Date.now(); Date.now() - started < 60;); // no timer can run meanwhile
      log();
      repeated.close();
      expect(lines).toEqual(['refused', 'refused, 1 more', 'refused']);
    });

    test('#21.9 a failure of the backend is still one error line each', async () => {
      await h.reconfigure({ onAuditEvent, AUTH_LOG_REPEAT_SECONDS: '60' });
      firstLine = h.logs.lines.length;
      h.mock.set({ login: { status: 503 } });
      for (let i = 0; i < 3; i++) expect((await login()).status).toBe(500);
      expect(linesOf(/^error .*login failed: BACKEND_/)).toHaveLength(3);
    });
  });
});
