'use strict';

/** The parts of LibreChat's `@librechat/api` the stand-in uses, written from reading it (v0.8.8-rc1). */

/** `isEnabled`: true only for `true` or the string "true" (trimmed, any case). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.toLowerCase().trim() === 'true';
}

/** `tenantContextMiddleware`: single-tenant here, so it only passes on. */
function tenantContextMiddleware(req, res, next) {
  next();
}

module.exports = { isEnabled, tenantContextMiddleware };
