#!/usr/bin/env node
'use strict';

/**
 * A walk through librechat-custom-backend-auth over real HTTP.
 *
 *   npm run demo            (builds the addon, then runs this file)
 *   node demo/run.js        (uses the addon already built)
 *
 * Starts the test database (scripts/test-db.js; MONGO_URI set in the environment is used instead,
 * with a database of its own, `lcba-demo`, dropped at start and end), the mock identity backend and the
 * LibreChat-shaped Express 5 app of the tests, wired as docs/install.md shows. Then it logs in, calls the
 * API, reads what was stored with LibreChat's own models, tries a wrong password, and, where the
 * package exports them, refreshes and logs out. Everything is stopped at the end, also on errors.
 * Exit status 0 when every step answered as expected, 1 otherwise.
 *
 * Never printed: passwords; tokens beyond their first 12 characters.
 */

const crypto = require('crypto');
const path = require('path');

const REPO = path.resolve(__dirname, '..');
const DEMO_DB = 'lcba-demo';
const ALICE = { email: 'Alice', password: 'alice-password-1' }; // a username in LibreChat's email field
const WRONG = { email: 'Alice', password: 'not-alices-password' };
const PASSWORDS = [ALICE.password, WRONG.password];

/* ------------------------------------------------------------------------------------ printing */

const out = (line = '') => process.stdout.write(`${line}\n`);
const indent = (text, pad = '     ') => String(text).split('\n').map((l) => pad + l).join('\n');
/** The first 12 characters of a secret, never more. */
const short = (secret) => (typeof secret === 'string' ? `${secret.slice(0, 12)}…` : String(secret));
/** A token as shown: its first 12 characters and the start of its SHA-256, to tell tokens apart. */
const tok = (secret) => (typeof secret === 'string'
  ? `${short(secret)} (sha256 ${crypto.createHash('sha256').update(secret).digest('hex').slice(0, 8)}…)`
  : String(secret));
const json = (v) => JSON.stringify(v, null, 2);
/** A login body as it may be shown: the password hidden. */
const showBody = (body) => JSON.stringify({ ...body, ...('password' in body ? { password: '(hidden)' } : {}) });
const decodePayload = (jwt) => JSON.parse(Buffer.from(String(jwt).split('.')[1] ?? '', 'base64url').toString('utf8'));
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

let stepNo = 0;
function step(title) {
  stepNo += 1;
  out();
  out(`${stepNo}. ${title}`);
}

class DemoFailure extends Error {}

function expectStatus(res, expected, what) {
  if (res.status !== expected) {
    const msg = res.json?.message ?? res.text.slice(0, 200);
    throw new DemoFailure(`${what}: expected HTTP ${expected}, got ${res.status} (${msg})`);
  }
}

function check(condition, what) {
  if (!condition) throw new DemoFailure(what);
  out(`     ✓ ${what}`);
}

/* ------------------------------------------------------------------------------------ HTTP */

/** Set-Cookie headers as [{ name, value, flags: {name: value|true} }]. */
function parseSetCookies(headers) {
  return headers.getSetCookie().map((header) => {
    const [pair, ...attrs] = header.split(';').map((s) => s.trim());
    const i = pair.indexOf('=');
    const flags = {};
    for (const a of attrs) {
      const j = a.indexOf('=');
      flags[j < 0 ? a : a.slice(0, j)] = j < 0 ? true : a.slice(j + 1);
    }
    return { name: pair.slice(0, i), value: decodeURIComponent(pair.slice(i + 1)), flags };
  });
}

function showCookies(cookies) {
  for (const c of cookies) {
    const value = c.name === 'token_provider' || !c.value ? c.value : tok(c.value);
    const flags = Object.entries(c.flags).map(([k, v]) => (v === true ? k : `${k}=${v}`)).join('; ');
    out(`     Set-Cookie: ${c.name}=${value || '(empty)'}; ${flags}`);
  }
}

function makeClient(baseUrl) {
  /** One request; prints its request line; answers { status, json, text, cookies }. */
  return async function call(method, pathname, { body, token, cookies, show } = {}) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    if (cookies) headers.Cookie = Object.entries(cookies).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
    const parts = [`${method} ${pathname}`];
    if (token) parts.push(`Authorization: Bearer ${tok(token)}`);
    if (cookies) parts.push(`Cookie: ${Object.entries(cookies).map(([k, v]) => `${k}=${k === 'token_provider' ? v : tok(v)}`).join('; ')}`);
    if (body !== undefined) parts.push(show ?? showBody(body));
    out(`   → ${parts.join('  ')}`);
    const res = await fetch(baseUrl + pathname, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    out(`   ← ${res.status} ${res.statusText}`);
    return { status: res.status, json: parsed, text, cookies: parseSetCookies(res.headers) };
  };
}

