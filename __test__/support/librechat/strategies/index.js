'use strict';

// api/strategies/index.js: LibreChat's barrel of passport strategies (the social, LDAP and OpenID
// ones are left out here), with the wiring of README section 3.

const jwtLogin = require('./jwtStrategy');
const { customBackendStrategy, customJwtStrategy } = require('librechat-custom-backend-auth');

module.exports = {
  jwtLogin,
  customBackendStrategy,
  customJwtStrategy,
};
