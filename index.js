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
  SESSION_INVALID: 401,
  USER_NOT_FOUND: 401,
  CONFIG_INVALID: 500,
  DB_ERROR: 500,
  INTERNAL: 500,
});

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
      const r = await this.#native.login(credentials ?? {});
      const user = EJSON.parse(r.user);
      return r.twoFaPending
        ? { user, twoFAPending: true, tempToken: r.tempToken }
        : { user, token: r.token, refreshToken: r.refreshToken, refreshExpiresAt: r.refreshExpiresAt };
    } catch (err) {
      throw toAuthError(err);
    }
  }

  async close() {
    await this.#native.close();
  }
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
function setSessionCookies(res, service, refreshToken, expiresAt) {
  const options = {
    expires: new Date(expiresAt),
    httpOnly: true,
    secure: service.secureCookies,
    sameSite: 'strict',
  };
  res.cookie('refreshToken', refreshToken, options);
  res.cookie('token_provider', PROVIDER, options);
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
  return new CustomBackendStrategy(opts);
}

/** Middleware for `POST /api/auth/login`, in place of LibreChat's `requireLocalAuth`. */
function requireCustomBackendAuth(req, res, next) {
  const passport = require('passport');
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
};
