'use strict';

// The shim: adapts the native service (binding.js, generated) to passport and Express. All auth work
// happens in Rust; this file reads requests, writes responses and maps error codes to statuses.

const { EJSON } = require('bson');
const native = require('./binding');

const PROVIDER = 'custom-backend';

/** The one table from error codes to HTTP statuses. */
const STATUS_BY_CODE = Object.freeze({
  BAD_REQUEST: 400,
  // LibreChat answers a wrong password on /login with 404 (a 401 would start the client's refresh).
  INVALID_CREDENTIALS: 404,
  ACCESS_DENIED: 403,
  ACCOUNT_CONFLICT: 409,
  BACKEND_RATE_LIMITED: 429,
  BACKEND_BAD_RESPONSE: 502,
  BACKEND_UNAVAILABLE: 503,
  DB_UNAVAILABLE: 503,
  BACKEND_TIMEOUT: 504,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  // A backend token of a 2FA user that did not pass LibreChat's second step.
  TWO_FACTOR_REQUIRED: 401,
  SESSION_INVALID: 401,
  USER_NOT_FOUND: 401,
  CONFIG_INVALID: 500,
  DB_ERROR: 500,
  INTERNAL: 500,
});

/** Codes that mean "try again later": a per-request check answers them 503, never 401 (a 401
 * makes LibreChat's client refresh and then log the user out for an outage). */
const OUTAGE_CODES = new Set([
  'BACKEND_UNAVAILABLE',
  'BACKEND_TIMEOUT',
  'BACKEND_BAD_RESPONSE',
  'BACKEND_RATE_LIMITED',
  'DB_UNAVAILABLE',
]);

/** `Retry-After` of a refresh or logout answered 503: retrying at once is the remedy. */
const RETRY_AFTER_SECONDS = '1';
/** Bounds of the login form fields, in characters (the same as the native check's). */
const MAX_USERNAME_CHARS = 256;
const MAX_PASSWORD_CHARS = 1024;

/** An error of this package: `code` is stable, `status` the HTTP status it answers with. */
class CustomBackendAuthError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CustomBackendAuthError';
    this.code = code;
    this.status = STATUS_BY_CODE[code] ?? 500;
  }
}

/** Native errors carry their code as a `[CODE] ` prefix (see src/error.rs). */
function toAuthError(err) {
  if (err instanceof CustomBackendAuthError) return err;
  const match = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(err?.message ?? '');
  if (match) return new CustomBackendAuthError(match[1], match[2]);
  return new CustomBackendAuthError('INTERNAL', 'Internal error');
}

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

