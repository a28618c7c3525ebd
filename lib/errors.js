'use strict';

// Errors: the one table from the native error codes to HTTP statuses, and the JS error class.

/** The one table from error codes to HTTP statuses. */
const STATUS_BY_CODE = Object.freeze({
  BAD_REQUEST: 400,
  // LibreChat answers a wrong password on /login with 404 (a 401 would start the client's refresh).
  INVALID_CREDENTIALS: 404,
  ACCESS_DENIED: 403,
  ACCOUNT_CONFLICT: 409,
  // The request's tenant is not the user's (docs/tenants.md); on API requests a 401.
  TENANT_MISMATCH: 403,
  BACKEND_RATE_LIMITED: 429,
  BACKEND_BAD_RESPONSE: 502,
  BACKEND_UNAVAILABLE: 503,
  // Not sent: the host's circuit breaker is open or its calls in flight are at their bound.
  BACKEND_CIRCUIT_OPEN: 503,
  DB_UNAVAILABLE: 503,
  BACKEND_TIMEOUT: 504,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  // A backend token of a 2FA user that did not pass LibreChat's second step.
  TWO_FACTOR_REQUIRED: 401,
  SESSION_INVALID: 401,
  USER_NOT_FOUND: 401,
  // A backend event without a valid signature: nothing was done.
  SIGNATURE_INVALID: 401,
  CONFIG_INVALID: 500,
  DB_ERROR: 500,
  INTERNAL: 500,
});

/**
 * The status of a failed login, by code. LibreChat's web client picks its message from the status
 * alone (`client/src/utils/getLoginError.ts`, v0.8.8-rc1): 429 "too many attempts", 403 "banned",
 * 500 "internal server error, please wait and try again", 422 "not verified", anything else
 * "check your credentials". So every transient failure answers 500 and a refusal of the person
 * (role, domain) 404, never 403; the class (4xx refusal, 5xx retry later) stays. The body keeps the
 * precise `code`. Refresh, logout and API requests keep STATUS_BY_CODE.
 */
const LOGIN_STATUS_BY_CODE = Object.freeze({
  ...STATUS_BY_CODE,
  ACCESS_DENIED: 404,
  TENANT_MISMATCH: 404,
  BACKEND_BAD_RESPONSE: 500,
  BACKEND_UNAVAILABLE: 500,
  BACKEND_CIRCUIT_OPEN: 500,
  DB_UNAVAILABLE: 500,
  BACKEND_TIMEOUT: 500,
  // Not expected at login; never 401 there (an older client would start a refresh).
  TOKEN_INVALID: 404,
  TOKEN_EXPIRED: 404,
  TWO_FACTOR_REQUIRED: 404,
  SESSION_INVALID: 404,
  USER_NOT_FOUND: 404,
  SIGNATURE_INVALID: 404,
});

/** The status a failed login answers with (unknown codes: 500). */
function loginStatusOf(code) {
  return LOGIN_STATUS_BY_CODE[code] ?? 500;
}

/** Codes that mean "try again later": a per-request check answers them 503, never 401 (a 401
 * makes LibreChat's client refresh and then log the user out for an outage). */
const OUTAGE_CODES = new Set([
  'BACKEND_UNAVAILABLE',
  'BACKEND_TIMEOUT',
  'BACKEND_CIRCUIT_OPEN',
  'BACKEND_BAD_RESPONSE',
  'BACKEND_RATE_LIMITED',
  'DB_UNAVAILABLE',
]);

/**
 * Whether a failure is a refusal its caller caused (a wrong password, a bad token, cookie or
 * event, a policy refusal) or a backend call skipped to protect the backend (`BACKEND_CIRCUIT_OPEN`):
 * no new failure of the backend or the database. Their log lines are counted (lib/repeatedLines.js).
 */
function callerCaused(code) {
  const status = STATUS_BY_CODE[code] ?? 500;
  return (status < 500 && code !== 'BACKEND_RATE_LIMITED') || code === 'BACKEND_CIRCUIT_OPEN';
}

/** An error of this package: `code` is stable, `status` the HTTP status it answers with. */
class CustomBackendAuthError extends Error {
  constructor(code, message, reason, backendId) {
    super(message);
    this.name = 'CustomBackendAuthError';
    this.code = code;
    this.status = STATUS_BY_CODE[code] ?? 500;
    // What sets it apart from others of its code (`reuse`: a refresh token reused), for the audit.
    if (reason) this.reason = reason;
    // Who it is about, where the addon knows it (a policy refusal): for the audit, never the answer.
    if (backendId != null) this.backendId = backendId;
  }
}

/**
 * Native errors carry their code as a `[CODE] ` or `[CODE:reason] ` prefix, and a backend id as
 * `@` and a JSON string after it (see src/shared/error.rs).
 */
function toAuthError(err) {
  if (err instanceof CustomBackendAuthError) return err;
  const match = /^\[([A-Z_]+)(?::([a-z_]+))?(?:@("(?:[^"\\]|\\.)*"))?\] ([\s\S]*)$/.exec(err?.message ?? '');
  if (!match) return new CustomBackendAuthError('INTERNAL', 'Internal error');
  return new CustomBackendAuthError(match[1], match[4], match[2], match[3] ? jsonString(match[3]) : undefined);
}

/** The string a JSON string literal holds; undefined if it is not one (this must never throw). */
function jsonString(text) {
  try {
    const value = JSON.parse(text);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

module.exports = {
  STATUS_BY_CODE,
  LOGIN_STATUS_BY_CODE,
  loginStatusOf,
  OUTAGE_CODES,
  callerCaused,
  CustomBackendAuthError,
  toAuthError,
};
