'use strict';

/**
 * GET /api/config of LibreChat v0.8.8-rc1 (api/server/routes/config.js), the pre-login part the
 * login page reads (`buildPreLoginPayload`, with `getLdapConfig` of
 * api/server/services/Config/ldap.js), with the wiring of docs/install.md. The social logins,
 * app config, turnstile and the post-login fields are left out.
 */

const { isEnabled } = require('../../api');
const { isCustomBackendAuthEnabled, customBackendStartupConfig } = require('librechat-custom-backend-auth');

function getLdapConfig() {
  const ldap = { enabled: !!process.env.LDAP_URL && !!process.env.LDAP_USER_SEARCH_BASE };
  if (ldap.enabled && isEnabled(process.env.LDAP_LOGIN_USES_USERNAME)) ldap.username = true;
  return ldap;
}

module.exports = function configRoutes(express) {
  const router = express.Router();
  const emailLoginEnabled =
    process.env.ALLOW_EMAIL_LOGIN === undefined || isEnabled(process.env.ALLOW_EMAIL_LOGIN);
  const passwordResetEnabled = isEnabled(process.env.ALLOW_PASSWORD_RESET);
  const useCustomAuth = isCustomBackendAuthEnabled();

  function buildPreLoginPayload() {
    const ldap = getLdapConfig();
    const payload = {
      appTitle: process.env.APP_TITLE || 'LibreChat',
      serverDomain: process.env.DOMAIN_SERVER || 'http://localhost:3080',
      emailLoginEnabled,
      registrationEnabled: !ldap?.enabled && isEnabled(process.env.ALLOW_REGISTRATION),
      socialLoginEnabled: isEnabled(process.env.ALLOW_SOCIAL_LOGIN),
      passwordResetEnabled,
    };
    const minPasswordLength = parseInt(process.env.MIN_PASSWORD_LENGTH, 10);
    if (minPasswordLength && !isNaN(minPasswordLength)) {
      payload.minPasswordLength = minPasswordLength;
    }

    if (ldap) {
      payload.ldap = ldap;
    }

    if (useCustomAuth) {
      customBackendStartupConfig(payload); // user-name login; no registration or password reset
    }

    return payload;
  }

  router.get('/', (req, res) => res.status(200).send(buildPreLoginPayload()));
  return router;
};
