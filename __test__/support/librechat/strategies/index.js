'use strict';

// api/strategies/index.js: LibreChat's barrel of passport strategies (the social, LDAP and OpenID
// ones are left out here), with the wiring of docs/install.md.

const jwtLogin = require('./jwtStrategy');
const { customBackendStrategy, customJwtStrategy } = require('librechat-custom-backend-auth');

module.exports = {
  jwtLogin,
  customBackendStrategy,
  customJwtStrategy,
};
