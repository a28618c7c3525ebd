'use strict';

// The authentication service: the native client (binding.js, generated) with JS-side input bounds,
// error mapping and per-request copies of cached users; and the one shared instance the wiring uses.

const { EJSON } = require('bson');
const native = require('../binding');
const { CustomBackendAuthError, toAuthError } = require('./errors');
const { Auditor, AUDIT_EVENTS } = require('./audit');
const { RepeatedLines } = require('./repeatedLines');

/** Bounds of the login form fields, in characters (the same as the native check's). */
const MAX_USERNAME_CHARS = 256;
const MAX_PASSWORD_CHARS = 1024;

/** Whether `s` has more than `max` characters (code points), without walking a long string. */
function longerThan(s, max) {
  if (s.length <= max) return false;
  if (s.length > 2 * max) return true;
  let n = 0;
  for (const _ of s) if (++n > max) return true; // eslint-disable-line no-unused-vars
  return false;
}

/**
 * The login fields, checked here before anything crosses into the native addon: only strings of
 * bounded length cross (an array or a deep object in the body would otherwise be converted on the
 * main thread). `email` (LibreChat's form name) wins over `username`; null counts as absent.
 * Throws BAD_REQUEST (400). Emptiness and the exact bounds are checked again natively.
 */
function loginCredentials(credentials) {
  const c = credentials !== null && typeof credentials === 'object' ? credentials : {};
  const present = (v) => v !== undefined && v !== null;
  const bad = (message) => new CustomBackendAuthError('BAD_REQUEST', message);
  const key = present(c.email) ? 'email' : 'username';
  const name = c[key];
  if (!present(name)) throw bad('Username or email is required.');
  if (typeof name !== 'string') throw bad('Username or email must be a string.');
  if (longerThan(name.length > MAX_USERNAME_CHARS ? name.trim() : name, MAX_USERNAME_CHARS)) {
    throw bad(`Username or email must be at most ${MAX_USERNAME_CHARS} characters.`);
  }
  const { password } = c;
  if (!present(password)) throw bad('Password is required.');
  if (typeof password !== 'string') throw bad('Password must be a string.');
  if (longerThan(password, MAX_PASSWORD_CHARS)) {
    throw bad(`Password must be at most ${MAX_PASSWORD_CHARS} characters.`);
  }
  return { [key]: name, password };
}


function defaultLogger() {
  try {
    // LibreChat's own winston logger when the package runs inside LibreChat's api/.
    const { logger } = require('@librechat/data-schemas');
    if (logger && typeof logger.warn === 'function') return logger;
  } catch {
    // not inside LibreChat
  }
  return console;
}

/**
 * The native snapshot as the JS API gives it out:
 * `{ outcomes: { login: { ok, CODE… }, refresh, logout, bearer }, backendCalls: [{ endpoint, outcome,
 * count, sumSeconds, buckets: [{ le, count }] }], bucketBoundsSeconds, cache: { user: { hits, misses },
 * backend_token }, singleFlightJoins: { backend_token, backend_user, jwks }, refreshLeaseWaits, ssoUntrustedHeaders, backendCallsInFlight,
 * backendBreakers: [{ host, lane, state (0 closed, 1 half-open, 2 open), openings }] }`.
 */
function shapeSnapshot(raw) {
  const outcomes = { login: {}, refresh: {}, logout: {}, bearer: {} };
  for (const o of raw.outcomes) outcomes[o.flow][o.code] = o.count;
  const bounds = raw.bucketBoundsSeconds;
  return {
    outcomes,
    backendCalls: raw.backendCalls.map((c) => ({
      endpoint: c.endpoint,
      outcome: c.outcome,
      count: c.count,
      sumSeconds: c.sumSeconds,
      buckets: c.buckets.map((count, i) => ({ le: bounds[i], count })),
    })),
    bucketBoundsSeconds: bounds,
    cache: Object.fromEntries(raw.caches.map((c) => [c.cache, { hits: c.hits, misses: c.misses }])),
    singleFlightJoins: Object.fromEntries(raw.singleFlightJoins.map((f) => [f.flight, f.joins])),
    refreshLeaseWaits: raw.refreshLeaseWaits,
    ssoUntrustedHeaders: raw.ssoUntrustedHeaders,
    backendCallsInFlight: raw.backendCallsInFlight,
    backendBreakers: raw.backendBreakers.map((b) => ({ host: b.host, lane: b.lane, state: b.state, openings: b.openings })),
  };
}

