'use strict';

/**
 * What the specs say to the LibreChat-shaped app again and again: the mock backend's users, the
 * auth routes over supertest, and the cookies and tokens their answers carry.
 *
 *   const s = await loginSession(h.app, ALICE, seen);   // 200 expected: { token, cookie, ... }
 *   const res = await postRefresh(h.app, s.cookie);      // the raw answer, for the test to judge
 */

const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { parseSetCookies } = require('./harness');

/** The mock backend's Alice (u-1001, roles: staff), a username in the email field. */
const ALICE = { email: 'Alice', password: 'alice-password-1' };
/** The mock backend's Bob (u-1002, roles: admin, staff), by username. */
const BOB = { email: 'bob', password: 'bob-password-2' };
/** Bob again, by his email address. */
const BOB_BY_EMAIL = { email: 'bob@example.com', password: 'bob-password-2' };
/** The mock backend's Carol (u-1003), by username. */
const CAROL = { email: 'carol', password: 'carol-password-3' };

/** Resolves after `ms` milliseconds. */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST /api/auth/login with `body` (and `headers`, when given): the request, answer unchecked. */
function postLogin(app, body, headers) {
  const r = request(app).post('/api/auth/login');
  return (headers ? r.set(headers) : r).send(body);
}

/** POST /api/auth/refresh with `cookie` as the Cookie header (none when omitted): the request. */
function postRefresh(app, cookie) {
  const r = request(app).post('/api/auth/refresh');
  return cookie === undefined ? r : r.set('Cookie', cookie);
}

/** GET `path` (/api/user) with `token` as the bearer token (no Authorization when undefined). */
function getWithBearer(app, token, path = '/api/user') {
  const r = request(app).get(path);
  return token === undefined ? r : r.set('Authorization', `Bearer ${token}`);
}

/** The refresh cookie an answer set, as a Cookie header: `refreshToken=…`. */
function refreshCookieOf(res) {
  return `refreshToken=${parseSetCookies(res).refreshToken.value}`;
}

/** Both cookies a login or refresh answer set, as a Cookie header: `refreshToken=…; token_provider=…`. */
function sessionCookieOf(res) {
  const c = parseSetCookies(res);
  return `refreshToken=${c.refreshToken.value}; token_provider=${c.token_provider.value}`;
}

/** A function that adds the access and refresh token an answer carries (if any) to `seen`, and returns the answer. */
function rememberTokensIn(seen) {
  return (res) => {
    seen.push(...[res.body?.token, parseSetCookies(res).refreshToken?.value].filter(Boolean));
    return res;
  };
}

/** A spec's list of secrets it saw (`seen`, for h.assertNoSecretsLogged) and `keep(...values)`, which adds to it and returns the first. */
function secretsSeen() {
  const seen = [];
  const keep = (...values) => {
    seen.push(...values.filter(Boolean));
    return values[0];
  };
  return { seen, keep };
}

/**
 * Logs in over HTTP and expects 200; `seen`, when given, gets both tokens. Returns the session:
 * { res, token, refreshToken, cookie (both cookies), refreshCookie (the refresh cookie alone), userId, user }.
 */
async function loginSession(app, creds = ALICE, seen) {
  const res = await postLogin(app, creds);
  expect(res.status).toBe(200);
  const cookies = parseSetCookies(res);
  seen?.push(res.body.token, cookies.refreshToken.value);
  return {
    res,
    token: res.body.token,
    refreshToken: cookies.refreshToken.value,
    cookie: `refreshToken=${cookies.refreshToken.value}; token_provider=${cookies.token_provider.value}`,
    refreshCookie: `refreshToken=${cookies.refreshToken.value}`,
    userId: res.body.user.id,
    user: res.body.user,
  };
}

/** The session document a refresh token names (its `sessionId`), or null. */
function findSessionOf(db, refreshToken) {
  return db.collection('sessions').findOne({ _id: new ObjectId(jwt.decode(refreshToken).sessionId) });
}

module.exports = {
  ALICE,
  BOB,
  BOB_BY_EMAIL,
  CAROL,
  sleep,
  postLogin,
  postRefresh,
  getWithBearer,
  refreshCookieOf,
  sessionCookieOf,
  rememberTokensIn,
  secretsSeen,
  loginSession,
  findSessionOf,
};
