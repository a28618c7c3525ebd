'use strict';

// Issue 11, sections 1 and 2: the backend revokes and changes users now (signed events), users and
// administrators end sessions (log out everywhere, one session), and every server sharing the
// database follows within REVOCATION_POLL_MS. Over HTTP against the LibreChat-shaped app, with a
// second server in its own process for the cross-instance cases.

const crypto = require('crypto');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies } = require('./support/harness');
const { startInstance } = require('./support/instance');
const { startTcpProxy } = require('./support/tcpProxy');
const { EVENTS_SECRET, EVENTS_PATH, SIGNATURE_HEADER, backendEvent, signEvent, postEvent } = require('./support/events');
// ALICE: u-1001, roles: staff; BOB: u-1002, roles: admin, staff.
const { ALICE, BOB, loginSession, getWithBearer, postRefresh } = require('./support/auth');

const ENV = { BACKEND_EVENTS_SECRET: EVENTS_SECRET, REVOCATION_POLL_MS: '100' };

/** Waits until `check()` holds (no timing asserted: the bound is what docs/logout-events-revocation.md states). */
async function eventually(check, { timeoutMs = 10_000, stepMs = 50 } = {}) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A session over HTTP whose cookie is the refresh cookie alone, with the backend session the login made. */
async function login(h, who = ALICE) {
  const { token, user, refreshCookie } = await loginSession(h.app, who);
  return { token, user, cookie: refreshCookie, backendSession: h.mock.lastSessionId };
}

const api = (h, token) => getWithBearer(h.app, token);
const refresh = (h, cookie) => postRefresh(h.app, cookie);

