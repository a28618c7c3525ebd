'use strict';

/**
 * LibreChat middleware of the /login chains that the wiring keeps in place, written from reading
 * LibreChat v0.8.8-rc1:
 * - `loginLimiter`: LOGIN_MAX attempts (default 7) per LOGIN_WINDOW minutes (default 5) per client
 *   IP, then 429 with LibreChat's message (its store and violation log are left out);
 * - `validateEmailLogin`: LibreChat's check itself;
 * - `logHeaders` passes on: LibreChat only logs the forwarding headers at debug level;
 * - `checkBan` passes on: LibreChat's ban state lives in its violation cache, which nothing here
 *   fills (no violations are logged), so its check would always pass on too;
 * - `requireLocalAuth` and `requireLdapAuth` stand for LibreChat's own logins and answer 418, so
 *   that a test sees which path ran;
 * - `validateRegistration` and `validatePasswordReset`: LibreChat's checks themselves (an invitation
 *   is left out).
 */

const { isEnabled } = require('../../api');

const pass = (req, res, next) => next();
const stock = (name) => (req, res) => res.status(418).json({ message: `LibreChat ${name}` });

/** Attempts per app and client IP: { count, resetAt }. */
const attempts = new WeakMap();
function loginLimiter(req, res, next) {
  const max = Number(process.env.LOGIN_MAX ?? 7);
  const windowMs = Number(process.env.LOGIN_WINDOW ?? 5) * 60 * 1000;
  if (!attempts.has(req.app)) attempts.set(req.app, new Map());
  const byIp = attempts.get(req.app);
  const now = Date.now();
  const seen = byIp.get(req.ip);
  const entry = seen && seen.resetAt > now ? seen : { count: 0, resetAt: now + windowMs };
  entry.count += 1;
  byIp.set(req.ip, entry);
  if (entry.count > max) {
    return res.status(429).json({ message: `Too many login attempts, please try again after ${windowMs / 60000} minutes.` });
  }
  return next();
}

/** ALLOW_EMAIL_LOGIN set and not true answers 403, unless ALLOW_EMAIL_LOGIN_OVERRIDE=true. */
function validateEmailLogin(req, res, next) {
  const allowed = process.env.ALLOW_EMAIL_LOGIN === undefined || isEnabled(process.env.ALLOW_EMAIL_LOGIN);
  if (allowed || isEnabled(process.env.ALLOW_EMAIL_LOGIN_OVERRIDE)) return next();
  return res.status(403).json({ message: 'Email login is not allowed.' });
}

/** ALLOW_REGISTRATION not true answers 403 with LibreChat's JSON message. */
function validateRegistration(req, res, next) {
  if (isEnabled(process.env.ALLOW_REGISTRATION)) return next();
  return res.status(403).json({ message: 'Registration is not allowed.' });
}

/** ALLOW_PASSWORD_RESET not true answers 403 with LibreChat's plain-text message. */
function validatePasswordReset(req, res, next) {
  if (isEnabled(process.env.ALLOW_PASSWORD_RESET)) return next();
  return res.status(403).send('Password reset is not allowed.');
}

module.exports = {
  validateRegistration,
  validatePasswordReset,
  logHeaders: pass,
  loginLimiter,
  checkBan: pass,
  validateEmailLogin,
  requireLocalAuth: stock('requireLocalAuth'),
  requireLdapAuth: stock('requireLdapAuth'),
};
