'use strict';

/**
 * LibreChat middleware of the /login chains that the wiring keeps in place, written from reading
 * LibreChat v0.8.8-rc1. `logHeaders`, `loginLimiter` and `checkBan` pass on here (LibreChat logs
 * forwarding headers, limits attempts per IP, refuses banned users and IPs); `requireLocalAuth` and
 * `requireLdapAuth` stand for LibreChat's own login and answer 418, so that a test sees which path
 * ran. `validateEmailLogin` is LibreChat's check itself.
 */

const { isEnabled } = require('../../api');

const pass = (req, res, next) => next();
const stock = (name) => (req, res) => res.status(418).json({ message: `LibreChat ${name}` });

/** ALLOW_EMAIL_LOGIN set and not true answers 403, unless ALLOW_EMAIL_LOGIN_OVERRIDE=true. */
function validateEmailLogin(req, res, next) {
  const allowed = process.env.ALLOW_EMAIL_LOGIN === undefined || isEnabled(process.env.ALLOW_EMAIL_LOGIN);
  if (allowed || isEnabled(process.env.ALLOW_EMAIL_LOGIN_OVERRIDE)) return next();
  return res.status(403).json({ message: 'Email login is not allowed.' });
}

module.exports = {
  logHeaders: pass,
  loginLimiter: pass,
  checkBan: pass,
  setBalanceConfig: pass,
  validateEmailLogin,
  requireLocalAuth: stock('requireLocalAuth'),
  requireLdapAuth: stock('requireLdapAuth'),
};