/**
 * The authentication service. Options are environment-variable names (see docs/configuration.md) and override
 * `process.env`; `logger` and `onAuditEvent` are taken apart. Throws `CONFIG_INVALID` naming the
 * variable.
 */
class CustomBackendAuthService {
  #native;
  #auditor;
  /** Parsed user objects by id, valid while the native cache reports the same version. */
  #parsed = new Map();
  #parsedMax;

  constructor(options = {}) {
    const { logger, onAuditEvent, ...overrides } = options;
    const vars = {};
    for (const [key, value] of Object.entries({ ...process.env, ...overrides })) {
      if (value !== undefined && value !== null) vars[key] = String(value);
    }
    try {
      this.#native = new native.CustomBackendAuthService(vars);
    } catch (err) {
      throw toAuthError(err);
    }
    this.logger = logger ?? defaultLogger();
    /** Lines of refusals callers cause, counted per kind (`AUTH_LOG_REPEAT_SECONDS`). */
    this.repeatedLines = new RepeatedLines(this.logger, this.#native.logRepeatMs);
    this.#auditor = new Auditor(this.logger, onAuditEvent, this.repeatedLines);
    // Events without a request (docs/security.md, "Audit events") come from the addon through this listener.
    const auditor = this.#auditor;
    this.#native.setAuditListener((json) => auditor.fromNative(json));
    this.#parsedMax = this.#native.cacheMaxEntries; // AUTH_CACHE_MAX_ENTRIES, as Rust parsed it
    /** LibreChat's `TRUST_TENANT_HEADER`, as Rust parsed it (read on every request: kept here). */
    this.trustTenantHeader = this.#native.trustTenantHeader;
    /** `JWT_FAST_PATH`: customJwtStrategy puts lib/fastPath.js in front of passport. */
    this.jwtFastPath = this.#native.jwtFastPath;
    /** Requests lib/fastPath.js answered without passport's strategy machinery. */
    this.jwtFastPathAnswers = 0;
    /** Single sign-on: `{cookie, headers, logoutUrl}`, null when off (docs/single-sign-on.md). */
    this.ssoSettings = this.#native.ssoSettings ?? null;
  }

  get secureCookies() {
    return this.#native.secureCookies;
  }

  /** `BACKEND_LOGIN_USES_USERNAME`: the login page asks for a user name. */
  get loginUsesUsername() {
    return this.#native.loginUsesUsername;
  }

  /**
   * Logs in `{email|username, password}`: backend login, user sync, LibreChat session, in the
   * request's `tenant` (docs/tenants.md). Resolves `{user, token, refreshToken, refreshExpiresAt,
   * sessionId}` or `{user, twoFAPending, tempToken, pendingId}`.
   */
  async login(credentials, tenant) {
    let fields;
    try {
      fields = loginCredentials(credentials);
    } catch (err) {
      // Refused here: counted like a native refusal.
      if (err instanceof CustomBackendAuthError) this.#native.countOutcome('login', err.code);
      throw err;
    }
    try {
      const r = await this.#native.login(fields, tenant ?? null);
      const user = EJSON.parse(r.user);
      return r.twoFaPending
        ? { user, twoFAPending: true, tempToken: r.tempToken, pendingId: r.pendingId, backendChallenge: r.backendChallenge }
        : {
            user,
            token: r.token,
            refreshToken: r.refreshToken,
            refreshExpiresAt: r.refreshExpiresAt,
            sessionId: r.sessionId,
          };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Synchronous hot path: `{kind: 'user'|'load'|'backend'|'invalid', id, version, reason,
   * issuedAt}`. `tenant`: the request's; a user of another tenant is `invalid`.
   */
  checkBearer(token, tenant) {
    return unpackCheck(this.#native.checkBearer(token, tenant));
  }

  /** Verifies a LibreChat access token synchronously: the user id, or null. */
  verifyAccessToken(token) {
    return this.#native.verifyAccessToken(token);
  }

  /** The cached user at `version` as a fresh object (no I/O), or null. */
  cachedUser(id, version) {
    const memo = this.#parsed.get(id);
    if (memo && memo.version === version) return copyUser(memo);
    const record = this.#native.cachedUser(id);
    return record ? this.#remember(record) : null;
  }

  /**
   * Loads a user by id as LibreChat's jwt strategy does; null when there is none. `issuedAt` (the
   * token's `iat`, from `checkBearer`) is checked against revocations once the database is known.
   */
  async loadUser(id, issuedAt, tenant) {
    try {
      const record = await this.#native.loadUser(id, issuedAt ?? null, tenant ?? null);
      return record ? this.#remember(record) : null;
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Verifies a backend token (JWKS or user info) and resolves its LibreChat user. `from`: the
   * client's address (`req.ip`), so that its real users keep their share of the user-info budget.
   * `tenant`: the request's; the user is that tenant's.
   */
  async authenticateBackendToken(token, from, tenant) {
    try {
      return this.#remember(await this.#native.authenticateBackendToken(token, from ?? null, tenant ?? null));
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Refreshes the session of a LibreChat refresh token: `{token, user, refreshToken,
   * refreshExpiresAt, provider, switchedVia}`. `tenant`: the request's; another tenant's session
   * is refused. `sso`: what the request carries for single sign-on (lib/sso.js); when it names
   * another person than the session, that session ends and one of theirs starts (`switchedVia`).
   */
  async refresh(refreshToken, tenant, sso) {
    try {
      const r = await this.#native.refresh(refreshToken, tenant ?? null, sso ?? null);
      return { ...r, user: EJSON.parse(r.user) };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Single sign-on on a page load without a session (docs/single-sign-on.md): `{outcome: 'none' |
   * 'untrusted'}` or `{outcome: 'session', via, user, token, refreshToken, refreshExpiresAt,
   * sessionId}`. Rejects when the credential, the policy or 2FA refuses it, or on an outage.
   */
  async ssoLogin(sso, tenant) {
    try {
      const r = await this.#native.ssoLogin(sso, tenant ?? null);
      if (r.outcome !== 'session') return { outcome: r.outcome };
      return { outcome: 'session', via: r.via, ...startedSession(r.login) };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * A code typed into LibreChat's 2FA screen for the backend's second factor
   * (docs/second-factor.md): `{outcome: 'not_ours' | 'wrong_code' | 'expired' | 'exhausted'}` or
   * `{outcome: 'session', user, token, refreshToken, refreshExpiresAt, sessionId}`.
   */
  async verifyChallenge(tempToken, code, backupCode, tenant) {
    try {
      const r = await this.#native.verifyChallenge(tempToken, code ?? null, backupCode ?? null, tenant ?? null);
      if (r.outcome !== 'session') return { outcome: r.outcome };
      return { outcome: 'session', ...startedSession(r.login) };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** The pause mark a logout leaves for the request's single sign-on credential, or null. */
  ssoPauseMark(sso) {
    return sso ? (this.#native.ssoPauseMark(sso) ?? null) : null;
  }

  /** Ends a session. Resolves true when the backend's logout call failed (the logout still happened);
   * rejects when the session could not be ended (nothing was). */
  async logout(refreshToken, userId) {
    if (userId) this.#parsed.delete(userId);
    try {
      return await this.#native.logout(refreshToken ?? null, userId ?? null);
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Ends what a login result started when the application did not hand it to the user (the admin
   * panel's admin check refused them): its session, or its pending 2FA login, at the backend too.
   * Resolves whether the backend was told.
   */
  async abandonLogin(result) {
    const userId = result?.user?._id?.toString();
    if (!userId) return false;
    try {
      return await this.#native.abandonLogin(userId, result.refreshToken ?? null, result.pendingId ?? null);
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** Whether backend events are accepted (`BACKEND_EVENTS_SECRET` is set). */
  get eventsEnabled() {
    return this.#native.eventsEnabled;
  }

  /**
   * Checks a signed backend event (the raw body as a Buffer, the signature header) and applies it:
   * `{status, id, type, backendId, userId, userIds, sessionsEnded}` (`userIds`: the account in each
   * tenant it was applied to, `userId` the first).
   */
  async handleBackendEvent(body, signature) {
    try {
      const r = await this.#native.handleBackendEvent(body, signature);
      for (const id of r.userIds) this.#parsed.delete(id);
      return {
        status: r.status,
        id: r.id,
        type: r.eventType,
        backendId: r.backendId,
        userId: r.userId ?? null,
        userIds: r.userIds,
        sessionsEnded: r.sessionsEnded,
      };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /**
   * Log out everywhere: ends every session of the user (`_id` hex) on every server, tells the
   * backend for each (when `BACKEND_LOGOUT_URL` is set), and refuses the user's tokens issued
   * before now. Resolves `{sessions, backendFailures}`. Audited as `logout.all` (`req` and
   * `backendId` of `opts` go into the event).
   */
  async logoutAll(userId, opts = {}) {
    return this.#endSessions(AUDIT_EVENTS.LOGOUT_ALL, userId, null, opts, () => this.#native.logoutAll(String(userId)));
  }

  /**
   * Ends one session of the user (by the session id `listSessions` shows): `{sessions,
   * backendFailures}`, `sessions` 0 when it is not theirs. Audited as `logout` when one ended.
   */
  async endSession(userId, sessionId, opts = {}) {
    return this.#endSessions(AUDIT_EVENTS.LOGOUT, userId, String(sessionId), opts, () =>
      this.#native.endSession(String(userId), String(sessionId)),
    );
  }

  async #endSessions(event, userId, session, { req, backendId } = {}, call) {
    this.#parsed.delete(String(userId));
    const fields = { userId: String(userId), backendId, session, req };
    try {
      const r = await call();
      if (event === AUDIT_EVENTS.LOGOUT_ALL || r.sessions > 0) this.audit(event, { ...fields, outcome: 'ok' });
      return r;
    } catch (err) {
      const failure = toAuthError(err);
      this.audit(event, { ...fields, outcome: failure.code });
      throw failure;
    }
  }

  /**
   * The user's live sessions, newest first: `[{id, createdAt, lastRefreshedAt, expiresAt,
   * backendTokens}]` (dates as Date, `lastRefreshedAt` null before the first refresh). Nothing secret.
   */
  async listSessions(userId) {
    try {
      const list = await this.#native.listSessions(String(userId));
      return list.map((s) => ({
        id: s.id,
        createdAt: new Date(s.createdAt),
        lastRefreshedAt: s.lastRefreshedAt == null ? null : new Date(s.lastRefreshedAt),
        expiresAt: new Date(s.expiresAt),
        backendTokens: s.backendTokens,
      }));
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** The user and session a genuine refresh token names (expired or not), else null: audit
   * references, never the token. */
  refreshSubject(refreshToken) {
    if (typeof refreshToken !== 'string' || refreshToken === '') return null;
    try {
      return this.#native.refreshSubject(refreshToken);
    } catch {
      return null;
    }
  }

  /** The session id a genuine refresh token of `userId` names, else null. */
  sessionIdOf(refreshToken, userId) {
    const subject = this.refreshSubject(refreshToken);
    return subject && subject.userId === String(userId) ? subject.sessionId : null;
  }

  /**
   * Emits an audit event (docs/security.md, "Audit events"): `event` from AUDIT_EVENTS, `fields` as
   * `{ outcome, userId, backendId, session, req }`. Never throws, never waits.
   */
  audit(event, fields) {
    this.#auditor.emit(event, fields);
  }

  /** Native audit events dropped so far (no listener, its queue full, Node shutting down). */
  get auditEventsDropped() {
    return this.#native.auditEventsDropped;
  }

  /** Forgets a cached user, e.g. after an administrator changed it. */
  evictUser(id) {
    this.#parsed.delete(id);
    this.#native.evictUser(id);
  }

  /** The package's own metrics so far: a plain snapshot (docs/operations.md, "Metrics"). */
  metrics() {
    return { ...shapeSnapshot(this.#native.metrics()), jwtFastPathAnswers: this.jwtFastPathAnswers };
  }

  #remember(record) {
    const user = EJSON.parse(record.user);
    // Bounded like the native cache: entries of evicted users are dropped wholesale.
    if (this.#parsed.size >= this.#parsedMax) this.#parsed.clear();
    const memo = { version: record.version, user, nested: nestedKeys(user) };
    this.#parsed.set(record.id, memo);
    return copyUser(memo);
  }

  async close() {
    this.repeatedLines.close();
    await this.#native.close();
  }
}

/** A session single sign-on or the second factor started, from the native login result. */
function startedSession(l) {
  return {
    user: EJSON.parse(l.user),
    token: l.token,
    refreshToken: l.refreshToken,
    refreshExpiresAt: l.refreshExpiresAt,
    sessionId: l.sessionId,
  };
}

/**
 * The native verdict comes packed in one string (src/lib.rs `check_bearer`): `u<version>:<id>`,
 * `l<iat>:<id>` (`iat` may be empty), `b`, `i<reason>`. One object shape for every kind.
 */
function unpackCheck(packed) {
  const tag = packed[0];
  if (tag === 'u' || tag === 'l') {
    const colon = packed.indexOf(':', 1);
    const n = colon > 1 ? Number(packed.slice(1, colon)) : undefined;
    const user = tag === 'u';
    return {
      kind: user ? 'user' : 'load',
      id: packed.slice(colon + 1),
      version: user ? n : undefined,
      reason: undefined,
      issuedAt: user ? undefined : n,
    };
  }
  if (tag === 'b') return { kind: 'backend', id: undefined, version: undefined, reason: undefined, issuedAt: undefined };
  return { kind: 'invalid', id: undefined, version: undefined, reason: packed.slice(1), issuedAt: undefined };
}

/** The top-level keys of a user whose values are mutable containers (objects, arrays, dates). */
function nestedKeys(user) {
  return Object.keys(user).filter((k) => isMutable(user[k]));
}

function isMutable(v) {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v) || v instanceof Date) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A deep copy of plain objects, arrays and dates; BSON values (ObjectId, …) are immutable, shared. */
function deepCopy(v) {
  if (Array.isArray(v)) return v.map(deepCopy);
  if (v instanceof Date) return new Date(v.getTime());
  if (!isMutable(v)) return v;
  const out = {};
  for (const k of Object.keys(v)) out[k] = deepCopy(v[k]);
  return out;
}

/**
 * Each request's own `req.user`: a shallow copy of the memo, with only the containers found when it
 * was parsed (`personalization`, `plugins`, dates, …) copied deeply, so that a route changing
 * `req.user` never changes what the next request sees, at the cost of a few small copies.
 */
function copyUser(memo) {
  const user = { ...memo.user };
  for (const k of memo.nested) user[k] = deepCopy(user[k]);
  return user;
}

let sharedService = null;

/** The shared service, built from `process.env` on first use. */
function getAuthService() {
  sharedService ??= new CustomBackendAuthService();
  return sharedService;
}

/** Replaces the shared service with one built from `options` (over `process.env`). */
function configureCustomBackendAuth(options = {}) {
  sharedService = new CustomBackendAuthService(options);
  return sharedService;
}

/** The shared service if it was built, else null (never builds it). */
function sharedAuthService() {
  return sharedService;
}

/** The service a strategy was built with, else the shared one. */
const serviceOf = (opts) => opts?.service ?? getAuthService();

module.exports = {
  CustomBackendAuthService,
  getAuthService,
  configureCustomBackendAuth,
  sharedAuthService,
  serviceOf,
};
