'use strict';

// POST /api/auth/refresh and /api/auth/logout: rotation, backend consultation, concurrency across
// service instances sharing the database, reuse detection, local sessions, backend token mode.

const crypto = require('crypto');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies } = require('./support/harness');
const { ALICE, sleep, loginSession, postRefresh, rememberTokensIn, secretsSeen, findSessionOf } = require('./support/auth');

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

describe('refresh and logout', () => {
  let h;
  const { seen, keep } = secretsSeen();

  /** Logs in over HTTP; returns the access token, the cookie header and the user id. */
  const login = () => loginSession(h.app, ALICE, seen);
  const refresh = (cookie) => postRefresh(h.app, cookie);
  const remember = rememberTokensIn(seen);
  const sessionOf = (refreshToken) => findSessionOf(h.db, refreshToken);
  const expectCleared = (res) => {
    const c = parseSetCookies(res);
    for (const name of ['refreshToken', 'token_provider']) {
      expect(c[name].value).toBe('');
      expect(new Date(c[name].attrs.expires).getTime()).toBeLessThan(Date.now());
    }
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'refresh' });
  });
  beforeEach(async () => {
    await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
    await h.clear();
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seen);
    await h.close();
  });

  test('no refreshToken cookie: 200 "Refresh token not provided", as LibreChat', async () => {
    const res = await refresh();
    expect(res.status).toBe(200);
    expect(res.text).toBe('Refresh token not provided');
  });

  test('rotates the session, keeps its absolute expiry, asks the backend and answers {token, user}', async () => {
    const s = await login();
    const before = await sessionOf(s.refreshToken);
    const res = remember(await refresh(s.cookie));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: s.userId, email: 'alice@example.com' });
    expect(jwt.verify(res.body.token, h.vars.JWT_SECRET).id).toBe(s.userId);

    const c = parseSetCookies(res);
    expect(c.refreshToken.value).not.toBe(s.refreshToken);
    expect(c.token_provider.value).toBe('custom-backend');
    expect(c.refreshToken.attrs).toMatchObject({ httponly: true, samesite: 'Strict', path: '/' });
    const after = await sessionOf(c.refreshToken.value);
    expect(after._id).toEqual(before._id);
    expect(after.refreshTokenHash).toBe(sha256(c.refreshToken.value));
    expect(after.expiration).toEqual(before.expiration);
    expect(new Date(c.refreshToken.attrs.expires).getTime()).toBe(Math.floor(before.expiration.getTime() / 1000) * 1000);
    expect(after.customBackend.refreshToken).not.toBe(before.customBackend.refreshToken);

    // The backend was asked once, with JSON {refreshToken} holding a refresh token it issued.
    expect(h.mock.calls.refresh).toBe(1);
    const sent = h.mock.requests.find((r) => r.name === 'refresh');
    expect(sent.method).toBe('POST');
    expect(Object.keys(sent.body)).toEqual(['refreshToken']);
    expect(h.mock.tokenInfo(sent.body.refreshToken)).toMatchObject({ userId: 'u-1001' });

    // The new access token works; LibreChat's own session lookup finds the rotated session.
    expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${res.body.token}`)).status).toBe(200);
    expect(await h.lc.methods.findSession({ refreshToken: c.refreshToken.value })).toBeTruthy();
  });

  test('re-syncs the user from the backend on refresh', async () => {
    const s = await login();
    h.mock.updateUser('u-1001', { name: 'Alice Refreshed', email: 'alice.r@example.com' });
    const res = remember(await refresh(s.cookie));
    expect(res.body.user).toMatchObject({ name: 'Alice Refreshed', email: 'alice.r@example.com' });
    const stored = await h.db.collection('users').findOne({ _id: new ObjectId(s.userId) });
    expect(stored).toMatchObject({ name: 'Alice Refreshed', email: 'alice.r@example.com' });
    // The hot-path cache follows the change at once.
    const me = await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`);
    expect(me.body.name).toBe('Alice Refreshed');
  });

  test('the backend says no: 401, session deleted, cookies cleared', async () => {
    const s = await login();
    h.mock.revokeUser('u-1001');
    const res = await refresh(s.cookie);
    expect(res.status).toBe(401);
    expect(typeof res.body.message).toBe('string');
    expectCleared(res);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
  });

  test.each([
    ['answers 503', { refresh: { status: 503 } }],
    ['hangs', { refresh: { hang: true } }],
  ])('the backend %s: an access token from the session (#10.5), the session is kept and a retry works', async (_name, switches) => {
    await h.reconfigure({ BACKEND_TIMEOUT_MS: '1000' });
    const s = await login();
    const before = await sessionOf(s.refreshToken);
    h.mock.set(switches);
    const res = remember(await refresh(s.cookie));
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect((await sessionOf(s.refreshToken)).refreshTokenHash).toBe(before.refreshTokenHash);
    h.mock.reset();
    expect(remember(await refresh(s.cookie)).status).toBe(200);
  });

  test('the backend answers garbage: an access token from the session (#10.5), the session is kept', async () => {
    const s = await login();
    h.mock.set({ refresh: { malformed: true } });
    const res = remember(await refresh(s.cookie));
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    h.mock.reset();
    expect(remember(await refresh(s.cookie)).status).toBe(200);
  });

  test('the database is down: 503, cookies kept', async () => {
    const s = await login();
    await h.reconfigure({ MONGO_URI: 'mongodb://127.0.0.1:9/down', MONGO_TIMEOUT_MS: '300' });
    const res = await refresh(s.cookie);
    expect(res.status).toBe(503);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(h.mock.calls.refresh).toBe(0);
  });

  test.each([
    ['garbage', 'refreshToken=not-a-jwt; token_provider=custom-backend'],
    ['a token signed with another secret', `refreshToken=${jwt.sign({ id: new ObjectId().toHexString(), sessionId: new ObjectId().toHexString() }, 'other', { expiresIn: 60 })}`],
  ])('an invalid refresh token (%s): 401 and cookies cleared', async (_name, cookie) => {
    const res = await refresh(cookie);
    expect(res.status).toBe(401);
    expectCleared(res);
    expect(h.mock.calls.refresh).toBe(0);
  });

  test('an expired session: 401', async () => {
    const s = await login();
    await h.db.collection('sessions').updateOne({}, { $set: { expiration: new Date(Date.now() - 1000) } });
    const res = await refresh(s.cookie);
    expect(res.status).toBe(401);
    expect(h.mock.calls.refresh).toBe(0);
  });

  describe('concurrent refreshes', () => {
    const expectAllWorking = async (answers) => {
      for (const a of answers) {
        expect(a.status).toBe(200);
        keep(a.token, a.refreshToken);
        const me = await request(h.app).get('/api/user').set('Authorization', `Bearer ${a.token}`);
        expect(me.status).toBe(200);
      }
      // All tabs end up with the same new refresh token, which the session accepts.
      expect(new Set(answers.map((a) => a.refreshToken)).size).toBe(1);
      expect(await h.lc.methods.findSession({ refreshToken: answers[0].refreshToken })).toBeTruthy();
    };

    test('20 parallel refreshes with one cookie: one backend call, 20 working tokens', async () => {
      const s = await login();
      h.mock.set({ refresh: { latencyMs: 200 } });
      const all = await Promise.all(Array.from({ length: 20 }, () => refresh(s.cookie)));
      expect(h.mock.calls.refresh).toBe(1);
      await expectAllWorking(all.map((r) => ({ status: r.status, token: r.body.token, refreshToken: parseSetCookies(r).refreshToken?.value })));
    });

    test('across two service instances sharing the database: still one backend call', async () => {
      const s = await login();
      const other = h.makeService({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
      try {
        h.mock.set({ refresh: { latencyMs: 200 } });
        const viaApp = Array.from({ length: 10 }, () =>
          refresh(s.cookie).then((r) => ({ status: r.status, token: r.body.token, refreshToken: parseSetCookies(r).refreshToken?.value })),
        );
        const viaOther = Array.from({ length: 10 }, () =>
          other.refresh(s.refreshToken).then((r) => ({ status: 200, token: r.token, refreshToken: r.refreshToken })),
        );
        const all = await Promise.all([...viaApp, ...viaOther]);
        expect(h.mock.calls.refresh).toBe(1);
        await expectAllWorking(all);
      } finally {
        await other.close();
      }
    });

    test('a refresh token replayed within the grace window gets the same new token, without a backend call', async () => {
      const s = await login();
      const first = remember(await refresh(s.cookie));
      const again = remember(await refresh(s.cookie));
      expect(again.status).toBe(200);
      expect(parseSetCookies(again).refreshToken.value).toBe(parseSetCookies(first).refreshToken.value);
      expect(h.mock.calls.refresh).toBe(1);
    });

    test('replayed after the grace window, once a newer token was used: reuse, the session is revoked, 401', async () => {
      await h.reconfigure({ REFRESH_GRACE_MS: '200' });
      const s = await login();
      const first = remember(await refresh(s.cookie));
      const second = remember(await refresh(`refreshToken=${parseSetCookies(first).refreshToken.value}`));
      const newCookie = `refreshToken=${parseSetCookies(second).refreshToken.value}`;
      await sleep(300);
      const replay = await refresh(s.cookie);
      expect(replay.status).toBe(401);
      expect(replay.body.message).toMatch(/reuse/i);
      expectCleared(replay);
      expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
      // The thief's or the victim's newer token is dead too.
      expect((await refresh(newCookie)).status).toBe(401);
    });
  });

  test('a local LibreChat account\'s session is refreshed as LibreChat does, without the backend', async () => {
    const userId = await h.lc.methods.createUser({ provider: 'local', email: 'local@example.com', username: 'local', name: 'Local', emailVerified: true });
    const { session, refreshToken } = await h.lc.methods.createSession(userId);
    keep(refreshToken);
    const res = remember(await refresh(`refreshToken=${refreshToken}; token_provider=librechat`));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ email: 'local@example.com', provider: 'local' });
    expect(jwt.verify(res.body.token, h.vars.JWT_SECRET).id).toBe(userId.toString());
    const c = parseSetCookies(res);
    expect(c.token_provider.value).toBe('librechat');
    const rotated = await h.db.collection('sessions').findOne({ _id: session._id });
    expect(rotated.refreshTokenHash).toBe(sha256(c.refreshToken.value));
    expect(rotated.expiration).toEqual(session.expiration);
    expect(h.mock.calls.refresh).toBe(0);
  });

  describe('a 2FA user: the session LibreChat\'s own second step creates', () => {
    const PENDING = 'customBackendPending2fa';
    const pending = () => h.db.collection(PENDING);

    /** Our login answers twoFAPending; then LibreChat's verify2FAWithTempToken checks the temp token
     *  and its setAuthTokens creates the session with LibreChat's own createSession. */
    async function loginWith2FA({ sessionId } = {}) {
      const first = await login();
      await h.db.collection('users').updateOne({ _id: new ObjectId(first.userId) }, { $set: { twoFactorEnabled: true } });
      await h.db.collection('sessions').deleteMany({});
      const res = await request(h.app).post('/api/auth/login').send(ALICE);
      expect(res.body.twoFAPending).toBe(true);
      const { userId } = jwt.verify(keep(res.body.tempToken), h.vars.JWT_SECRET);
      let refreshToken;
      if (sessionId) {
        // A session whose id says it was made at another time than the 2FA login.
        const session = new h.lc.models.Session({ _id: sessionId, user: userId, expiration: new Date(Date.now() + 3600e3) });
        refreshToken = await h.lc.methods.generateRefreshToken(session);
      } else {
        ({ refreshToken } = await h.lc.methods.createSession(userId));
      }
      keep(refreshToken);
      const token = keep(jwt.sign({ id: userId }, h.vars.JWT_SECRET, { expiresIn: '15m' }));
      return { userId, token, refreshToken, cookie: `refreshToken=${refreshToken}; token_provider=librechat` };
    }

    test('its first refresh takes over the backend tokens our login left, and then follows the backend', async () => {
      const s = await loginWith2FA();
      const stashed = await pending().find({}).toArray();
      expect(stashed).toHaveLength(1);
      for (const t of h.mock.issuedTokens()) expect(JSON.stringify(stashed)).not.toContain(t); // sealed
      expect(await pending().indexes()).toEqual(expect.arrayContaining([
        expect.objectContaining({ key: { expiresAt: 1 }, expireAfterSeconds: 0 }),
        expect.objectContaining({ key: { user: 1, createdAt: -1 } }),
      ]));
      const calls = h.mock.calls.refresh;
      const res = remember(await refresh(s.cookie));
      expect(res.status).toBe(200);
      expect(h.mock.calls.refresh).toBe(calls + 1);
      expect(parseSetCookies(res).token_provider.value).toBe('custom-backend');
      expect((await sessionOf(s.refreshToken)).customBackend.accessToken).toMatch(/^v2\./);
      expect(await pending().countDocuments({})).toBe(0);
      // The backend ends the session: so does the next refresh.
      h.mock.set({ refresh: { status: 401 } });
      const next = `refreshToken=${parseSetCookies(res).refreshToken.value}`;
      const ended = await refresh(next);
      expect(ended.status).toBe(401);
      expectCleared(ended);
      expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    });

    test('logged out before its first refresh: the backend logout still gets the tokens', async () => {
      const s = await loginWith2FA();
      const res = await request(h.app).post('/api/auth/logout').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie);
      expect(res.status).toBe(200);
      expect(h.mock.calls.logout).toBe(1);
      expect(h.mock.requests.find((r) => r.name === 'logout').headers.authorization).toMatch(/^Bearer at_/);
      expect(await pending().countDocuments({})).toBe(0);
    });

    test('a session made long before the 2FA login does not take its tokens (#21.3: nor is it extended without them)', async () => {
      const old = ObjectId.createFromTime(Math.floor(Date.now() / 1000) - 600);
      const s = await loginWith2FA({ sessionId: old });
      const calls = h.mock.calls.refresh;
      const res = remember(await refresh(s.cookie));
      expect(res.status).toBe(401);
      expect(h.mock.calls.refresh).toBe(calls);
      expect(await pending().countDocuments({})).toBe(1);
    });
  });

  describe('logout', () => {
    const logout = (s) => request(h.app).post('/api/auth/logout').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie);

    test('deletes the session, calls the backend logout, clears the cookies, answers {message}', async () => {
      const s = await login();
      const res = await logout(s);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ message: 'Logout successful' });
      expectCleared(res);
      expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
      expect(h.mock.calls.logout).toBe(1);
      const sent = h.mock.requests.find((r) => r.name === 'logout');
      expect(sent.headers.authorization).toMatch(/^Bearer at_/);
      expect(h.mock.tokenInfo(sent.body.refreshToken)).toMatchObject({ userId: 'u-1001' });
      // The refresh cookie is dead.
      expect((await refresh(s.cookie)).status).toBe(401);
    });

    test.each([
      ['is down', { logout: { status: 500 } }],
      ['hangs', { logout: { hang: true } }],
    ])('the backend logout %s: the logout still succeeds', async (_name, switches) => {
      await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout, BACKEND_TIMEOUT_MS: '1000' });
      const s = await login();
      h.mock.set(switches);
      const before = h.logs.lines.length; // #14.7: only the lines this logout wrote
      const res = await logout(s);
      expect(res.status).toBe(200);
      expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
      expect(h.logs.lines.slice(before).filter((l) => l.includes('backend logout failed'))).toHaveLength(1);
    });

    test('without BACKEND_LOGOUT_URL the backend is not called', async () => {
      await h.reconfigure({});
      const s = await login();
      expect((await logout(s)).status).toBe(200);
      expect(h.mock.calls.logout).toBe(0);
    });

    test('evicts the cached user: a change made meanwhile is seen at once', async () => {
      await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout, USER_CACHE_TTL: '600' });
      const s = await login();
      await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`);
      await h.db.collection('users').updateOne({ _id: new ObjectId(s.userId) }, { $set: { name: 'Changed' } });
      await logout(s);
      // In LibreChat session mode the access token lives until it expires (SESSION_EXPIRY).
      const me = await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`);
      expect(me.status).toBe(200);
      expect(me.body.name).toBe('Changed');
    });
  });

  describe('BACKEND_SESSION_MODE=backend', () => {
    beforeEach(async () => {
      await h.reconfigure({ BACKEND_SESSION_MODE: 'backend', BACKEND_LOGOUT_URL: h.mock.urls.logout });
    });

    test('login and refresh answer the backend access token, which the jwt strategy accepts', async () => {
      const s = await login();
      expect(h.mock.tokenInfo(s.token)).toMatchObject({ userId: 'u-1001' });
      const me = await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`);
      expect(me.status).toBe(200);
      expect(me.body.email).toBe('alice@example.com');
      expect(h.mock.calls.userinfo).toBe(0);

      const r = remember(await refresh(s.cookie));
      expect(r.status).toBe(200);
      expect(r.body.token).not.toBe(s.token);
      expect(h.mock.tokenInfo(r.body.token)).toMatchObject({ userId: 'u-1001' });
      expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${r.body.token}`)).status).toBe(200);
    });

    test('concurrent refreshes with required roles: every tab\'s backend token keeps its roles', async () => {
      await h.reconfigure({
        BACKEND_SESSION_MODE: 'backend',
        BACKEND_ROLES_FIELD: 'roles',
        BACKEND_REQUIRED_ROLES: 'staff',
        USER_CACHE_TTL: '0',
      });
      const s = await login();
      h.mock.set({ refresh: { latencyMs: 150 } });
      const all = await Promise.all(Array.from({ length: 5 }, () => refresh(s.cookie)));
      expect(h.mock.calls.refresh).toBe(1);
      for (const r of all) {
        expect(r.status).toBe(200);
        keep(r.body.token);
        const me = await request(h.app).get('/api/user').set('Authorization', `Bearer ${r.body.token}`);
        expect(me.status).toBe(200);
      }
    });

    test('after logout the old backend token is refused', async () => {
      const s = await login();
      expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`)).status).toBe(200);
      const res = await request(h.app).post('/api/auth/logout').set('Authorization', `Bearer ${s.token}`).set('Cookie', s.cookie);
      expect(res.status).toBe(200);
      expect((await request(h.app).get('/api/user').set('Authorization', `Bearer ${s.token}`)).status).toBe(401);
    });
  });
});