/* ------------------------------------------------------------------------------------ the walk */

/** A logger that prints each line indented and keeps it for the "no secret logged" check. */
function demoLogger(lines) {
  const keep = (level) => (...args) => {
    const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    lines.push(line);
    out(`     [log ${level}] ${line}`);
  };
  return { error: keep('error'), warn: keep('warn'), info: keep('info'), debug: () => {} };
}

async function walk(world) {
  const { call, lc, mock, pkg, logLines } = world;

  /* 1 ------------------------------------------------------------------------------- login */
  step('Log in as the mock backend\'s user Alice (LibreChat\'s login form sends the name in `email`)');
  const login = await call('POST', '/api/auth/login', { body: ALICE });
  expectStatus(login, 200, 'login');
  const { token, user } = login.json;
  out('     user:');
  const { _id, id, email, username, name, provider, idOnTheSource, role, emailVerified } = user;
  out(indent(json({ _id, id, email, username, name, provider, idOnTheSource, role, emailVerified }), '       '));
  out(`     token: ${tok(token)}  payload (decoded, not verified):`);
  out(indent(json(decodePayload(token)), '       '));
  showCookies(login.cookies);
  const refreshCookie = login.cookies.find((c) => c.name === 'refreshToken');
  check(refreshCookie && refreshCookie.flags.HttpOnly === true, 'refreshToken cookie is HttpOnly (the browser\'s JavaScript never sees it)');
  const answerText = JSON.stringify(login.json) + JSON.stringify(login.cookies);
  check(mock.issuedTokens().every((t) => !answerText.includes(t)),
    'neither the answer nor the cookies carry a backend token');

  /* 2 ------------------------------------------------------------------------------- API call */
  step('Call the API with the access token');
  const me = await call('GET', '/api/user', { token });
  expectStatus(me, 200, 'GET /api/user');
  out(`     ${JSON.stringify({ id: me.json.id, email: me.json.email, username: me.json.username, provider: me.json.provider, role: me.json.role })}`);
  check(me.json.id === user.id, 'the token authenticates Alice');

  /* 3 ------------------------------------------------------------------------------- storage */
  step('What is stored, read with LibreChat\'s own models (@librechat/data-schemas)');
  const { User, Session } = lc.models;
  const stored = await User.findById(user.id).lean();
  out('   users (User.findById(id).lean()):');
  const shown = {};
  for (const [k, v] of Object.entries(stored)) {
    if (['password', 'totpSecret', 'backupCodes'].includes(k)) continue;
    shown[k] = v instanceof Date ? v.toISOString() : v;
  }
  out(indent(JSON.stringify(shown, (k, v) => (v && v._bsontype === 'ObjectId' ? v.toString() : v), 2), '       '));
  check(stored.provider === 'custom-backend' && stored.idOnTheSource === 'u-1001',
    'linked to the backend by provider "custom-backend" + idOnTheSource "u-1001"');

  const session = await Session.findOne({ user: stored._id }).sort({ expiration: -1 }).lean();
  out('   sessions (Session.findOne({ user }).lean()):');
  out(`       _id:              ${session._id}`);
  out(`       user:             ${session.user}`);
  out(`       expiration:       ${session.expiration.toISOString()}`);
  out(`       refreshTokenHash: ${short(session.refreshTokenHash)}`);
  const cb = session.customBackend ?? {};
  out(`       customBackend:    { accessToken: ${short(cb.accessToken)}, refreshToken: ${short(cb.refreshToken)}` +
    `${cb.accessExpiresAt ? `, accessExpiresAt: ${new Date(cb.accessExpiresAt).toISOString()}` : ''} }`);
  check(session.refreshTokenHash === sha256(refreshCookie.value), 'refreshTokenHash is the SHA-256 of the refreshToken cookie (LibreChat\'s format)');
  check(typeof cb.refreshToken === 'string' && cb.refreshToken.startsWith('v2.'),
    'the backend refresh token is stored encrypted (AES-256-GCM, "v2." + nonce and ciphertext)');
  const sessionText = JSON.stringify(session);
  check(mock.issuedTokens().every((t) => !sessionText.includes(t)), 'no backend token appears in clear text in the session document');
  const found = await lc.methods.findSession({ refreshToken: refreshCookie.value });
  check(found && String(found._id) === String(session._id), 'LibreChat\'s own findSession({ refreshToken }) finds the session');

  /* 4 ------------------------------------------------------------------------------- wrong password */
  step('A wrong password');
  const usersBefore = await User.countDocuments();
  const sessionsBefore = await Session.countDocuments();
  const wrong = await call('POST', '/api/auth/login', { body: WRONG });
  expectStatus(wrong, 404, 'wrong password');
  out(`     ${JSON.stringify(wrong.json)}`);
  out('     (404 as LibreChat\'s own login answers a wrong password: a 401 would make the client try a refresh)');
  check(wrong.cookies.length === 0, 'no cookie is set');
  check(await User.countDocuments() === usersBefore && await Session.countDocuments() === sessionsBefore, 'nothing was written to the database');

  /* 5 ------------------------------------------------------------------------------- refresh, logout */
  let lastRefresh = refreshCookie.value;
  let lastToken = token;
  if (typeof pkg.customRefreshController === 'function') {
    step('Refresh the session with the refreshToken cookie');
    // Tokens carry their issue time in seconds: a refresh within the same second as the login
    // would sign the very same tokens. A browser refreshes minutes later; wait one second.
    await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
    const refreshed = await call('POST', '/api/auth/refresh', {
      cookies: { refreshToken: lastRefresh, token_provider: 'custom-backend' },
    });
    expectStatus(refreshed, 200, 'refresh');
    showCookies(refreshed.cookies);
    const rotated = refreshed.cookies.find((c) => c.name === 'refreshToken');
    out(`     token: ${tok(refreshed.json?.token)}  user: ${refreshed.json?.user?.id}`);
    check(typeof refreshed.json?.token === 'string' && refreshed.json.token !== token &&
      decodePayload(refreshed.json.token).id === user.id, 'a new access token for Alice');
    check(rotated && rotated.value && rotated.value !== lastRefresh, 'the refreshToken cookie is rotated');
    lastRefresh = rotated.value;
    lastToken = refreshed.json.token;
    const again = await call('GET', '/api/user', { token: lastToken });
    expectStatus(again, 200, 'GET /api/user with the refreshed token');
    check(again.json.id === user.id, 'the new access token works');
  } else {
    step('Refresh: skipped');
    out('     customRefreshController is not exported by this build of the package yet.');
  }

  if (typeof pkg.customLogoutController === 'function') {
    step('Log out, then try the refresh cookie again');
    const logout = await call('POST', '/api/auth/logout', {
      token: lastToken,
      cookies: { refreshToken: lastRefresh, token_provider: 'custom-backend' },
    });
    expectStatus(logout, 200, 'logout');
    out(`     ${JSON.stringify(logout.json ?? logout.text)}`);
    showCookies(logout.cookies);
    out(`     (the mock backend's logout endpoint was called ${mock.calls.logout} time(s))`);
    const stale = [...new Set([lastRefresh, refreshCookie.value])];
    for (const [i, cookie] of stale.entries()) {
      const after = await call('POST', '/api/auth/refresh', {
        cookies: { refreshToken: cookie, token_provider: 'custom-backend' },
      });
      out(`     ${JSON.stringify(after.json ?? after.text)}`);
      showCookies(after.cookies);
      if (typeof pkg.customRefreshController === 'function') {
        expectStatus(after, 401, 'refresh after logout');
        check(true, i === 0 ? 'the refresh cookie of the ended session is refused' : 'the login\'s original refresh cookie is refused too');
      } else {
        out('     (answered by the placeholder of the missing customRefreshController)');
      }
    }
    check(await Session.countDocuments({ _id: session._id }) === 0, 'the session document is deleted');
    // In the default session mode the access token is a stateless LibreChat JWT: it stays valid
    // until it expires (SESSION_EXPIRY). In BACKEND_SESSION_MODE=backend it is refused at once.
    const oldAccess = await call('GET', '/api/user', { token: lastToken });
    out(`     the old access token: ${oldAccess.status} (default mode: valid until its exp, ` +
      `${new Date(decodePayload(lastToken).exp * 1000).toISOString()}, SESSION_EXPIRY after it was issued; docs/logout-events-revocation.md, "Logout")`);
  } else {
    step('Logout: skipped');
    out('     customLogoutController is not exported by this build of the package yet.');
  }

  /* secrets ---------------------------------------------------------------------------------- */
  out();
  const secrets = [...PASSWORDS, ...mock.issuedTokens(), token, refreshCookie.value, lastToken, lastRefresh]
    .filter((s) => typeof s === 'string' && s.length >= 8);
  const leaked = logLines.filter((line) => secrets.some((s) => line.includes(s)));
  if (leaked.length) throw new DemoFailure(`a password or token appeared in ${leaked.length} log line(s)`);
  out(`   ✓ no password or token appeared in any of the ${logLines.length} log line(s) written`);
}

