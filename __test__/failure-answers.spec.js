'use strict';

// What a failure answers and logs (issue 14's items 10 and 11, each seen failing against
// deliberately broken code): statuses no other test exercised (backend 429s, 4xx and oversized
// answers at login, redirects not followed), and one log line per failure with its prefix, its code
// and its level.

const request = require('supertest');
const { harnessHooks, clearWorld } = require('./support/harness');
const { ALICE, postLogin, refreshCookieOf } = require('./support/auth');

describe('#14.10 statuses no test had exercised', () => {
  let h;
  const login = (body = ALICE) => postLogin(h.app, body);
  const cookieOf = refreshCookieOf;
  const expectLoginRefused = (res, status, code) => {
    expect([res.status, res.body.code]).toEqual([status, code]);
    expect(res.headers['set-cookie']).toBeUndefined();
  };

  harnessHooks({ db: 'review-statuses' }, (made) => (h = made), { each: clearWorld });

  test('#14.10 a backend 429 at login: 429 BACKEND_RATE_LIMITED ("too many attempts" on the page)', async () => {
    h.mock.set({ login: { status: 429 } });
    expectLoginRefused(await login(), 429, 'BACKEND_RATE_LIMITED');
  });

  test.each([[400], [422]])('#14.10 a backend %i at login is the backend failing, not a wrong password: 500 BACKEND_BAD_RESPONSE', async (status) => {
    h.mock.set({ login: { status } });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test('#14.10 a login answer over 1 MiB: 500 BACKEND_BAD_RESPONSE, nothing written', async () => {
    h.mock.set({ login: { status: 200, body: { token: 'at_x', user: { id: 'u-1001', email: 'alice@example.com', pad: 'x'.repeat(1024 * 1024) } } } });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test.each([
    ['an id', (u) => ({ ...u, id: 'u'.repeat(1025) })],
    ['an email', (u) => ({ ...u, email: `${'a'.repeat(1020)}@example.com` })],
  ])('#14.10 %s over 1024 characters in the backend\'s user: 500 BACKEND_BAD_RESPONSE at login, nothing written', async (_label, userFields) => {
    h.mock.set({ userFields });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test('#14.10 a backend 429 on a bearer check: 503, and at refresh: the session kept', async () => {
    const first = await login();
    h.mock.set({ userinfo: { status: 429 } });
    const bearer = await request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`);
    expect(bearer.status).toBe(503);
    h.mock.set({ refresh: { status: 429 } });
    const res = await request(h.app).post('/api/auth/refresh').set('Cookie', cookieOf(first));
    expect(res.status).not.toBe(401);
    expect((res.headers['set-cookie'] ?? []).filter((c) => /^refreshToken=;/.test(c))).toEqual([]);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
  });

  test('#14.10 redirects on user info and refresh are not followed', async () => {
    const first = await login();
    // Each points at itself: a client that followed would call again.
    h.mock.set({
      userinfo: { status: 302, body: {}, headers: { Location: h.mock.urls.userinfo } },
      refresh: { status: 307, body: {}, headers: { Location: h.mock.urls.refresh } },
    });
    const bearer = await request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`);
    expect(bearer.status).toBe(503);
    expect(h.mock.calls.userinfo).toBe(1);
    const res = await request(h.app).post('/api/auth/refresh').set('Cookie', cookieOf(first));
    expect(res.status).not.toBe(401);
    expect(h.mock.calls.refresh).toBe(1);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
  });
});

describe('#14.11 one log line per failure: its prefix, its code, warn for 4xx and error for 5xx', () => {
  let h;
  const login = (body = ALICE) => postLogin(h.app, body);
  /** The lines the package wrote while `act` ran. */
  const linesOf = async (act) => {
    const before = h.logs.lines.length;
    await act();
    return h.logs.lines.slice(before).filter((l) => l.includes('[customBackendAuth]'));
  };

  harnessHooks({ db: 'review-log-lines' }, (made) => (h = made), { each: clearWorld });

  test.each([
    ['a wrong password', {}, { email: 'Alice', password: 'wrong-password-1' }, /^warn \[customBackendAuth\] login failed: INVALID_CREDENTIALS /],
    ['a missing password', {}, { email: 'Alice' }, /^warn \[customBackendAuth\] login failed: BAD_REQUEST /],
    ['a backend that is down', { login: { status: 503 } }, undefined, /^error \[customBackendAuth\] login failed: BACKEND_UNAVAILABLE /],
    ['a backend answering garbage', { login: { malformed: true } }, undefined, /^error \[customBackendAuth\] login failed: BACKEND_BAD_RESPONSE /],
  ])('#14.11 login: %s', async (_label, switches, body, line) => {
    h.mock.set(switches);
    const lines = await linesOf(() => login(body));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });

  test('#14.11 refresh: a refusal is one warn line, an API request refused with 401 none, a 5xx token check one error line', async () => {
    const res = await login();
    const cookie = `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
    h.mock.set({ refresh: { status: 401 } });
    const refused = await linesOf(() => request(h.app).post('/api/auth/refresh').set('Cookie', cookie));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^warn \[customBackendAuth\] refresh failed: [A-Z_]+ /);
    expect(await linesOf(() => request(h.app).get('/api/user').set('Authorization', 'Bearer at_not-a-token-0000'))).toEqual([]);
    h.mock.set({ userinfo: { status: 500 } });
    const down = await linesOf(() => request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^error \[customBackendAuth\] token check failed: BACKEND_UNAVAILABLE /);
  });
});
