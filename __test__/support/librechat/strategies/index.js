'use strict';

// api/strategies/index.js: LibreChat's barrel of passport strategies (the social, LDAP and OpenID
// ones are left out here). The wiring does not change it.

const jwtLogin = require('./jwtStrategy');

module.exports = {
  jwtLogin,
};