/** LibreChat's `isEnabled`: true only for `true`/`"true"` (any case, trimmed). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}

/** The one reading of `USE_CUSTOM_BACKEND_AUTH`: the wiring in LibreChat switches on it. */
function isCustomBackendAuthEnabled(env = process.env) {
  return isEnabled(env.USE_CUSTOM_BACKEND_AUTH);
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
 * The authentication service. Options are environment-variable names (see README) and override
 * `process.env`; `logger` is taken apart. Throws `CONFIG_INVALID` naming the variable.
 */
class CustomBackendAuthService {
  #native;
  /** Parsed user objects by id, valid while the native cache reports the same version. */
  #parsed = new Map();
  #parsedMax;

  constructor(options = {}) {
    const { logger, ...overrides } = options;
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
    this.#parsedMax = this.#native.cacheMaxEntries; // AUTH_CACHE_MAX_ENTRIES, as Rust parsed it
  }

  get secureCookies() {
    return this.#native.secureCookies;
  }

  /**
   * Logs in `{email|username, password}`: backend login, user sync, LibreChat session.
   * Resolves `{user, token, refreshToken, refreshExpiresAt}` or `{user, twoFAPending, tempToken}`.
   */
  async login(credentials) {
    try {
      const r = await this.#native.login(loginCredentials(credentials));
      const user = EJSON.parse(r.user);
      return r.twoFaPending
        ? { user, twoFAPending: true, tempToken: r.tempToken }
        : { user, token: r.token, refreshToken: r.refreshToken, refreshExpiresAt: r.refreshExpiresAt };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** Synchronous hot path: `{kind: 'user'|'load'|'backend'|'invalid', id, version, reason}`. */
  checkBearer(token) {
    return this.#native.checkBearer(token);
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

  /** Loads a user by id as LibreChat's jwt strategy does; null when there is none. */
  async loadUser(id) {
    try {
      const record = await this.#native.loadUser(id);
      return record ? this.#remember(record) : null;
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** Verifies a backend token (JWKS or user info) and resolves its LibreChat user. */
  async authenticateBackendToken(token) {
    try {
      return this.#remember(await this.#native.authenticateBackendToken(token));
    } catch (err) {
      throw toAuthError(err);
    }
  }

  /** Refreshes the session of a LibreChat refresh token: `{token, user, refreshToken, refreshExpiresAt, provider}`. */
  async refresh(refreshToken) {
    try {
      const r = await this.#native.refresh(refreshToken);
      return { ...r, user: EJSON.parse(r.user) };
    } catch (err) {
      throw toAuthError(err);
    }
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

  /** Forgets a cached user, e.g. after an administrator changed it. */
  evictUser(id) {
    this.#parsed.delete(id);
    this.#native.evictUser(id);
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
    await this.#native.close();
  }
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

const serviceOf = (opts) => opts?.service ?? getAuthService();

/** Logs an auth failure: code and message only (neither ever holds a secret). */
function logFailure(service, what, err) {
  const line = `[customBackendAuth] ${what} failed: ${err.code} ${err.message}`;
  if (err.status >= 500) service.logger.error(line);
  else service.logger.warn(line);
}

function sendError(res, err) {
  return res.status(err.status).json({ message: err.message });
}

/** LibreChat's cookie options: httpOnly, strict, Secure in production, expiring with the session. */
function setSessionCookies(res, service, refreshToken, expiresAt, provider = PROVIDER) {
  const options = {
    expires: new Date(expiresAt),
    httpOnly: true,
    secure: service.secureCookies,
    sameSite: 'strict',
  };
  res.cookie('refreshToken', refreshToken, options);
  res.cookie('token_provider', provider, options);
}

/** As LibreChat's logout: `clearCookie(name)` with no options (the path is `/` either way). */
function clearSessionCookies(res) {
  res.clearCookie('refreshToken');
  res.clearCookie('token_provider');
}

/** A cookie, from cookie-parser when mounted, else from the header (as LibreChat reads it). */
function readCookie(req, name) {
  if (req.cookies && typeof req.cookies[name] === 'string') return req.cookies[name];
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** `Authorization: Bearer <token>` (scheme case-insensitive, as passport-jwt). */
function bearerToken(req) {
  const header = req.headers?.authorization;
  if (typeof header !== 'string') return null;
  const match = /^bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/** The passport strategy `custom-backend`: logs in against the backend and starts the session. */
class CustomBackendStrategy {
  constructor(opts) {
    this.name = PROVIDER;
    this._opts = opts;
  }

  authenticate(req) {
    const service = serviceOf(this._opts);
    const body = req.body !== null && typeof req.body === 'object' ? req.body : {};
    service
      .login({ email: body.email, username: body.username, password: body.password })
      .then((result) => this.success(result.user, { customBackend: result, service }))
      .catch((err) => {
        const authErr = toAuthError(err);
        logFailure(service, 'login', authErr);
        this.error(authErr);
      });
  }
}

function customBackendStrategy(opts) {
  // Built now, so that a configuration error stops LibreChat at start-up, not at the first login.
  serviceOf(opts);
  return new CustomBackendStrategy(opts);
}

/**
 * The passport strategy `jwt` (in place of LibreChat's `jwtLogin()`): LibreChat access tokens are
 * verified natively and synchronously; backend tokens by JWKS or user info. Failures are 401, a
 * backend outage 503 (see OUTAGE_CODES).
 */
class CustomJwtStrategy {
  constructor(opts) {
    this.name = 'jwt';
    this._opts = opts;
  }

  authenticate(req) {
    const service = serviceOf(this._opts);
    const token = bearerToken(req);
    if (!token) return this.fail({ message: 'No auth token' }, 401);
    const check = service.checkBearer(token);
    if (check.kind === 'user') {
      const user = service.cachedUser(check.id, check.version);
      if (user) return this.success(withLibreChatDefaults(user));
    }
    if (check.kind === 'user' || check.kind === 'load') {
      return this.settle(service, service.loadUser(check.id));
    }
    if (check.kind === 'backend') {
      return this.settle(service, service.authenticateBackendToken(token));
    }
    return this.fail({ message: 'Unauthorized' }, 401);
  }

  settle(service, promise) {
    promise.then(
      (user) => (user ? this.success(withLibreChatDefaults(user)) : this.fail({ message: 'Unauthorized' }, 401)),
      (err) => {
        const authErr = toAuthError(err);
        if (authErr.status >= 500) logFailure(service, 'token check', authErr);
        if (authErr.code === 'TWO_FACTOR_REQUIRED') return this.fail({ message: authErr.message }, 401);
        if (authErr.status === 401) return this.fail({ message: 'Unauthorized' }, 401);
        if (OUTAGE_CODES.has(authErr.code)) return this.fail({ message: authErr.message }, 503);
        // A refusal such as an account conflict (409) or a missing role (403) keeps its status.
        if (authErr.status < 500) return this.fail({ message: authErr.message }, authErr.status);
        return this.error(authErr);
      },
    );
  }
}

/** What LibreChat's own jwt strategy adds to the lean user. */
function withLibreChatDefaults(user) {
  user.idOnTheSource ??= null;
  return user;
}

function customJwtStrategy(opts) {
  serviceOf(opts);
  return new CustomJwtStrategy(opts);
}

/**
 * LibreChat's passport: the one its server initialised and registered the strategies on. Resolved
 * from the application first, so that a linked or nested install of this package does not pick up
 * a second copy that knows no strategies.
 */
let hostPassport = null;
function passportOf() {
  if (hostPassport) return hostPassport;
  const from = [require.main?.path, process.cwd()].filter(Boolean);
  try {
    hostPassport = require(require.resolve('passport', { paths: from }));
  } catch {
    hostPassport = require('passport');
  }
  return hostPassport;
}

/** Middleware for `POST /api/auth/login`, in place of LibreChat's `requireLocalAuth`. */
function requireCustomBackendAuth(req, res, next) {
  const passport = passportOf();
  passport.authenticate(PROVIDER, { session: false }, (err, user, info) => {
    if (err) {
      return err instanceof CustomBackendAuthError ? sendError(res, err) : next(err);
    }
    if (!user) {
      return res.status(404).json({ message: info?.message ?? 'Invalid username or password.' });
    }
    req.user = user;
    req.authInfo = info;
    return next();
  })(req, res, next);
}

/** Handler for `POST /api/auth/login`, in place of LibreChat's `loginController`. */
function customBackendLoginController(req, res) {
  const { customBackend: result, service } = req.authInfo ?? {};
  if (!req.user || !result) {
    return res.status(400).json({ message: 'Invalid credentials' });
  }
  if (result.twoFAPending) {
    return res.status(200).json({ twoFAPending: true, tempToken: result.tempToken });
  }
  setSessionCookies(res, service, result.refreshToken, result.refreshExpiresAt);
  return res.status(200).send({ token: result.token, user: result.user });
}

/** Handler for `POST /api/auth/refresh`, in place of LibreChat's `refreshController`. */
async function customRefreshController(req, res) {
  const service = getAuthService();
  const refreshToken = readCookie(req, 'refreshToken');
  if (!refreshToken) return res.status(200).send('Refresh token not provided');
  try {
    const r = await service.refresh(refreshToken);
    setSessionCookies(res, service, r.refreshToken, r.refreshExpiresAt, r.provider);
    return res.status(200).send({ token: r.token, user: r.user });
  } catch (err) {
    const authErr = toAuthError(err);
    logFailure(service, 'refresh', authErr);
    // The session is gone: make the browser forget it too. Otherwise (backend down) keep it.
    if (authErr.status === 401) clearSessionCookies(res);
    if (authErr.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
    return sendError(res, authErr);
  }
}

/** Handler for `POST /api/auth/logout` (behind `requireJwtAuth`), in place of `logoutController`. */
async function customLogoutController(req, res) {
  const service = getAuthService();
  const userId = req.user?.id ?? req.user?._id?.toString() ?? null;
  try {
    const backendFailed = await service.logout(readCookie(req, 'refreshToken') ?? null, userId);
    if (backendFailed) {
      service.logger.warn(`[customBackendAuth] backend logout failed for user ${userId}; the LibreChat session was ended`);
    }
  } catch (err) {
    // Nothing was ended (the database failed first): the cookies stay, so that a retry can.
    const failure = toAuthError(err);
    logFailure(service, 'logout', failure);
    if (failure.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
    return sendError(res, failure);
  }
  clearSessionCookies(res);
  return res.status(200).send({ message: 'Logout successful' });
}

module.exports = {
  CustomBackendAuthService,
  CustomBackendAuthError,
  STATUS_BY_CODE,
  isCustomBackendAuthEnabled,
  getAuthService,
  configureCustomBackendAuth,
  customBackendStrategy,
  requireCustomBackendAuth,
  customBackendLoginController,
  customJwtStrategy,
  customRefreshController,
  customLogoutController,
};