describe('#11.1 backend events: authenticity', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'revocation-auth', env: ENV });
  });
  afterAll(() => h.close());

  test('#11.1 off unless BACKEND_EVENTS_SECRET is set: 404, and nothing happens', async () => {
    await h.reconfigure({ BACKEND_EVENTS_SECRET: '' });
    const a = await login(h);
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(res.status).toBe(404);
    expect((await api(h, a.token)).status).toBe(200);
    await h.reconfigure(ENV);
  });

  test('#11.1 a short secret stops start-up, naming the variable', async () => {
    expect(() => h.makeService({ BACKEND_EVENTS_SECRET: 'too-short' })).toThrow(/BACKEND_EVENTS_SECRET.*at least 32/);
  });

  test.each([
    ['no signature header', () => ({ signature: '' })],
    ['another secret', () => ({ secret: 'another-secret-0123456789abcdef0123456' })],
    ['a timestamp outside the window', () => ({ t: Math.floor(Date.now() / 1000) - 301 })],
    ['a timestamp in the future', () => ({ t: Math.floor(Date.now() / 1000) + 301 })],
    ['garbage', () => ({ signature: 't=abc,v1=zz' })],
  ])('#11.1 %s: 401 and nothing is done', async (_name, opts) => {
    const a = await login(h);
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'), opts());
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/signature/i);
    expect((await api(h, a.token)).status).toBe(200);
    expect((await refresh(h, a.cookie)).status).toBe(200);
  });

  test('#11.1 a body changed after signing: 401 (the signature covers the raw body)', async () => {
    const a = await login(h);
    const event = backendEvent('user.disabled', 'u-1001');
    const { signature } = signEvent(EVENTS_SECRET, event);
    const res = await request(h.app)
      .post(EVENTS_PATH)
      .set('Content-Type', 'application/json')
      .set(SIGNATURE_HEADER, signature)
      .send(JSON.stringify({ ...event, userId: 'u-1002' }));
    expect(res.status).toBe(401);
    expect((await api(h, a.token)).status).toBe(200);
    // The same bytes re-serialised (spaces) are another body too.
    const spaced = await request(h.app)
      .post(EVENTS_PATH)
      .set('Content-Type', 'application/json')
      .set(SIGNATURE_HEADER, signature)
      .send(JSON.stringify(event, null, 1));
    expect(spaced.status).toBe(401);
  });

  test('#11.1 malformed events are 400 naming the problem; over 64 KiB 413', async () => {
    const bad = async (event) => {
      const res = await postEvent(request, h.app, event);
      expect(res.status).toBe(400);
      return res.body.message;
    };
    expect(await bad('{not json')).toMatch(/not JSON/);
    expect(await bad({ ...backendEvent('user.renamed', 'u-1001') })).toMatch(/type must be one of/);
    expect(await bad({ type: 'user.disabled', time: 1, userId: 'u-1001' })).toMatch(/id is required/);
    expect(await bad(backendEvent('session.revoked', 'u-1001'))).toMatch(/sessionId/);
    expect(await bad(backendEvent('user.changed', 'u-1001'))).toMatch(/user/);
    const big = await postEvent(request, h.app, { ...backendEvent('user.disabled', 'u-1001'), pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
  });

  test('#21.11d an event body with a repeated key is 400, and nothing happens', async () => {
    await h.reconfigure(ENV);
    const a = await login(h);
    const event = backendEvent('session.revoked', 'u-1001', { sessionId: a.backendSession });
    const body = JSON.stringify(event).replace('"type":"session.revoked"', '"type":"user.changed","type":"session.revoked"');
    const signed = signEvent(EVENTS_SECRET, body);
    const res = await request(h.app).post(EVENTS_PATH).set('Content-Type', 'application/json').set(SIGNATURE_HEADER, signed.signature).send(signed.body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/repeats a key/);
    expect((await api(h, a.token)).status).toBe(200);
  });

  test('#21.11b ids with line separators or bidirectional marks are escaped in the plain log line', async () => {
    await h.reconfigure(ENV);
    const before = h.logs.lines.length;
    const event = backendEvent('user.disabled', 'u-\u2028fake\u200e-line', { id: 'evt-\u2029\u202e-x' });
    expect((await postEvent(request, h.app, event)).body.status).toBe('no_account');
    const lines = h.logs.lines.slice(before).filter((l) => l.includes('backend event'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\u2028\u2029\u200e\u202e]/);
    expect(lines[0]).toContain('u-\\u2028fake\\u200e-line');
    expect(lines[0]).toContain('evt-\\u2029\\u202e-x');
  });

  test('#11.1 mounted after express.json(): 500 naming the mistake, and nothing is done', async () => {
    const express = require('express');
    const { customBackendEventsHandler } = require('..');
    const a = await login(h);
    const wrong = express();
    wrong.use(express.json());
    wrong.post(EVENTS_PATH, customBackendEventsHandler);
    const res = await postEvent(request, wrong, backendEvent('user.disabled', 'u-1001'));
    expect(res.status).toBe(500);
    expect(res.body.message).toMatch(/before express\.json\(\)/);
    expect((await api(h, a.token)).status).toBe(200);
  });

  test('#11.1 a replay of a signed request changes nothing the second time', async () => {
    const a = await login(h, BOB);
    const event = backendEvent('user.disabled', 'u-1002');
    const signed = signEvent(EVENTS_SECRET, event);
    const send = () =>
      request(h.app).post(EVENTS_PATH).set('Content-Type', 'application/json').set(SIGNATURE_HEADER, signed.signature).send(signed.body);
    expect((await send()).body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    const b = await login(h, BOB); // Bob comes back after the revocation
    const again = await send();
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('duplicate');
    expect((await api(h, b.token)).status).toBe(200);
    expect((await refresh(h, b.cookie)).status).toBe(200);
    expect((await api(h, a.token)).status).toBe(401);
  });
});

describe('#11.1 backend events: effects', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'revocation-effects', env: ENV });
  });
  beforeEach(async () => {
    await h.reconfigure(ENV);
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test('#11.1 user.disabled ends every session: access tokens 401 at once, refresh 401 with cookies cleared, backend logout per session', async () => {
    await h.reconfigure({ ...ENV, BACKEND_LOGOUT_URL: h.mock.urls.logout });
    const a1 = await login(h);
    const a2 = await login(h);
    const b = await login(h, BOB);
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'applied', type: 'user.disabled', sessionsEnded: 2 });
    for (const a of [a1, a2]) {
      expect((await api(h, a.token)).status).toBe(401);
      const r = await refresh(h, a.cookie);
      expect(r.status).toBe(401);
      expect(parseSetCookies(r).refreshToken.value).toBe('');
    }
    // The backend hears of each ended session (in the background: it sent the event).
    await eventually(() => h.mock.calls.logout === 2);
    // Other users are untouched.
    expect((await api(h, b.token)).status).toBe(200);
    expect((await h.counts()).sessions).toBe(1);
  });

  test('#11.1 user.deleted ends the sessions too; the LibreChat account and its data stay', async () => {
    const a = await login(h);
    const res = await postEvent(request, h.app, backendEvent('user.deleted', 'u-1001'));
    expect(res.body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    expect((await api(h, a.token)).status).toBe(401);
    expect(await h.db.collection('users').countDocuments({ idOnTheSource: 'u-1001' })).toBe(1);
  });

  test('#11.1 a cached backend-token verdict is dropped: the token is asked of the backend again at once', async () => {
    await h.reconfigure({ ...ENV, BACKEND_BEARER_TOKENS: 'userinfo' });
    await login(h); // the account exists
    const token = h.mock.issueAccessToken('u-1001');
    expect((await api(h, token)).status).toBe(200);
    // The backend disables Alice: its user info refuses her now, but our cached verdict still holds.
    const alice = h.mock.users.findIndex((u) => u.id === 'u-1001');
    const [removed] = h.mock.users.splice(alice, 1);
    try {
      expect((await api(h, token)).status).toBe(200);
      const calls = h.mock.calls.userinfo;
      await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
      expect((await api(h, token)).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(calls + 1);
    } finally {
      h.mock.users.splice(alice, 0, removed);
    }
  });

  test('#11.1 a backend JWT issued before the revocation is refused by its iat; a newer one passes', async () => {
    await h.reconfigure({
      ...ENV,
      BACKEND_BEARER_TOKENS: 'jwks',
      BACKEND_JWKS_URL: h.mock.urls.jwks,
      BACKEND_JWT_ISSUER: h.mock.issuer,
    });
    h.mock.set({ jwtTokens: 'RS256' });
    await login(h);
    const before = h.mock.issueAccessToken('u-1001');
    expect((await api(h, before)).status).toBe(200);
    await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect((await api(h, before)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 1100)); // a whole second later: a token the backend issues now
    const after = h.mock.issueAccessToken('u-1001');
    expect((await api(h, after)).status).toBe(200);
  });

  test('#11.1 user.changed re-syncs the user now (name, email, role mapping); the session stays', async () => {
    await h.reconfigure({ ...ENV, BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' });
    const a = await login(h);
    expect((await api(h, a.token)).body.role).toBe('USER');
    const res = await postEvent(
      request,
      h.app,
      backendEvent('user.changed', 'u-1001', {
        user: { id: 'u-1001', email: 'alice.new@example.com', username: 'Alice', name: 'Alice Newname', roles: ['admin', 'staff'] },
      }),
    );
    expect(res.body).toMatchObject({ status: 'applied', sessionsEnded: 0 });
    const me = await api(h, a.token);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ role: 'ADMIN', name: 'Alice Newname', email: 'alice.new@example.com' });
    expect((await refresh(h, a.cookie)).status).toBe(200);
  });

  test('#11.1 user.changed that the policy no longer admits (a required role lost) ends every session', async () => {
    await h.reconfigure({ ...ENV, BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff' });
    const a = await login(h);
    const res = await postEvent(
      request,
      h.app,
      backendEvent('user.changed', 'u-1001', { user: { id: 'u-1001', email: 'Alice@Example.com', roles: ['guest'] } }),
    );
    expect(res.body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    expect((await api(h, a.token)).status).toBe(401);
    expect((await refresh(h, a.cookie)).status).toBe(401);
  });

  test('#11.1 session.revoked ends that session only; the other session refreshes and goes on', async () => {
    const a1 = await login(h);
    const a2 = await login(h);
    expect(a1.backendSession).not.toBe(a2.backendSession);
    const res = await postEvent(request, h.app, backendEvent('session.revoked', 'u-1001', { sessionId: a1.backendSession }));
    expect(res.body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    expect((await api(h, a1.token)).status).toBe(401);
    expect((await refresh(h, a1.cookie)).status).toBe(401);
    // The user's access tokens of before are refused (they carry no session): the other browser
    // gets one 401, refreshes as LibreChat's client does, and continues.
    expect((await api(h, a2.token)).status).toBe(401);
    const r2 = await refresh(h, a2.cookie);
    expect(r2.status).toBe(200);
    expect((await api(h, r2.body.token)).status).toBe(200);
  });

  test('#11.1 session.revoked of an unknown session changes nothing', async () => {
    const a = await login(h);
    const res = await postEvent(request, h.app, backendEvent('session.revoked', 'u-1001', { sessionId: 'no-such-session' }));
    expect(res.body).toMatchObject({ status: 'applied', sessionsEnded: 0 });
    expect((await api(h, a.token)).status).toBe(200);
  });

  test('#11.1 an older event never overrides a newer one', async () => {
    const a = await login(h);
    const t = Date.now() / 1000;
    const newer = backendEvent('user.changed', 'u-1001', { time: t, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Newer' } });
    const older = backendEvent('user.changed', 'u-1001', { time: t - 10, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Older' } });
    expect((await postEvent(request, h.app, newer)).body.status).toBe('applied');
    expect((await postEvent(request, h.app, older)).body.status).toBe('stale');
    expect((await api(h, a.token)).body.name).toBe('Newer');
  });

  test('#21.2 a disable or delete older than a profile change still takes effect: order decides between profiles only', async () => {
    for (const type of ['user.disabled', 'user.deleted']) {
      const a = await login(h);
      const t = Date.now() / 1000;
      const change = backendEvent('user.changed', 'u-1001', { time: t, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Changed' } });
      expect((await postEvent(request, h.app, change)).body.status).toBe('applied');
      const late = backendEvent(type, 'u-1001', { time: t - 5 });
      const res = await postEvent(request, h.app, late);
      expect([type, res.status, res.body.status, res.body.sessionsEnded]).toEqual([type, 200, 'applied', 1]);
      expect((await api(h, a.token)).status).toBe(401);
      expect((await refresh(h, a.cookie)).status).toBe(401);
      // A profile change older than the disable is still stale: it cannot undo the order.
      const olderChange = backendEvent('user.changed', 'u-1001', { time: t - 10, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Older' } });
      expect((await postEvent(request, h.app, olderChange)).body.status).toBe('stale');
      await new Promise((r) => setTimeout(r, 1100)); // the next login's tokens are of a later second
    }
  });

  test('#21.2 an event dated further ahead than BACKEND_EVENTS_TOLERANCE_SECONDS is refused (400) and orders nothing', async () => {
    const a = await login(h);
    const future = backendEvent('user.changed', 'u-1001', { time: Date.now() / 1000 + 3600, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Future' } });
    const res = await postEvent(request, h.app, future);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/ahead of this server's clock/);
    // It poisoned nothing: a disable of now is applied.
    const disable = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(disable.body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    expect((await api(h, a.token)).status).toBe(401);
    // Within the tolerance (a backend clock a little ahead) is accepted.
    await new Promise((r) => setTimeout(r, 1100));
    await login(h);
    const ahead = backendEvent('user.changed', 'u-1001', { time: Date.now() / 1000 + 60, user: { id: 'u-1001', email: 'Alice@Example.com', name: 'Ahead' } });
    expect((await postEvent(request, h.app, ahead)).body.status).toBe('applied');
  });

  /** A 2FA login pending (the temp token issued), and what LibreChat's second step makes of it. */
  async function pending2fa() {
    const first = await login(h);
    await h.db.collection('users').updateOne({ _id: new ObjectId(first.user.id) }, { $set: { twoFactorEnabled: true } });
    await h.db.collection('sessions').deleteMany({});
    const res = await request(h.app).post('/api/auth/login').send(ALICE);
    expect(res.body.twoFAPending).toBe(true);
    const { userId } = jwt.verify(res.body.tempToken, h.vars.JWT_SECRET);
    // LibreChat's verify-temp, as TwoFactorAuthController does it: a session, then an access token.
    const secondStep = async () => {
      const { refreshToken } = await h.lc.methods.createSession(userId);
      const token = jwt.sign({ id: userId }, h.vars.JWT_SECRET, { expiresIn: '15m' });
      return { token, cookie: `refreshToken=${refreshToken}` };
    };
    return { userId, secondStep };
  }

  test('#21.3 a user disabled while a 2FA login is pending gets no session through the second step', async () => {
    const p = await pending2fa();
    const disabled = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(disabled.body.status).toBe('applied');
    await new Promise((r) => setTimeout(r, 1100)); // the second step's tokens are of a later second
    const s = await p.secondStep();
    expect((await api(h, s.token)).status).toBe(401);
    const r = await refresh(h, s.cookie);
    expect(r.status).toBe(401);
    expect(await h.db.collection('sessions').countDocuments({ user: new ObjectId(p.userId) })).toBe(0);
    expect(h.mock.calls.refresh).toBe(0);
  });

  test('#21.3 log out everywhere during a pending 2FA login: the session of the second step is not extended without the backend', async () => {
    const p = await pending2fa();
    await h.service.logoutAll(p.userId);
    await new Promise((r) => setTimeout(r, 1100));
    const s = await p.secondStep();
    const r = await refresh(h, s.cookie);
    expect(r.status).toBe(401);
    expect(await h.db.collection('sessions').countDocuments({ user: new ObjectId(p.userId) })).toBe(0);
  });

  test('#21.6 parallel deliveries of one event id apply it once: one applied, the rest duplicate, one revocation', async () => {
    await login(h);
    const event = backendEvent('user.disabled', 'u-1001');
    const answers = await Promise.all(Array.from({ length: 20 }, () => postEvent(request, h.app, event)));
    const statuses = answers.map((r) => `${r.status} ${r.body.status}`).sort();
    expect(statuses.filter((x) => x === '200 applied')).toHaveLength(1);
    expect(statuses.filter((x) => x === '200 duplicate')).toHaveLength(19);
    expect(await h.db.collection('customBackendRevocations').countDocuments({ reason: 'user.disabled' })).toBe(1);
  });


  test('#11.1 an event about a backend user without a LibreChat account: no_account, nothing done', async () => {
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-9999'));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('no_account');
  });

  test('#11.1 the per-request check reads no database: cut off from it, a cached user passes and a revoked one is refused', async () => {
    const proxy = await startTcpProxy(h.vars.MONGO_URI);
    try {
      await h.reconfigure({ ...ENV, MONGO_URI: proxy.uri, MONGO_TIMEOUT_MS: '300' });
      const a = await login(h);
      const b = await login(h, BOB);
      await h.service.logoutAll(b.user.id);
      proxy.cut();
      // Many requests, every one answered from memory: the user cache and the revocation table.
      for (let i = 0; i < 20; i += 1) {
        expect((await api(h, a.token)).status).toBe(200);
        expect((await api(h, b.token)).status).toBe(401);
      }
    } finally {
      await proxy.close();
    }
  });

  test('#11.1 the database down: 503 with Retry-After (the backend retries; events are idempotent)', async () => {
    await h.reconfigure({ ...ENV, MONGO_URI: 'mongodb://127.0.0.1:9/down', MONGO_TIMEOUT_MS: '300' });
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
  });
});

describe('#11.2 log out everywhere, and see sessions', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'revocation-sessions', env: ENV });
  });
  beforeEach(async () => {
    await h.reconfigure(ENV);
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  // Found by the soak run (#29): one of its servers ran 3 s ahead (libfaketime).
  test('#29 a token minted just before log out everywhere by a server whose clock is 3 s ahead is refused after it', async () => {
    const a = await login(h);
    const claims = jwt.decode(a.token);
    const now = Math.floor(Date.now() / 1000);
    // What a server 3 s ahead signs at this moment (the same JWT_SECRET, its clock in iat and exp).
    const ahead = jwt.sign({ ...claims, iat: now + 3, exp: now + 3 + 900 }, h.vars.JWT_SECRET, { algorithm: 'HS256' });
    h.secrets.add(ahead);
    expect((await getWithBearer(h.app, ahead)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // the revocation comes after it by any of our clocks
    await h.service.logoutAll(a.user.id);
    expect((await getWithBearer(h.app, a.token)).status).toBe(401);
    expect((await getWithBearer(h.app, ahead)).status).toBe(401);
    // A login after it is dated past what the revocation refuses: it works at once.
    const again = await login(h);
    expect(jwt.decode(again.token).iat).toBeGreaterThan(now + 3);
    expect((await getWithBearer(h.app, again.token)).status).toBe(200);
  });

  test('#29 log out everywhere twice in quick succession: a token minted between the two is refused by the second', async () => {
    const a = await login(h);
    await h.service.logoutAll(a.user.id);
    const between = await login(h);
    expect((await getWithBearer(h.app, between.token)).status).toBe(200);
    await h.service.logoutAll(a.user.id);
    expect((await getWithBearer(h.app, between.token)).status).toBe(401);
  });

  test('#11.2 POST /api/auth/logout/all ends every session, tells the backend for each, clears the cookies', async () => {
    await h.reconfigure({ ...ENV, BACKEND_LOGOUT_URL: h.mock.urls.logout });
    const sessions = [await login(h), await login(h), await login(h)];
    const b = await login(h, BOB);
    const res = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${sessions[0].token}`).set('Cookie', sessions[0].cookie);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: 'Logged out of all sessions', sessions: 3, backendFailures: 0 });
    expect(parseSetCookies(res).refreshToken.value).toBe('');
    expect(h.mock.calls.logout).toBe(3);
    for (const s of sessions) {
      expect((await api(h, s.token)).status).toBe(401);
      expect((await refresh(h, s.cookie)).status).toBe(401);
    }
    expect((await api(h, b.token)).status).toBe(200);
    // A login right after is a new session whose token works at once.
    const again = await login(h);
    expect((await api(h, again.token)).status).toBe(200);
  });

  test('#21.7 log out everywhere in a loop with a backend token writes at most one revocation per second and spends the user-info budget as rarely', async () => {
    await login(h); // the account exists
    const token = h.mock.issueAccessToken('u-1001'); // an opaque backend token (user-info mode)
    const started = Date.now();
    for (let i = 0; i < 40; i += 1) {
      const res = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
    }
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const records = await h.db.collection('customBackendRevocations').countDocuments({ reason: 'logout.all' });
    expect(records).toBeGreaterThanOrEqual(1);
    expect(records).toBeLessThanOrEqual(seconds + 1);
    expect(h.mock.calls.userinfo).toBeLessThanOrEqual(2 * seconds + 1);
    expect(h.mock.calls.userinfo).toBeLessThan(40);
  });

  test('#11.2 logout/all needs a signed-in user', async () => {
    expect((await request(h.app).post('/api/auth/logout/all')).status).toBe(401);
  });

  test('#11.2 GET /api/auth/sessions lists the sessions, marks this browser\'s, and shows nothing secret', async () => {
    const a1 = await login(h);
    const a2 = await login(h);
    await refresh(h, a1.cookie);
    const res = await request(h.app).get('/api/auth/sessions').set('Authorization', `Bearer ${a2.token}`).set('Cookie', a2.cookie);
    expect(res.status).toBe(200);
    expect(res.body.sessions).toHaveLength(2);
    for (const s of res.body.sessions) {
      expect(Object.keys(s).sort()).toEqual(['backendTokens', 'createdAt', 'current', 'expiresAt', 'id', 'lastRefreshedAt']);
      expect(s.backendTokens).toBe(true);
    }
    const [newest, oldest] = res.body.sessions;
    expect(newest.current).toBe(true);
    expect(oldest.current).toBe(false);
    expect(newest.lastRefreshedAt).toBeNull();
    expect(typeof oldest.lastRefreshedAt).toBe('string'); // a1 was refreshed
    const raw = JSON.stringify(res.body);
    for (const secret of [a1.token, a2.token, a1.cookie.split('=')[1], a2.cookie.split('=')[1], ...h.mock.issuedTokens()]) {
      expect(raw.includes(secret)).toBe(false);
    }
  });

  test('#11.2 DELETE /api/auth/sessions/:id ends one session of the user; another user\'s is 404', async () => {
    const a1 = await login(h);
    const a2 = await login(h);
    const b = await login(h, BOB);
    const list = async (s) =>
      (await request(h.app).get('/api/auth/sessions').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie)).body.sessions;
    const [, first] = await list(a2);
    const bobs = (await list(b))[0];
    const other = await request(h.app).delete(`/api/auth/sessions/${bobs.id}`).set('Authorization', `Bearer ${a2.token}`);
    expect(other.status).toBe(404);
    expect((await api(h, b.token)).status).toBe(200);
    const res = await request(h.app).delete(`/api/auth/sessions/${first.id}`).set('Authorization', `Bearer ${a2.token}`).set('Cookie', a2.cookie);
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined(); // not this browser's session
    expect((await refresh(h, a1.cookie)).status).toBe(401);
    // a2 refreshes once (its access token predates the revocation) and goes on.
    const r2 = await refresh(h, a2.cookie);
    expect(r2.status).toBe(200);
    expect((await list({ token: r2.body.token, cookie: a2.cookie })).length).toBe(1);
    expect((await request(h.app).delete('/api/auth/sessions/not-an-id').set('Authorization', `Bearer ${r2.body.token}`)).status).toBe(400);
  });

  test('#11.2 the JS API: logoutAll and listSessions for administrators and scripts', async () => {
    const a = await login(h);
    await login(h);
    const listed = await h.service.listSessions(a.user.id);
    expect(listed).toHaveLength(2);
    expect(listed[0].createdAt).toBeInstanceOf(Date);
    const ended = await h.service.logoutAll(a.user.id);
    expect(ended).toEqual({ sessions: 2, backendFailures: 0 });
    expect(await h.service.listSessions(a.user.id)).toEqual([]);
    expect((await api(h, a.token)).status).toBe(401);
    await expect(h.service.logoutAll('nope')).rejects.toMatchObject({ code: 'BAD_REQUEST', status: 400 });
  });

  test('#11.2 a backend logout that fails is reported, and the sessions end all the same', async () => {
    await h.reconfigure({ ...ENV, BACKEND_LOGOUT_URL: h.mock.urls.logout });
    const a = await login(h);
    h.mock.set({ logout: { status: 500 } });
    const res = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${a.token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ sessions: 1, backendFailures: 1 });
    expect((await refresh(h, a.cookie)).status).toBe(401);
    expect(h.logs.lines.some((l) => /backend logout failed for 1 session/.test(l))).toBe(true);
  });
});

describe('#11.1 #11.2 two servers sharing one database', () => {
  let h;
  let other;
  beforeAll(async () => {
    h = await startHarness({ db: 'revocation-instances', env: ENV });
    other = await startInstance(h.vars);
  });
  afterAll(async () => {
    await other.close();
    // The other server's log lines are checked for secrets with ours, at close.
    h.logs.lines.push(...other.logs.map((l) => `other server: ${l}`));
    await h.close();
  });

  const at = (token) => request(other.url).get('/api/user').set('Authorization', `Bearer ${token}`);

  test('#11.1 an event received by one server takes effect on the other within REVOCATION_POLL_MS', async () => {
    const a = await login(h);
    expect((await at(a.token)).status).toBe(200); // the other server knows and caches her
    const res = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(res.body.status).toBe('applied');
    await eventually(async () => (await at(a.token)).status === 401);
    expect((await request(other.url).post('/api/auth/refresh').set('Cookie', a.cookie)).status).toBe(401);
  });

  test('#11.1 user.changed on one server: the other drops its cached user', async () => {
    const a = await login(h, BOB);
    expect((await at(a.token)).body.name).toBe('Bob Builder');
    await postEvent(request, h.app, backendEvent('user.changed', 'u-1002', { user: { id: 'u-1002', email: 'bob@example.com', name: 'Robert' } }));
    await eventually(async () => (await at(a.token)).body.name === 'Robert');
  });

  test('#11.2 log out everywhere on one server ends the sessions on the other', async () => {
    const a1 = await login(h);
    const onOther = await request(other.url).post('/api/auth/login').send(ALICE);
    expect(onOther.status).toBe(200);
    expect((await at(onOther.body.token)).status).toBe(200);
    const res = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${a1.token}`);
    expect(res.body.sessions).toBe(2);
    await eventually(async () => (await at(onOther.body.token)).status === 401);
  });

  test('#11.1 a server started after a revocation knows it before it accepts a token', async () => {
    const a = await login(h);
    await h.service.logoutAll(a.user.id);
    const late = await startInstance(h.vars);
    try {
      const res = await request(late.url).get('/api/user').set('Authorization', `Bearer ${a.token}`);
      expect(res.status).toBe(401);
    } finally {
      await late.close();
    }
  });
});

// Keep the helpers honest: a signature is exactly HMAC-SHA256("<t>.<body>").
test('#11.1 the test helper signs as docs/logout-events-revocation.md says', () => {
  const { body, signature } = signEvent('k'.repeat(32), { a: 1 }, { t: 1700000000 });
  const v1 = crypto.createHmac('sha256', 'k'.repeat(32)).update(`1700000000.${body}`).digest('hex');
  expect(signature).toBe(`t=1700000000,v1=${v1}`);
});
