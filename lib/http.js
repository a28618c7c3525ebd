'use strict';

// What the handlers share: cookies as LibreChat sets them, the bearer token, error answers, log lines.

const { callerCaused } = require('./errors');

const PROVIDER = 'custom-backend';

/** `Retry-After` of a refresh or logout answered 503: retrying at once is the remedy. */
const RETRY_AFTER_SECONDS = '1';

/**
 * Characters that would end, fake or reorder a plain log line: C0/C1 controls, the line and
 * paragraph separators (U+2028, U+2029) and the bidirectional marks and overrides. Shared with
 * the audit fields (lib/audit.js).
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A text for a plain log line: every unprintable character written as `\uXXXX`. */
const printable = (text) =>
  String(text).replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Logs an auth failure: code and message only (neither ever holds a secret). A refusal its caller
 * caused is a `warn` line counted per kind (lib/repeatedLines.js); a failure of the backend or the
 * database is a line of its own, at `error` (a 5xx) or `warn`.
 */
function logFailure(service, what, err) {
  const line = printable(`[customBackendAuth] ${what} failed: ${err.code} ${err.message}`);
  if (callerCaused(err.code)) {
    service.repeatedLines.log(`${what} ${err.code}`, 'warn', line, (more, seconds) => `${line} (and ${more} more like it in ${seconds} s)`);
  } else if (err.status >= 500) service.logger.error(line);
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


module.exports = {
  PROVIDER,
  RETRY_AFTER_SECONDS,
  UNPRINTABLE,
  printable,
  logFailure,
  sendError,
  setSessionCookies,
  clearSessionCookies,
  readCookie,
  bearerToken,
};
