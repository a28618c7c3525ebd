'use strict';

// api/server/middleware/index.js: LibreChat's barrel of middleware (the parts the auth routes use).
// The wiring does not change it.

const requireJwtAuth = require('./requireJwtAuth');
const stock = require('./stock');
const { createSetBalanceConfig } = require('../../api');
const { balanceOptions } = require('../../appConfig');

module.exports = {
  ...stock,
  requireJwtAuth,
  // v0.7.9 exports it from here; v0.8 routes build it with createSetBalanceConfig themselves.
  setBalanceConfig: createSetBalanceConfig(balanceOptions),
};