/* ------------------------------------------------------------------------------------ set-up */

async function main() {
  const cleanups = []; // run in reverse order
  const world = { logLines: [] };
  let failed = null;

  let stopping = null;
  const cleanup = () => {
    stopping ??= (async () => {
      for (const [what, fn] of cleanups.reverse()) {
        try {
          await fn();
          out(`   stopped ${what}`);
        } catch (e) {
          process.stderr.write(`demo: stopping ${what} failed: ${e.message}\n`);
          failed ??= e;
        }
      }
    })();
    return stopping;
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      process.stderr.write(`\ndemo: ${sig}, stopping...\n`);
      cleanup().finally(() => process.exit(130));
    });
  }

  try {
    out('librechat-custom-backend-auth demo');

    /* the package (the built addon must exist) */
    let pkg;
    try {
      pkg = require(REPO);
    } catch (e) {
      throw new DemoFailure(`cannot load the package (${e.message.split('\n')[0]}); build it first: npm run build`);
    }
    world.pkg = pkg;

    /* database */
    const { startTestDb } = require(path.join(REPO, 'scripts', 'test-db'));
    const { mongoUri } = require(path.join(REPO, '__test__', 'support', 'mongoUri'));
    let dbNote;
    if (process.env.MONGO_URI) {
      dbNote = 'from MONGO_URI';
    } else {
      const db = await startTestDb({ log: (m) => out(`   [test-db] ${m}`) });
      cleanups.push([`the test database (pid ${db.pid}, waited for)`, () => db.stop()]);
      process.env.MONGO_URI = db.uri;
      dbNote = `secantusdb, in memory, pid ${db.pid}`;
    }
    const MONGO_URI = mongoUri(DEMO_DB);

    /* mock backend */
    const { startMockBackend } = require(path.join(REPO, '__test__', 'support', 'mockBackend'));
    const mock = await startMockBackend();
    cleanups.push(['the mock backend', () => mock.close()]);
    world.mock = mock;

    /* configuration: what an operator puts in LibreChat's .env */
    const vars = {
      USE_CUSTOM_BACKEND_AUTH: 'true',
      BACKEND_AUTH_URL: mock.urls.login,
      BACKEND_USER_INFO_URL: mock.urls.userinfo,
      BACKEND_REFRESH_URL: mock.urls.refresh,
      // Optional (builds that do not know it ignore it): end the backend session on logout too.
      BACKEND_LOGOUT_URL: mock.urls.logout,
      JWT_SECRET: crypto.randomBytes(32).toString('hex'),
      JWT_REFRESH_SECRET: crypto.randomBytes(32).toString('hex'),
      BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
      MONGO_URI,
    };
    // LibreChat's own code (its stock jwt strategy, the wiring's switch) reads process.env.
    Object.assign(process.env, vars);
    const logger = demoLogger(world.logLines);
    const service = pkg.configureCustomBackendAuth({ ...vars, logger });
    cleanups.push(['the auth service', () => service.close()]);

    /* the LibreChat-shaped app */
    const express = require('express');
    const { createLibreChatApp } = require(path.join(REPO, '__test__', 'support', 'librechat', 'server'));
    const lc = await createLibreChatApp({ express, mongoUri: MONGO_URI, logger });
    cleanups.push(['the LibreChat app\'s database connection', () => lc.close()]);
    world.lc = lc;
    // Our own demo database: start empty, so the first login is the first user; on a server of
    // the operator's (MONGO_URI), leave nothing behind.
    await lc.connection.db.dropDatabase();
    if (dbNote === 'from MONGO_URI') {
      cleanups.push([`the demo database ${DEMO_DB} (dropped)`, () => lc.connection.db.dropDatabase()]);
    }
    for (const name of ['User', 'Session', 'Balance']) await lc.models[name].init().catch(() => {});

    const server = await new Promise((resolve, reject) => {
      const s = lc.app.listen(0, '127.0.0.1');
      s.once('listening', () => resolve(s));
      s.once('error', reject);
    });
    cleanups.push(['the HTTP server', () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    })]);
    const baseUrl = `http://127.0.0.1:${server.address().port}`;
    world.call = makeClient(baseUrl);

    out(`   database   ${MONGO_URI.replace(/\/\/[^@/]*@/, '//***@')} (${dbNote})`);
    out(`   backend    mock identity backend at ${mock.url} (users: ${mock.users.map((u) => u.username).join(', ')})`);
    out(`   LibreChat  Express ${require('express/package.json').version} app at ${baseUrl}; ` +
      'wired as docs/install.md, "Wiring" (the API guarded by customJwtStrategy())');

    await walk(world);
  } catch (e) {
    failed = e;
  } finally {
    out();
    out('Stopping...');
    await cleanup();
  }

  if (failed) {
    const msg = failed instanceof DemoFailure ? failed.message : (failed.stack || failed.message);
    process.stderr.write(`\ndemo FAILED: ${msg}\n`);
    process.exitCode = 1;
  } else {
    out('Done: every step answered as expected.');
    process.exitCode = 0;
  }
  // A handle left open would keep the process alive; say so instead of hanging.
  setTimeout(() => {
    process.stderr.write('demo: something still holds the event loop after shutdown; exiting anyway\n');
    process.exit(process.exitCode || 1);
  }, 5000).unref();
}

main();
