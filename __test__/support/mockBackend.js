'use strict';

/**
 * A mock identity backend: a real HTTP server on 127.0.0.1 (random port), node `http` only.
 *
 *   const { startMockBackend } = require('./support/mockBackend');
 *   const mock = await startMockBackend();            // options below
 *   mock.urls.login                                   // http://127.0.0.1:PORT/api/auth/login
 *   mock.set({ latencyMs: 50, login: { status: 503 } });
 *   mock.calls.login                                  // requests seen (counted before switches)
 *   mock.inFlight.login                               // requests seen and not answered yet (hanging included)
 *   mock.answerHanging(503)                           // answers every hanging request with that status
 *   mock.reset();                                     // switches, counts, requests; reset({tokens:true}) too
 *   await mock.close();                               // also destroys hanging sockets
 *
 * Endpoints (paths from options.paths):
 *   POST login    {username, password}   -> {token, refreshToken, expiresIn, user, session_id}
 *   GET  userinfo Authorization: Bearer   -> {user} (or the bare user with userShape 'bare')
 *   POST refresh  {refreshToken}          -> {token, refreshToken, expiresIn}; rotation, reuse detection
 *   POST logout   {refreshToken} / Bearer -> {ok: true}; revokes what was given
 *   GET  jwks                             -> {keys: [...]} public keys as JWK
 *   POST introspection (RFC 7662) form token=…, HTTP Basic client id:secret (RFC 6749 2.3.1
 *        encoding; options.introspectionClient, default a random secret) -> {active: true, sub,
 *        exp, iat, scope, aud, iss, username, email, name, roles, token_type} for a live token it
 *        issued (refresh tokens: token_type 'refresh_token'), {active: false} for anything else;
 *        401 invalid_client for wrong client credentials, 400 for a body without a token
 *
 * mock.peakInFlight[name] is the most requests of an endpoint being handled at once (reset()).
 *
 * Switch beforeSend (async ({name, body, status, answer}) => {}) runs between an endpoint's work and
 * its answer; switch decide (({name, body, headers}) => {status} | {hang: true} | undefined) answers
 * one request by what it carries, before any other switch. Options: host, port, paths, users, issuer (default: base URL), audience ('librechat'),
 * refreshTtlSec (30 days), and any switch (as default for reset()) either at top level or
 * under `switches`.
 */

const http = require('http');
const crypto = require('crypto');

const ENDPOINTS = ['login', 'userinfo', 'refresh', 'logout', 'jwks', 'introspection', 'mfa'];

const DEFAULT_PATHS = {
  login: '/api/auth/login',
  userinfo: '/api/auth/userinfo',
  refresh: '/api/auth/refresh',
  logout: '/api/auth/logout',
  jwks: '/.well-known/jwks.json',
  introspection: '/oauth/introspect',
  mfa: '/api/auth/mfa/verify',
};

const METHODS = { login: 'POST', userinfo: 'GET', refresh: 'POST', logout: 'POST', jwks: 'GET', introspection: 'POST', mfa: 'POST' };

const DEFAULT_SWITCHES = Object.freeze({
  latencyMs: 0,
  mfaStatus: null, // login: the status of an answer asking for the second factor (default 200)
  status: null, // answer this status at once, with `body` (default { message: 'forced error' }) and `headers`
  body: null,
  headers: null,
  hang: false,
  malformed: false,
  noToken: false,
  noUserInLogin: false,
  noSessionId: false,
  fieldStyle: 'camel', // 'camel' | 'snake'
  userShape: 'wrapped', // 'wrapped' | 'bare'
  userFields: null, // (user) => object
  rotateRefresh: true,
  omitRefreshToken: false, // refresh answers carry no refresh token (the old one stays valid)
  revokeFamilyOnReuse: true,
  jwtTokens: false, // false | 'RS256' | 'ES256' | 'EdDSA'
  accessTtlSec: 3600,
  loginUsernameField: 'username', // the body field login reads the username from
  introspectionScope: 'openid profile email chat', // `scope` of an active introspection answer
  // (answer, { token }) => object: what introspection answers instead (drop `active`, change aud…)
  introspectionAnswer: null,
  // async ({ name, body, status, answer }) => {}: awaited after the endpoint did its work (tokens
  // minted, rotated, revoked) and before its answer is sent: the test acts in between (breaks the
  // database, logs out, ...). `answer` is the parsed JSON answer.
  beforeSend: null,
  // ({ name, body, headers }) => undefined | { status } | { hang: true }: decides one request before
  // any other switch, by what it carries (a user name the backend is slow for, a token it fails on).
  decide: null,
});

