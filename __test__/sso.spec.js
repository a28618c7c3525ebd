'use strict';

// #26: single sign-on from the organisation's portal. A page load (LibreChat's client posts
// /api/auth/refresh) without a LibreChat session but with the portal's session cookie, or with a
// trusted proxy's identity headers, starts a session as a login does. The portal is a real HTTP
// server here (its session check and the backend's user lookup by name); the proxy is a TCP peer
// of its own address (127.0.0.2), the tests' other requests come from 127.0.0.1.

const http = require('http');
const crypto = require('crypto');
const request = require('supertest');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies } = require('./support/harness');
const { startInstance } = require('./support/instance');
const { ALICE, BOB, postLogin, postRefresh, getWithBearer, rememberTokensIn } = require('./support/auth');

const PORTAL_COOKIE = 'portal_session';
const PAUSE = 'lcba_sso_pause';
const PROXY = '127.0.0.2';

/** The portal: GET /session answers the user of its session cookie (401 without one), GET
 * /lookup?username= the backend's user of that name (404 for none); `state` switches it down or
 * to garbage. Users carry the mock backend's ids, so one person is one account either way. */
async function startPortal() {
  const users = new Map([
    ['alice', { id: 'u-1001', email: 'alice@example.com', username: 'alice', name: 'Alice Liddell', roles: ['staff'] }],
    ['bob', { id: 'u-1002', email: 'bob@example.com', username: 'bob', name: 'Bob Builder', roles: ['admin', 'staff'] }],
  ]);
  const sessions = new Map();
  const state = { down: false, garbage: false, calls: { session: 0, lookup: 0 } };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://portal');
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (state.down) return send(503, { error: 'down' });
    if (state.garbage) return send(200, '<html>sign in</html>');
    if (url.pathname === '/session') {
      state.calls.session += 1;
      const m = new RegExp(`(?:^|;\\s*)${PORTAL_COOKIE}=([^;]*)`).exec(req.headers.cookie ?? '');
      const user = m && sessions.get(m[1]);
      return user ? send(200, { user }) : send(401, { error: 'not signed in' });
    }
    if (url.pathname === '/lookup') {
      state.calls.lookup += 1;
      const user = users.get(url.searchParams.get('username'));
      return user ? send(200, user) : send(404, { error: 'no such user' });
    }
    return send(404, {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    users,
    state,
    /** A new portal session of `name`: its cookie value. */
    signIn(name) {
      const value = crypto.randomBytes(24).toString('base64url');
      sessions.set(value, users.get(name));
      return value;
    },
    signOut(value) {
      sessions.delete(value);
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A request to `base` from the local address `from` (the TCP peer the app sees): `{status, headers, body}`. */
function fromPeer(base, from, method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers, localAddress: from }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let body = text;
        try { body = JSON.parse(text); } catch { /* text */ }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('#26 single sign-on', () => {
  let h;
  let portal;
  const seen = [];
  const remember = rememberTokensIn(seen);
  const cookieOf = (value) => `${PORTAL_COOKIE}=${value}`;
  /** A page load's refresh carrying `cookie` (a Cookie header). */
  const pageLoad = (cookie, headers = {}) => postRefresh(h.app, cookie).set(headers);
  const sessionCookies = (res) => {
    const c = parseSetCookies(res);
    return c.refreshToken ? `refreshToken=${c.refreshToken.value}; token_provider=${c.token_provider.value}` : null;
  };
  const audits = (event) => h.logs.lines.filter((l) => l.includes('[customBackendAuth:audit]') && l.includes(`"event":"${event}"`));

  beforeAll(async () => {
    portal = await startPortal();
    h = await startHarness({
      db: 'sso',
      env: { BACKEND_SSO_COOKIE: PORTAL_COOKIE, BACKEND_SSO_COOKIE_URL: `${portal.url}/session` },
    });
  });
  beforeEach(async () => {
    await h.clear();
    await h.reconfigure();
    Object.assign(portal.state, { down: false, garbage: false });
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seen);
    await h.close();
    await portal.close();
  });

  /** A portal session of `name`, its cookie remembered as a secret. */
  const portalSession = (name) => {
    const value = portal.signIn(name);
    seen.push(value);
    return value;
  };

  test('the portal cookie signs in on a page load: a session as a login makes it, audited with how', async () => {
    const value = portalSession('alice');
    const res = remember(await pageLoad(cookieOf(value)));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ email: 'alice@example.com', idOnTheSource: 'u-1001', provider: 'custom-backend' });
    const me = await getWithBearer(h.app, res.body.token);
    expect(me.status).toBe(200);
    const session = await h.db.collection('sessions').findOne({ user: new ObjectId(res.body.user._id) });
    expect(session.customBackend).toEqual({ sso: 'sso-cookie' });
    expect(audits('login.success').some((l) => l.includes('"via":"sso-cookie"'))).toBe(true);
    // The portal was asked with the cookie forwarded, once; the next page load asks the cache.
    expect(portal.state.calls.session).toBeGreaterThanOrEqual(1);
    const calls = portal.state.calls.session;
    const next = remember(await pageLoad(`${sessionCookies(res)}; ${cookieOf(value)}`));
    expect(next.status).toBe(200);
    expect(next.body.user._id).toBe(res.body.user._id);
    expect(portal.state.calls.session).toBe(calls);
  });

  test('a cookie the portal refuses, and no cookie, start nothing: the login page', async () => {
    seen.push('made-up-session-value');
    for (const cookie of [cookieOf('made-up-session-value'), undefined]) {
      const res = await pageLoad(cookie);
      expect(res.status).toBe(200);
      expect(res.text).toBe('Refresh token not provided');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    expect(audits('login.failure').some((l) => l.includes('"via":"sso-cookie"') && l.includes('TOKEN_INVALID'))).toBe(true);
  });

  test('the session lives as long as the portal session: signed out there, the next refresh ends it', async () => {
    const value = portalSession('alice');
    const res = remember(await pageLoad(cookieOf(value)));
    portal.signOut(value);
    await h.reconfigure(); // a fresh service: nothing cached of the portal's earlier answer
    const after = await pageLoad(`${sessionCookies(res)}; ${cookieOf(value)}`);
    expect(after.status).toBe(401);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    // Without the portal cookie at all, the same.
    const again = remember(await pageLoad(cookieOf(portalSession('alice'))));
    expect((await pageLoad(sessionCookies(again))).status).toBe(401);
  });

  test('logout does not loop: the same portal identity waits, a new portal session or a password login ends the wait', async () => {
    const value = portalSession('alice');
    const res = remember(await pageLoad(cookieOf(value)));
    const logout = await request(h.app).post('/api/auth/logout')
      .set('Authorization', `Bearer ${res.body.token}`).set('Cookie', `${sessionCookies(res)}; ${cookieOf(value)}`);
    expect(logout.status).toBe(200);
    expect(logout.body).toEqual({ message: 'Logout successful' });
    const pause = parseSetCookies(logout)[PAUSE];
    expect(pause.attrs.httponly).toBe(true);
    expect(pause.value).not.toContain(value);
    const paused = `${PAUSE}=${pause.value}`;
    const reload = await pageLoad(`${cookieOf(value)}; ${paused}`);
    expect(reload.status).toBe(200);
    expect(reload.text).toBe('Refresh token not provided');
    // A new portal session (the user signed in there again) is not paused.
    const fresh = remember(await pageLoad(`${cookieOf(portalSession('alice'))}; ${paused}`));
    expect(fresh.status).toBe(200);
    expect(parseSetCookies(fresh)[PAUSE].attrs.expires).toMatch(/1970/);
    // A login with the password ends the pause too.
    const login = remember(await postLogin(h.app, ALICE, { Cookie: paused }));
    expect(parseSetCookies(login)[PAUSE].attrs.expires).toMatch(/1970/);
    // With the portal's logout page configured, LibreChat's client is sent there.
    await h.reconfigure({ BACKEND_SSO_LOGOUT_URL: 'https://portal.example.com/logout' });
    const s = remember(await pageLoad(cookieOf(value)));
    const out = await request(h.app).post('/api/auth/logout').set('Authorization', `Bearer ${s.body.token}`).set('Cookie', sessionCookies(s));
    expect(out.body).toEqual({ message: 'Logout successful', redirect: 'https://portal.example.com/logout' });
  });

  test('log out everywhere ends single sign-on sessions too, and pauses this browser', async () => {
    const value = portalSession('alice');
    const a = remember(await pageLoad(cookieOf(value)));
    const b = remember(await pageLoad(cookieOf(value)));
    const res = await request(h.app).post('/api/auth/logout/all')
      .set('Authorization', `Bearer ${a.body.token}`).set('Cookie', `${sessionCookies(a)}; ${cookieOf(value)}`);
    expect(res.body.sessions).toBe(2);
    expect(parseSetCookies(res)[PAUSE]).toBeDefined();
    expect((await pageLoad(sessionCookies(b))).status).toBe(401);
  });

  test('an outage starts nothing and ends nothing: 503, and the session goes on when the portal is back', async () => {
    const value = portalSession('alice');
    portal.state.down = true;
    const down = await pageLoad(cookieOf(value));
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('1');
    expect(down.headers['set-cookie']).toBeUndefined();
    portal.state.down = false;
    const s = remember(await pageLoad(cookieOf(value)));
    await h.reconfigure();
    portal.state.garbage = true;
    const garbage = await pageLoad(`${sessionCookies(s)}; ${cookieOf(value)}`);
    expect(garbage.status).toBe(502);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
    portal.state.garbage = false;
    expect(remember(await pageLoad(`${sessionCookies(s)}; ${cookieOf(value)}`)).status).toBe(200);
  });

  test('never weaker than a login: the policy refuses, and a user with LibreChat 2FA signs in with the password', async () => {
    await h.reconfigure({ BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'admin' });
    const refused = await pageLoad(cookieOf(portalSession('alice')));
    expect(refused.text).toBe('Refresh token not provided');
    expect(audits('login.failure').some((l) => l.includes('ACCESS_DENIED') && l.includes('"via":"sso-cookie"'))).toBe(true);
    expect(remember(await pageLoad(cookieOf(portalSession('bob')))).status).toBe(200);

    await h.reconfigure();
    const first = remember(await pageLoad(cookieOf(portalSession('alice'))));
    await h.db.collection('users').updateOne({ _id: new ObjectId(first.body.user._id) }, { $set: { twoFactorEnabled: true } });
    await h.db.collection('sessions').deleteMany({});
    const twoFa = await pageLoad(cookieOf(portalSession('alice')));
    expect(twoFa.text).toBe('Refresh token not provided');
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    expect(audits('login.failure').some((l) => l.includes('TWO_FACTOR_REQUIRED'))).toBe(true);
  });

  test('two people in one browser: the portal identity wins, the other session ends', async () => {
    const bob = remember(await postLogin(h.app, BOB));
    const bobSession = sessionCookies(bob);
    const alice = remember(await pageLoad(`${bobSession}; ${cookieOf(portalSession('alice'))}`));
    expect(alice.status).toBe(200);
    expect(alice.body.user.idOnTheSource).toBe('u-1001');
    expect(await h.db.collection('sessions').countDocuments({ user: new ObjectId(bob.body.user._id) })).toBe(0);
    expect((await pageLoad(bobSession)).status).toBe(401);
    // The same person's password session is simply refreshed.
    const mine = remember(await postLogin(h.app, ALICE));
    const same = remember(await pageLoad(`${sessionCookies(mine)}; ${cookieOf(portalSession('alice'))}`));
    expect(same.body.user._id).toBe(mine.body.user._id);
    expect(await h.db.collection('sessions').countDocuments({ user: new ObjectId(mine.body.user._id) })).toBeGreaterThanOrEqual(1);
  });

  test('the portal cookie as a bearer token (no BACKEND_SSO_COOKIE_URL): checked by user info', async () => {
    await h.reconfigure({ BACKEND_SSO_COOKIE_URL: '' });
    remember(await postLogin(h.app, ALICE));
    const backendToken = h.mock.issuedTokens().find((t) => t.startsWith('at_'));
    seen.push(...h.mock.issuedTokens());
    const res = remember(await pageLoad(cookieOf(backendToken)));
    expect(res.status).toBe(200);
    expect(res.body.user.idOnTheSource).toBe('u-1001');
    expect((await pageLoad(cookieOf('at_not-a-token'))).text).toBe('Refresh token not provided');
  });

  describe('a trusted proxy\'s identity headers', () => {
    let server;
    let base;
    beforeAll(async () => {
      server = h.app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${server.address().port}`;
    });
    afterAll(() => new Promise((r) => server.close(r)));
    const headers = { 'Remote-User': 'alice', 'Remote-Email': 'alice@example.com', 'Remote-Groups': 'staff,admin' };

    test('from the proxy: in; the same headers from anyone else, X-Forwarded-For or not: ignored and counted', async () => {
      await h.reconfigure({ BACKEND_SSO_PROXIES: PROXY, BACKEND_SSO_PROXY_USERS: 'headers', BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' });
      const before = h.service.metrics().ssoUntrustedHeaders;
      const direct = await fromPeer(base, '127.0.0.1', 'POST', '/api/auth/refresh', { ...headers, 'X-Forwarded-For': PROXY });
      expect(direct.status).toBe(200);
      expect(direct.body).toBe('Refresh token not provided');
      expect(h.service.metrics().ssoUntrustedHeaders).toBe(before + 1);
      expect(h.logs.lines.some((l) => l.includes('not a trusted proxy were ignored'))).toBe(true);

      const viaProxy = await fromPeer(base, PROXY, 'POST', '/api/auth/refresh', headers);
      expect(viaProxy.status).toBe(200);
      seen.push(viaProxy.body.token);
      expect(viaProxy.body.user).toMatchObject({ idOnTheSource: 'alice', email: 'alice@example.com', role: 'ADMIN' });
      expect(audits('login.success').some((l) => l.includes('"via":"sso-proxy"'))).toBe(true);
      // A proxy that sends no usable email (headers mode): nothing.
      const noEmail = await fromPeer(base, PROXY, 'POST', '/api/auth/refresh', { 'Remote-User': 'carol' });
      expect(noEmail.body).toBe('Refresh token not provided');
    });

    test('by default the user must exist at the backend, which describes them', async () => {
      await h.reconfigure({ BACKEND_SSO_PROXIES: PROXY, BACKEND_SSO_LOOKUP_URL: `${portal.url}/lookup` });
      const known = await fromPeer(base, PROXY, 'POST', '/api/auth/refresh', { 'X-Forwarded-User': 'bob', 'X-Forwarded-Email': 'forged@evil.example' });
      seen.push(known.body.token);
      expect(known.body.user).toMatchObject({ idOnTheSource: 'u-1002', email: 'bob@example.com' });
      const unknown = await fromPeer(base, PROXY, 'POST', '/api/auth/refresh', { 'Remote-User': 'mallory' });
      expect(unknown.body).toBe('Refresh token not provided');
    });
  });

  test('two instances: a session single sign-on started on one is refreshed on the other, and a logout there pauses here', async () => {
    const other = await startInstance({ ...h.vars, BACKEND_SSO_COOKIE: PORTAL_COOKIE, BACKEND_SSO_COOKIE_URL: `${portal.url}/session` });
    try {
      const value = portalSession('alice');
      const s = remember(await pageLoad(cookieOf(value)));
      const headers = { Cookie: `${sessionCookies(s)}; ${cookieOf(value)}` };
      const there = await fetch(`${other.url}/api/auth/refresh`, { method: 'POST', headers });
      expect(there.status).toBe(200);
      const body = await there.json();
      seen.push(body.token);
      const rotated = there.headers.getSetCookie().find((c) => c.startsWith('refreshToken='));
      seen.push(rotated.split(';')[0].slice('refreshToken='.length));
      const out = await fetch(`${other.url}/api/auth/logout`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${body.token}`, Cookie: `${rotated.split(';')[0]}; ${cookieOf(value)}` },
      });
      expect(out.status).toBe(200);
      const pause = out.headers.getSetCookie().find((c) => c.startsWith(`${PAUSE}=`)).split(';')[0];
      const here = await pageLoad(`${cookieOf(value)}; ${pause}`);
      expect(here.text).toBe('Refresh token not provided');
      for (const line of other.logs) for (const secret of seen) expect(line).not.toContain(secret);
    } finally {
      await other.close();
    }
  });
});
