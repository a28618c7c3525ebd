'use strict';

// Issue 10, items 2, 4 and 5: what LibreChat's own web client (v0.8.8-rc1, commit 0ab3414c) makes
// of our answers. The cookie's `Secure` flag as LibreChat's `shouldUseSecureCookie()` decides it;
// the status of each login failure (the client picks its message from the status alone); the
// refresh answer during a backend outage (the client leaves for its login page on any refresh
// answer without a token).

const request = require('supertest');
const jwt = require('jsonwebtoken');
const { harnessHooks, freshService, parseSetCookies } = require('./support/harness');
const { closedPort } = require('./support/tcpProxy');
const { ALICE, CAROL, sleep, postLogin, postRefresh, sessionCookieOf, rememberTokensIn, findSessionOf } = require('./support/auth');

describe('issue 10: statuses, cookies and outages as the LibreChat client sees them', () => {
  let h;
  const seen = [];
  const remember = rememberTokensIn(seen);
  const login = (body = ALICE) => postLogin(h.app, body).then(remember);
  const refresh = (cookie) => postRefresh(h.app, cookie).then(remember);
  const cookieOf = sessionCookieOf;
  const sessionOf = (refreshToken) => findSessionOf(h.db, refreshToken);

  harnessHooks({ db: 'statuses' }, (made) => (h = made), { each: freshService, seen });

  describe('#10.2 the Secure flag follows LibreChat\'s shouldUseSecureCookie()', () => {
    // Unset in every case unless given: the variables LibreChat's rule reads.
    const unset = { NODE_ENV: undefined, SESSION_COOKIE_SECURE: undefined, DOMAIN_SERVER: undefined };
    const production = { NODE_ENV: 'production', BACKEND_ALLOW_INSECURE_HTTP: 'true' };
    test.each([
      ['production, no DOMAIN_SERVER (LibreChat v0.7.9 alike)', true, production],
      ['production, SESSION_COOKIE_SECURE=false (a plain-HTTP site)', false, { ...production, SESSION_COOKIE_SECURE: 'false' }],
      ['production, SESSION_COOKIE_SECURE= FALSE (trimmed, any case)', false, { ...production, SESSION_COOKIE_SECURE: ' FALSE ' }],
      ['production, DOMAIN_SERVER on localhost', false, { ...production, DOMAIN_SERVER: 'http://localhost:3080' }],
      ['production, DOMAIN_SERVER on *.localhost', false, { ...production, DOMAIN_SERVER: 'chat.localhost:3080' }],
      ['production, DOMAIN_SERVER on 127.0.0.1', false, { ...production, DOMAIN_SERVER: 'http://127.0.0.1:3080' }],
      ['production, a public DOMAIN_SERVER', true, { ...production, DOMAIN_SERVER: 'https://chat.example.com' }],
      ['production, localhost, SESSION_COOKIE_SECURE=true', true, { ...production, DOMAIN_SERVER: 'http://localhost:3080', SESSION_COOKIE_SECURE: 'true' }],
      ['production, SESSION_COOKIE_SECURE=yes (not a LibreChat value: ignored)', true, { ...production, SESSION_COOKIE_SECURE: 'yes' }],
      ['not production', false, {}],
      ['not production, a public DOMAIN_SERVER', false, { DOMAIN_SERVER: 'https://chat.example.com' }],
      ['not production, SESSION_COOKIE_SECURE=true', true, { SESSION_COOKIE_SECURE: 'true' }],
    ])('#10.2 %s: Secure=%s on login and refresh', async (_name, secure, env) => {
      const service = await h.reconfigure({ ...unset, ...env });
      expect(service.secureCookies).toBe(secure);
      const res = await login();
      expect(res.status).toBe(200);
      const refreshed = await refresh(cookieOf(res));
      expect(refreshed.status).toBe(200);
      for (const r of [res, refreshed]) {
        const c = parseSetCookies(r);
        for (const name of ['refreshToken', 'token_provider']) {
          expect([name, c[name].attrs.secure === true]).toEqual([name, secure]);
          expect(c[name].attrs.httponly).toBe(true);
          expect(c[name].attrs.samesite).toBe('Strict');
        }
      }
    });
  });

  describe('#10.4 login failures answer the status whose LibreChat message is truest', () => {
    const expectFailure = (res, status, code, message) => {
      expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
      if (message instanceof RegExp) expect(res.body.message).toMatch(message);
      else expect(res.body.message).toBe(message);
      expect(parseSetCookies(res).refreshToken).toBeUndefined();
    };

    test('#10.4 wrong credentials: 404 ("check your credentials")', async () => {
      expectFailure(await login({ email: 'Alice', password: 'wrong-password' }), 404, 'INVALID_CREDENTIALS', 'Invalid username or password.');
    });

    test('#10.4 the backend refuses the login (401/403): 404, never 403 ("banned")', async () => {
      h.mock.set({ login: { status: 403 } });
      expectFailure(await login(), 404, 'INVALID_CREDENTIALS', 'Invalid username or password.');
    });

    test('#10.4 a bad request (no password): 400 ("check your credentials")', async () => {
      expectFailure(await login({ email: 'Alice' }), 400, 'BAD_REQUEST', 'Password is required.');
    });

    test('#10.4 a required role missing: 404 ("check your credentials"), not 403 ("banned")', async () => {
      await h.reconfigure({ BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff' });
      expectFailure(await login(CAROL), 404, 'ACCESS_DENIED', 'Your account does not have a role required to use this LibreChat.');
    });

    test('#10.4 an email domain not allowed: 404, not 403', async () => {
      await h.reconfigure({ BACKEND_ALLOWED_EMAIL_DOMAINS: 'elsewhere.org' });
      expectFailure(await login(), 404, 'ACCESS_DENIED', 'The email domain of your account is not allowed to use this LibreChat.');
    });

    test('#10.4 another account owns the email: 409 ("check your credentials")', async () => {
      await h.lc.methods.createUser({ provider: 'local', email: 'alice@example.com', username: 'alice-local', name: 'A', emailVerified: true });
      expectFailure(await login(), 409, 'ACCOUNT_CONFLICT', /already exists/);
    });

    test('#10.4 the backend rate-limits: 429 ("too many attempts, try again later")', async () => {
      h.mock.set({ login: { status: 429 } });
      expectFailure(await login(), 429, 'BACKEND_RATE_LIMITED', 'Too many requests to the authentication service. Please try again later.');
    });

    test('#10.4 the backend answers 503: 500 ("please wait and try again"), not "check your credentials"', async () => {
      h.mock.set({ login: { status: 503 } });
      expectFailure(await login(), 500, 'BACKEND_UNAVAILABLE', 'The authentication service is unavailable (login answered 503). Please try again later.');
    });

    test('#10.4 the backend is unreachable: 500', async () => {
      await h.reconfigure({ BACKEND_AUTH_URL: `http://127.0.0.1:${await closedPort()}/login` });
      expectFailure(await login(), 500, 'BACKEND_UNAVAILABLE', 'The authentication service is unavailable (login unreachable). Please try again later.');
    });

    test('#10.4 the backend does not answer in time: 500', async () => {
      await h.reconfigure({ BACKEND_TIMEOUT_MS: '1000' });
      h.mock.set({ login: { hang: true } });
      expectFailure(await login(), 500, 'BACKEND_TIMEOUT', 'The authentication service did not answer in time. Please try again later.');
    });

    test('#10.4 the backend gives an unusable answer: 500', async () => {
      h.mock.set({ login: { malformed: true } });
      expectFailure(await login(), 500, 'BACKEND_BAD_RESPONSE', /^The authentication service gave an unusable answer \(.+\)\.$/);
    });

    test('#10.4 the database is unreachable: 500', async () => {
      await h.reconfigure({ MONGO_URI: `mongodb://127.0.0.1:${await closedPort()}/down`, MONGO_TIMEOUT_MS: '300' });
      expectFailure(await login(), 500, 'DB_UNAVAILABLE', 'The database is unavailable. Please try again later.');
    });

    test('#10.4 refresh keeps its precise statuses (only login changed)', async () => {
      const res = await login();
      h.mock.set({ refresh: { status: 400 } });
      expect((await refresh(cookieOf(res))).status).toBe(401);
      await h.reconfigure({ MONGO_URI: `mongodb://127.0.0.1:${await closedPort()}/down`, MONGO_TIMEOUT_MS: '300' });
      const down = await refresh(cookieOf(res));
      expect(down.status).toBe(503);
      expect(down.headers['retry-after']).toBe('1');
    });
  });

  describe('#10.5 a reload during a backend outage keeps the person in the app', () => {
    test.each([
      ['answers 503', { refresh: { status: 503 } }],
      ['hangs', { refresh: { hang: true } }],
      ['rate-limits', { refresh: { status: 429 } }],
      ['answers garbage', { refresh: { malformed: true } }],
    ])('#10.5 the backend %s: 200 {token, user} from the session, no rotation, no later expiry, API works', async (_name, switches) => {
      await h.reconfigure({ BACKEND_TIMEOUT_MS: '1000' });
      const res = await login();
      const loginExp = jwt.decode(res.body.token).exp;
      const refreshToken = parseSetCookies(res).refreshToken.value;
      const before = await sessionOf(refreshToken);
      h.mock.set(switches);

      const during = await refresh(cookieOf(res));
      expect(during.status).toBe(200);
      expect(h.mock.calls.refresh).toBe(1);
      // The cookies stay as they are; the session is not rotated.
      expect(during.headers['set-cookie']).toBeUndefined();
      expect((await sessionOf(refreshToken)).refreshTokenHash).toBe(before.refreshTokenHash);
      // A LibreChat access token of the same user, expiring no later than the login's.
      const claims = jwt.verify(during.body.token, h.vars.JWT_SECRET, { algorithms: ['HS256'] });
      expect(claims.id).toBe(res.body.user.id);
      expect(claims.exp).toBeLessThanOrEqual(loginExp);
      expect(claims.exp * 1000).toBeGreaterThan(Date.now());
      expect(during.body.user.email).toBe('alice@example.com');
      expect(during.body.user.password).toBeUndefined();
      const api = await request(h.app).get('/api/user').set('Authorization', `Bearer ${during.body.token}`);
      expect(api.status).toBe(200);
      expect(h.logs.lines.some((l) => l.includes('access token re-issued without rotation'))).toBe(true);

      // After the outage the same cookie refreshes through the backend and rotates.
      h.mock.reset();
      const after = await refresh(cookieOf(res));
      expect(after.status).toBe(200);
      expect(h.mock.calls.refresh).toBe(1);
      expect(parseSetCookies(after).refreshToken.value).not.toBe(refreshToken);
    });

    test('#10.5 the same after a rotation: the expiry follows the last successful refresh', async () => {
      const res = await login();
      await sleep(1100); // a later second than the login's token
      const rotated = await refresh(cookieOf(res));
      expect(rotated.status).toBe(200);
      const rotatedExp = jwt.decode(rotated.body.token).exp;
      h.mock.set({ refresh: { status: 502 } });
      const during = await refresh(cookieOf(rotated));
      expect(during.status).toBe(200);
      expect(jwt.decode(during.body.token).exp).toBeLessThanOrEqual(rotatedExp);
      expect(jwt.decode(during.body.token).exp).toBeGreaterThan(jwt.decode(res.body.token).exp);
    });

    test('#10.5 past the last access token\'s lifetime the outage answers 503 with Retry-After', async () => {
      await h.reconfigure({ SESSION_EXPIRY: '1000' });
      const res = await login();
      await sleep(2100); // SESSION_EXPIRY (1 s, whole seconds) has passed since the session began
      h.mock.set({ refresh: { status: 503 } });
      const during = await refresh(cookieOf(res));
      expect(during.status).toBe(503);
      expect(during.headers['retry-after']).toBe('1');
      expect(during.headers['set-cookie']).toBeUndefined();
      h.mock.reset();
      expect((await refresh(cookieOf(res))).status).toBe(200);
    });

    test('#10.5 a refusal is no outage: 401, the session ends', async () => {
      const res = await login();
      h.mock.set({ refresh: { status: 401 } });
      const refused = await refresh(cookieOf(res));
      expect(refused.status).toBe(401);
      expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    });

    test('#10.5 backend session mode keeps 503 (the browser\'s token is the backend\'s own)', async () => {
      await h.reconfigure({ BACKEND_SESSION_MODE: 'backend' });
      const res = await login();
      h.mock.set({ refresh: { status: 503 } });
      const during = await refresh(cookieOf(res));
      expect(during.status).toBe(503);
      expect(during.headers['retry-after']).toBe('1');
    });
  });
});

// Found by the soak run (#29): its database paused (SIGSTOP) held every API request that needed a
// user load for as long as the pause lasted; MONGO_TIMEOUT_MS bounded connecting only.
describe('#29 a database that stops answering on its open connections', () => {
  const { startTcpProxy } = require('./support/tcpProxy');
  const { mongoUri } = require('./support/mongoUri');
  const { loginSession, getWithBearer } = require('./support/auth');
  let h;
  const seen = [];
  harnessHooks({ db: 'statuses-stall' }, (made) => (h = made), { each: freshService, seen });

  test('#29 an API request that needs the database answers 503 while it stalls, not when the stall ends', async () => {
    const proxy = await startTcpProxy(mongoUri('statuses-stall'));
    try {
      await h.reconfigure({ MONGO_URI: proxy.uri, MONGO_TIMEOUT_MS: '1000', USER_CACHE_TTL: '0' });
      const s = await loginSession(h.app, ALICE, seen);
      expect((await getWithBearer(h.app, s.token)).status).toBe(200);
      // Every answer of the database is kept back until release(), here after 8 s (the bound is
      // twice MONGO_TIMEOUT_MS, 2 s); the driver's own heartbeat gave up on it after about 12.
      proxy.hold();
      let released = false;
      const release = setTimeout(() => {
        released = true;
        proxy.release();
      }, 8000);
      const stalled = await getWithBearer(h.app, s.token);
      const answeredWhileStalled = !released;
      clearTimeout(release);
      expect(answeredWhileStalled).toBe(true);
      expect(stalled.status).toBe(503);
      expect(stalled.body.message).toMatch(/database/i);
      proxy.release();
      expect((await getWithBearer(h.app, s.token)).status).toBe(200);
    } finally {
      proxy.release();
      await h.reconfigure();
      await proxy.close();
    }
  }, 30_000);
});