const DEFAULT_USERS = [
  { id: 'u-1001', username: 'Alice', password: 'alice-password-1', email: 'Alice@Example.com', name: 'Alice Liddell', roles: ['staff'] },
  { id: 'u-1002', username: 'bob', password: 'bob-password-2', email: 'bob@example.com', name: 'Bob Builder', roles: ['admin', 'staff'] },
  { id: 'u-1003', username: 'carol', password: 'carol-password-3', email: 'carol@example.org', name: 'Carol', roles: [] },
];

const BODY_LIMIT = 1024 * 1024;
const JWT_ALGS = {
  RS256: { type: 'rsa', opts: { modulusLength: 2048 }, hash: 'sha256', dsaEncoding: undefined },
  ES256: { type: 'ec', opts: { namedCurve: 'P-256' }, hash: 'sha256', dsaEncoding: 'ieee-p1363' },
  EdDSA: { type: 'ed25519', opts: {}, hash: null, dsaEncoding: undefined },
};

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const b64urlJson = (obj) => b64url(JSON.stringify(obj));
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const randomToken = (prefix) => `${prefix}${crypto.randomBytes(24).toString('hex')}`;
const nowSec = () => Math.floor(Date.now() / 1000);

function splitSwitches(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) {
    if (k in DEFAULT_SWITCHES || ENDPOINTS.includes(k)) out[k] = v;
  }
  return out;
}

function mergeSwitches(target, patch) {
  for (const [k, v] of Object.entries(patch || {})) {
    if (ENDPOINTS.includes(k)) {
      if (v === null || v === undefined) delete target[k];
      else target[k] = { ...(target[k] || {}), ...v };
    } else if (k in DEFAULT_SWITCHES) {
      target[k] = v;
    } else {
      throw new Error(`mockBackend: unknown switch ${JSON.stringify(k)}`);
    }
  }
  return target;
}

/**
 * @param {object} [options]
 * @returns {Promise<object>} the mock (see the file header)
 */
