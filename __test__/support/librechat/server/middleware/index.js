'use strict';

// api/server/middleware/index.js: LibreChat's barrel of middleware (the parts the auth routes use),
// with the wiring of README section 3.

const requireJwtAuth = require('./requireJwtAuth');
const stock = require('./stock');
const { requireCustomBackendAuth } = require('librechat-custom-backend-auth');

module.exports = {
  requireCustomBackendAuth,
  ...stock,
  requireJwtAuth,
};
