'use strict';

// What LibreChat's login page is told (GET /api/config, before login) while the backend owns the
// accounts. The web client reads these fields (LibreChat v0.8.8-rc1, client/src/components/Auth/):
// `ldap.username` makes the form's field "Username" without the email check (LoginForm.tsx),
// `registrationEnabled` and `passwordResetEnabled` show the sign-up and reset links, and
// `minPasswordLength` (default 8) is the shortest password the form sends.

const { getAuthService } = require('./service');

/**
 * Adjusts LibreChat's pre-login startup config in place (the wiring calls it while
 * USE_CUSTOM_BACKEND_AUTH is on) and returns it: user-name login when BACKEND_LOGIN_USES_USERNAME
 * is true; no registration and no password reset (the backend owns both); any non-empty password
 * may be sent (the backend judges passwords, not LibreChat's MIN_PASSWORD_LENGTH).
 */
function customBackendStartupConfig(payload, service = getAuthService()) {
  if (service.loginUsesUsername) {
    payload.ldap = { enabled: false, ...payload.ldap, username: true };
  }
  payload.registrationEnabled = false;
  payload.passwordResetEnabled = false;
  payload.minPasswordLength = 1;
  return payload;
}

module.exports = { customBackendStartupConfig };