async function startMockBackend(options = {}) {
  const host = options.host || '127.0.0.1';
  const paths = { ...DEFAULT_PATHS, ...(options.paths || {}) };
  const byPath = new Map(ENDPOINTS.map((name) => [paths[name], name]));
  const audience = options.audience || 'librechat';
  const refreshTtlSec = options.refreshTtlSec || 30 * 24 * 3600;
  const initialUsers = clone(options.users || DEFAULT_USERS);
  // Characters that RFC 6749 2.3.1's form encoding must escape, so a client that skips it fails.
  const introspectionClient = {
    id: 'librechat app',
    secret: `isecret:${crypto.randomBytes(12).toString('hex')}+/%&`,
    ...(options.introspectionClient || {}),
  };
  const defaultSwitches = mergeSwitches({ ...DEFAULT_SWITCHES },
    { ...splitSwitches(options), ...(options.switches || {}) });

  const sockets = new Set();
  const timers = new Set();
  let closed = false;

  // Token state. Every login starts a family; refresh keeps the family.
  const access = new Map(); // token -> { userId, exp (ms), family, revoked, jti }
  const refresh = new Map(); // token -> { userId, exp, family, revoked, rotated }
  const families = new Map(); // id -> { userId, revoked }
  // The second factor: a user with `mfaCode` (and optionally `backupCodes`) is answered
  // `{mfaRequired, challengeId}` at login; `POST mfa {challengeId, code, backup}` finishes it.
  const challenges = new Map(); // challengeId -> { userId, used }
  const keys = []; // { kid, alg, privateKey, publicKey, published }

  const mock = {
    url: '',
    urls: {},
    paths,
    issuer: options.issuer || '',
    audience,
    calls: Object.fromEntries(ENDPOINTS.map((n) => [n, 0])),
    inFlight: Object.fromEntries(ENDPOINTS.map((n) => [n, 0])),
    peakInFlight: Object.fromEntries(ENDPOINTS.map((n) => [n, 0])),
    introspectionClient,
    requests: [],
    lastLogout: undefined,
    reuseDetected: 0,
    users: clone(initialUsers),
    switches: mergeSwitches({}, defaultSwitches),
  };

  /* ---------------------------------------------------------------- switches */

  mock.set = (patch) => {
    mergeSwitches(mock.switches, patch);
    if (mock.switches.jwtTokens) currentKey(mock.switches.jwtTokens);
    return mock;
  };

  mock.reset = ({ tokens = false, users = false, keys: resetKeys = false } = {}) => {
    mock.switches = mergeSwitches({}, defaultSwitches);
    for (const n of ENDPOINTS) mock.calls[n] = 0;
    for (const n of ENDPOINTS) mock.peakInFlight[n] = 0;
    mock.requests.length = 0;
    mock.lastLogout = undefined;
    mock.reuseDetected = 0;
    if (tokens) {
      access.clear();
      refresh.clear();
      families.clear();
    }
    if (users) mock.users.splice(0, mock.users.length, ...clone(initialUsers));
    if (resetKeys) keys.length = 0;
    if (mock.switches.jwtTokens) currentKey(mock.switches.jwtTokens);
    return mock;
  };

  // Requests kept open by the `hang` switch, until answerHanging() or close().
  const hanging = new Set();
  mock.answerHanging = (status = 503) => {
    for (const res of hanging) if (!res.destroyed && !res.writableEnded) send(res, status, { message: 'forced error' });
    hanging.clear();
  };

  function sw(name, key) {
    const per = mock.switches[name];
    if (per && Object.prototype.hasOwnProperty.call(per, key) && per[key] !== undefined) return per[key];
    return mock.switches[key];
  }

  /* ---------------------------------------------------------------- users */

  const findUser = (id) => mock.users.find((u) => u.id === id);

  mock.addUser = (user) => {
    if (!user || typeof user.id !== 'string') throw new Error('addUser: user.id (string) is required');
    if (findUser(user.id)) throw new Error(`addUser: user ${user.id} exists`);
    const u = clone(user);
    mock.users.push(u);
    return u;
  };

  mock.updateUser = (id, patch) => {
    const u = findUser(id);
    if (!u) throw new Error(`updateUser: no user ${id}`);
    Object.assign(u, clone(patch));
    return u;
  };

  mock.removeUser = (id) => {
    const i = mock.users.findIndex((u) => u.id === id);
    if (i >= 0) mock.users.splice(i, 1);
    return i >= 0;
  };

  function publicUser(name, u) {
    const { password, mfaCode, backupCodes, ...rest } = u; // eslint-disable-line no-unused-vars
    const fn = sw(name, 'userFields');
    return typeof fn === 'function' ? fn(clone(rest)) : clone(rest);
  }

  /* ---------------------------------------------------------------- keys and JWTs */

  function newKey(alg = 'RS256', kid) {
    const spec = JWT_ALGS[alg];
    if (!spec) throw new Error(`mockBackend: unsupported JWT alg ${alg}`);
    const { privateKey, publicKey } = crypto.generateKeyPairSync(spec.type, spec.opts);
    const k = { kid: kid || `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`, alg, privateKey, publicKey };
    k.jwk = { ...publicKey.export({ format: 'jwk' }), kid: k.kid, alg, use: 'sig' };
    return k;
  }

  function currentKey(alg) {
    for (let i = keys.length - 1; i >= 0; i--) if (keys[i].alg === alg && keys[i].published) return keys[i];
    const k = { ...newKey(alg), published: true };
    keys.push(k);
    return k;
  }

  /**
   * The published key that signs `alg` now, as { kid, alg, privateKeyPem }: for a process of its
   * own (bench/probe.js) that mints many tokens the mock's JWKS verifies, without this process.
   */
  mock.signingKey = (alg = 'RS256') => {
    const k = currentKey(alg);
    return { kid: k.kid, alg, privateKeyPem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) };
  };

  /** A key pair that is NOT published (for forging): { kid, alg, privateKey, publicKey, jwk }. */
  mock.newKey = (alg = 'RS256', kid) => newKey(alg, kid);

  /** Publishes a new key for `alg` (default: the jwtTokens alg, else RS256); it signs from now on. */
  mock.rotateKeys = ({ alg, dropOld = false } = {}) => {
    const a = alg || mock.switches.jwtTokens || 'RS256';
    if (dropOld) for (const k of keys) if (k.alg === a) k.published = false;
    const k = { ...newKey(a), published: true };
    keys.push(k);
    return k.kid;
  };

  mock.jwks = () => ({ keys: keys.filter((k) => k.published).map((k) => ({ ...k.jwk })) });

  /**
   * Signs `claims` as a compact JWS. opts: alg (default jwtTokens or RS256), key (KeyObject or
   * PEM private key; default the current published key of alg), kid, header (extra/override fields).
   */
  mock.signJwt = (claims, opts = {}) => {
    const alg = opts.alg || mock.switches.jwtTokens || 'RS256';
    let key;
    let kid = opts.kid;
    if (opts.key) {
      key = typeof opts.key === 'string' || Buffer.isBuffer(opts.key) ? crypto.createPrivateKey(opts.key) : opts.key;
      if (key.privateKey) key = key.privateKey; // a newKey() result
      if (kid === undefined) kid = opts.key.kid || 'forged';
    } else {
      const k = currentKey(alg);
      key = k.privateKey;
      if (kid === undefined) kid = k.kid;
    }
    const header = { alg, typ: 'JWT', ...(kid !== null ? { kid } : {}), ...(opts.header || {}) };
    const data = `${b64urlJson(header)}.${b64urlJson(claims)}`;
    const spec = JWT_ALGS[alg];
    if (!spec) throw new Error(`signJwt: unsupported alg ${alg}`);
    const sig = crypto.sign(spec.hash, Buffer.from(data), spec.dsaEncoding ? { key, dsaEncoding: spec.dsaEncoding } : key);
    return `${data}.${b64url(sig)}`;
  };

  /** Verifies a JWT against the published keys; returns its claims or null (bad, unknown kid, expired). */
  mock.verifyJwt = (token) => {
    const parts = String(token).split('.');
    if (parts.length !== 3) return null;
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const spec = JWT_ALGS[header.alg];
    if (!spec) return null;
    const candidates = keys.filter((k) => k.published && k.alg === header.alg && (!header.kid || k.kid === header.kid));
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const sig = Buffer.from(parts[2], 'base64url');
    const ok = candidates.some((k) =>
      crypto.verify(spec.hash, data, spec.dsaEncoding ? { key: k.publicKey, dsaEncoding: spec.dsaEncoding } : k.publicKey, sig));
    if (!ok) return null;
    if (typeof claims.exp === 'number' && claims.exp <= nowSec()) return null;
    return claims;
  };

  /* ---------------------------------------------------------------- tokens */

  function newFamily(userId) {
    const id = crypto.randomBytes(8).toString('hex');
    families.set(id, { userId, revoked: false });
    return id;
  }

  function mintAccess(userId, family, ttlSec) {
    const ttl = ttlSec ?? sw('login', 'accessTtlSec');
    const exp = Date.now() + ttl * 1000;
    const alg = mock.switches.jwtTokens;
    let token;
    const jti = crypto.randomBytes(12).toString('hex');
    if (alg) {
      const u = findUser(userId) || { id: userId };
      const iat = nowSec();
      token = mock.signJwt({
        sub: u.id, iss: mock.issuer, aud: audience, email: u.email, name: u.name,
        preferred_username: u.username, roles: u.roles || [], iat, exp: iat + ttl, jti,
      }, { alg });
    } else {
      token = randomToken('at_');
    }
    access.set(token, { userId, exp, family, revoked: false, jti });
    return { token, expiresIn: ttl };
  }

  function mintRefresh(userId, family) {
    const token = randomToken('rt_');
    refresh.set(token, { userId, exp: Date.now() + refreshTtlSec * 1000, family, revoked: false, rotated: false });
    return token;
  }

  /** Mints an access token for a user without a login (own family, no refresh token). */
  mock.issueAccessToken = (userId, { ttlSec } = {}) => mintAccess(userId, newFamily(userId), ttlSec).token;

  /** Mints access + refresh tokens as a login would: { token, refreshToken, expiresIn }. */
  mock.issueTokens = (userId, { ttlSec } = {}) => {
    const family = newFamily(userId);
    const a = mintAccess(userId, family, ttlSec);
    return { token: a.token, refreshToken: mintRefresh(userId, family), expiresIn: a.expiresIn };
  };

  /** Revokes every token of a user. */
  mock.revokeUser = (userId) => {
    for (const f of families.values()) if (f.userId === userId) f.revoked = true;
    for (const m of [access, refresh]) for (const rec of m.values()) if (rec.userId === userId) rec.revoked = true;
  };

  /** Revokes one token (access or refresh). */
  mock.revokeToken = (token) => {
    const rec = access.get(token) || refresh.get(token);
    if (rec) rec.revoked = true;
    return !!rec;
  };

  /** Makes a token (access or refresh) expired now. */
  mock.expire = (token) => {
    const rec = access.get(token) || refresh.get(token);
    if (rec) rec.exp = Date.now() - 1000;
    return !!rec;
  };

  function revokeFamily(family) {
    const f = families.get(family);
    if (f) f.revoked = true;
    for (const m of [access, refresh]) for (const rec of m.values()) if (rec.family === family) rec.revoked = true;
  }

  const familyRevoked = (rec) => rec.family && families.get(rec.family)?.revoked;

  /** The user of a valid access token (opaque or JWT), or null. */
  mock.userForAccessToken = (token) => {
    const rec = access.get(token);
    if (rec) {
      if (rec.revoked || familyRevoked(rec) || rec.exp <= Date.now()) return null;
      return findUser(rec.userId) || null;
    }
    const claims = mock.verifyJwt(token); // a token forged with signJwt and a published key
    if (!claims || typeof claims.exp !== 'number' || typeof claims.sub !== 'string') return null;
    return findUser(claims.sub) || null;
  };

  mock.tokenInfo = (token) => clone(access.get(token) || refresh.get(token)) || null;

  /** Every access and refresh token ever issued (for "no secret in the logs" checks). */
  mock.issuedTokens = () => [...access.keys(), ...refresh.keys()];

  /* ---------------------------------------------------------------- HTTP */

  function send(res, status, body, extraHeaders = {}) {
    if (res.destroyed || res.writableEnded) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      ...extraHeaders,
    });
    res.end(text);
  }

  function tokenFields(name, { token, refreshToken, expiresIn }) {
    const snake = sw(name, 'fieldStyle') === 'snake';
    const out = {};
    if (!sw(name, 'noToken')) out[snake ? 'access_token' : 'token'] = token;
    if (refreshToken !== undefined) out[snake ? 'refresh_token' : 'refreshToken'] = refreshToken;
    out[snake ? 'expires_in' : 'expiresIn'] = expiresIn;
    return out;
  }

  const bearer = (req) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
    return m ? m[1] : null;
  };

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  /** `Authorization: Basic` as RFC 6749 2.3.1 has it: { id, secret } form-decoded, or null. */
  const basicClient = (req) => {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization || '');
    if (!m) return null;
    const pair = Buffer.from(m[1], 'base64').toString('utf8');
    const i = pair.indexOf(':');
    if (i < 0) return null;
    const formDecode = (v) => {
      try {
        return decodeURIComponent(v.replace(/\+/g, ' '));
      } catch {
        return null;
      }
    };
    return { id: formDecode(pair.slice(0, i)), secret: formDecode(pair.slice(i + 1)) };
  };

  function activeAnswer(u, expSec, tokenType) {
    return {
      ...publicUser('introspection', u),
      active: true,
      sub: u.id,
      client_id: 'librechat-web',
      token_type: tokenType,
      scope: sw('introspection', 'introspectionScope'),
      aud: audience,
      iss: mock.issuer,
      iat: nowSec(),
      exp: expSec,
    };
  }

  /** RFC 7662 section 2.2 for any token: active only for a live token this mock issued. */
  mock.introspect = (token) => {
    const inactive = { active: false };
    const rec = access.get(token) || refresh.get(token);
    if (rec) {
      const u = findUser(rec.userId);
      if (rec.revoked || familyRevoked(rec) || rec.exp <= Date.now() || !u) return inactive;
      const isRefresh = refresh.has(token);
      return activeAnswer(u, Math.floor(rec.exp / 1000), isRefresh ? 'refresh_token' : 'Bearer');
    }
    const claims = mock.verifyJwt(token);
    const u = claims && typeof claims.exp === 'number' && typeof claims.sub === 'string' && findUser(claims.sub);
    return u ? activeAnswer(u, claims.exp, 'Bearer') : inactive;
  };

  const handlers = {
    login(req, res, body) {
      const field = sw('login', 'loginUsernameField');
      if (!isObject(body) || typeof body[field] !== 'string' || typeof body.password !== 'string' ||
        !body[field] || !body.password) {
        return send(res, 400, { message: `${field} and password are required` });
      }
      const login = body[field].toLowerCase();
      const u = mock.users.find((x) =>
        (typeof x.username === 'string' && x.username.toLowerCase() === login) ||
        (typeof x.email === 'string' && x.email.toLowerCase() === login));
      if (!u || u.password !== body.password) return send(res, 401, { message: 'Invalid credentials' });
      if (typeof u.mfaCode === 'string') {
        const challengeId = randomToken('ch_');
        challenges.set(challengeId, { userId: u.id, used: false });
        mock.lastChallenge = challengeId;
        return send(res, sw('login', 'mfaStatus') ?? 200, { mfaRequired: true, challengeId, methods: ['totp'] });
      }
      return send(res, 200, loginAnswer(u));
    },

    mfa(req, res, body) {
      const c = isObject(body) && typeof body.challengeId === 'string' ? challenges.get(body.challengeId) : undefined;
      mock.lastMfa = isObject(body) ? { ...body } : body;
      if (!c || c.used) return send(res, 404, { message: 'No such challenge' });
      const u = findUser(c.userId);
      const code = isObject(body) ? body.code : undefined;
      const backups = Array.isArray(u?.backupCodes) ? u.backupCodes : [];
      const right = body.backup === true ? backups.includes(code) : code === u?.mfaCode;
      if (!u || !right) return send(res, 401, { message: 'Wrong code' });
      if (body.backup === true) u.backupCodes = backups.filter((b) => b !== code);
      c.used = true;
      return send(res, 200, loginAnswer(u));
    },
  };

  /** A login answer (tokens, the user, the backend's session id) for `u`. */
  function loginAnswer(u) {
    const family = newFamily(u.id);
    const a = mintAccess(u.id, family);
    const out = tokenFields('login', { token: a.token, refreshToken: mintRefresh(u.id, family), expiresIn: a.expiresIn });
    if (!sw('login', 'noUserInLogin')) out.user = publicUser('login', u);
    // The backend's session: `session.revoked` events name it.
    if (!sw('login', 'noSessionId')) out.session_id = family;
    mock.lastSessionId = family;
    return out;
  }

  Object.assign(handlers, {

    userinfo(req, res) {
      const t = bearer(req);
      const u = t && mock.userForAccessToken(t);
      if (!u) return send(res, 401, { message: 'Invalid or expired token' });
      const pu = publicUser('userinfo', u);
      return send(res, 200, sw('userinfo', 'userShape') === 'bare' ? pu : { user: pu });
    },

    refresh(req, res, body) {
      if (!isObject(body)) return send(res, 400, { message: 'refreshToken is required' });
      const t = body.refreshToken ?? body.refresh_token;
      if (typeof t !== 'string' || !t) return send(res, 400, { message: 'refreshToken is required' });
      const rec = refresh.get(t);
      if (!rec || rec.revoked || familyRevoked(rec) || rec.exp <= Date.now()) {
        return send(res, 401, { message: 'Invalid refresh token' });
      }
      if (rec.rotated) {
        mock.reuseDetected += 1;
        if (sw('refresh', 'revokeFamilyOnReuse')) revokeFamily(rec.family);
        return send(res, 401, { message: 'Refresh token reuse detected' });
      }
      if (!findUser(rec.userId)) return send(res, 401, { message: 'Invalid refresh token' });
      const a = mintAccess(rec.userId, rec.family, sw('refresh', 'accessTtlSec'));
      let next = t;
      if (sw('refresh', 'rotateRefresh')) {
        rec.rotated = true;
        next = mintRefresh(rec.userId, rec.family);
      }
      const refreshToken = sw('refresh', 'omitRefreshToken') ? undefined : next;
      return send(res, 200, tokenFields('refresh', { token: a.token, refreshToken, expiresIn: a.expiresIn }));
    },

    logout(req, res, body) {
      mock.lastLogout = body;
      const t = isObject(body) ? body.refreshToken ?? body.refresh_token : undefined;
      if (typeof t === 'string' && refresh.has(t)) refresh.get(t).revoked = true;
      const b = bearer(req);
      if (b && access.has(b)) access.get(b).revoked = true;
      return send(res, 200, { ok: true });
    },

    introspection(req, res, body) {
      const c = basicClient(req);
      if (!c || c.id !== introspectionClient.id || c.secret !== introspectionClient.secret) {
        return send(res, 401, { error: 'invalid_client' }, { 'WWW-Authenticate': 'Basic realm="introspection"' });
      }
      if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] || '') ||
        !isObject(body) || typeof body.token !== 'string' || !body.token) {
        return send(res, 400, { error: 'invalid_request' });
      }
      let answer = mock.introspect(body.token);
      const fn = sw('introspection', 'introspectionAnswer');
      if (typeof fn === 'function') answer = fn(clone(answer), { token: body.token });
      return send(res, 200, answer);
    },

    jwks(req, res) {
      if (mock.switches.jwtTokens) currentKey(mock.switches.jwtTokens);
      return send(res, 200, mock.jwks());
    },
  });

  function readBody(req) {
    return new Promise((resolve) => {
      const declared = Number(req.headers['content-length']);
      if (declared > BODY_LIMIT) return resolve({ tooLarge: true });
      const chunks = [];
      let size = 0;
      let done = false;
      req.on('data', (c) => {
        if (done) return;
        size += c.length;
        if (size > BODY_LIMIT) {
          done = true;
          resolve({ tooLarge: true });
        } else {
          chunks.push(c);
        }
      });
      req.on('end', () => {
        if (!done) resolve({ raw: Buffer.concat(chunks).toString('utf8') });
        done = true;
      });
      req.on('error', () => {
        if (!done) resolve({ aborted: true });
        done = true;
      });
    });
  }

  const delay = (ms) => new Promise((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, ms);
    timers.add(t);
  });

  async function handle(req, res) {
    const { pathname } = new URL(req.url, 'http://x');
    const name = byPath.get(pathname);
    if (!name) return send(res, 404, { message: 'Not found' });
    mock.calls[name] += 1;
    mock.inFlight[name] += 1;
    mock.peakInFlight[name] = Math.max(mock.peakInFlight[name], mock.inFlight[name]);
    res.once('close', () => {
      mock.inFlight[name] -= 1;
    });

    const { raw, tooLarge, aborted } = await readBody(req);
    if (aborted) return undefined;
    let body;
    let bodyError = false;
    if (raw && name === 'introspection') {
      body = Object.fromEntries(new URLSearchParams(raw)); // RFC 7662: a form, not JSON
    } else if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        bodyError = true;
      }
    }
    mock.requests.push({
      name, method: req.method, path: req.url, headers: { ...req.headers }, body, rawBody: raw ?? null,
    });

    const latency = sw(name, 'latencyMs');
    if (latency > 0) await delay(latency);
    if (closed) return undefined;
    const decided = typeof sw(name, 'decide') === 'function' ? sw(name, 'decide')({ name, body, headers: req.headers }) : undefined;
    if (decided?.status) return send(res, decided.status, { message: 'forced error' });
    if (sw(name, 'hang') || decided?.hang) {
      hanging.add(res); // keep the socket open; answerHanging() answers it, close() destroys it
      return undefined;
    }
    const status = sw(name, 'status');
    if (status) return send(res, status, sw(name, 'body') ?? { message: 'forced error' }, sw(name, 'headers') ?? undefined);
    if (sw(name, 'malformed')) return send(res, 200, '{"token": "abc"');

    if (tooLarge) {
      req.resume();
      return send(res, 413, { message: 'Request body too large' }, { Connection: 'close' });
    }
    if (req.method !== METHODS[name]) return send(res, 405, { message: 'Method not allowed' }, { Allow: METHODS[name] });
    if (bodyError || (body === undefined && (name === 'login' || name === 'refresh'))) {
      return send(res, 400, { message: 'Body must be JSON' });
    }
    const hook = sw(name, 'beforeSend');
    if (typeof hook !== 'function') return handlers[name](req, res, body);
    // Let the handler answer into a holder, run the hook, then send what it answered.
    const held = { destroyed: false, writableEnded: false, headers: {}, text: '' };
    held.writeHead = (status, headers) => Object.assign(held, { status, headers });
    held.end = (text) => Object.assign(held, { text, writableEnded: true });
    handlers[name](req, held, body);
    let answer;
    try {
      answer = JSON.parse(held.text);
    } catch {
      answer = undefined;
    }
    await hook({ name, body, status: held.status, answer });
    if (closed || res.destroyed || res.writableEnded) return undefined;
    res.writeHead(held.status, held.headers);
    return res.end(held.text);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { message: `mock error: ${e.message}` }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 5000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port || 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  mock.port = port;
  mock.url = `http://${host}:${port}`;
  mock.urls = Object.fromEntries(ENDPOINTS.map((n) => [n, mock.url + paths[n]]));
  if (!mock.issuer) mock.issuer = mock.url;
  mock.server = server;
  if (mock.switches.jwtTokens) currentKey(mock.switches.jwtTokens);

  let closing;
  mock.close = () => {
    if (closing) return closing;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    closing = new Promise((resolve) => {
      server.close(() => resolve());
      if (server.closeAllConnections) server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
    return closing;
  };

  return mock;
}

module.exports = { startMockBackend, DEFAULT_USERS, DEFAULT_PATHS, DEFAULT_SWITCHES };
