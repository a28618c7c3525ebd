'use strict';

// The switches LibreChat's wiring reads, once, at start-up.

/** LibreChat's `isEnabled`: true only for `true`/`"true"` (any case, trimmed). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}

/** The one reading of `USE_CUSTOM_BACKEND_AUTH`: the wiring in LibreChat switches on it. */
function isCustomBackendAuthEnabled(env = process.env) {
  return isEnabled(env.USE_CUSTOM_BACKEND_AUTH);
}

module.exports = { isEnabled, isCustomBackendAuthEnabled };
