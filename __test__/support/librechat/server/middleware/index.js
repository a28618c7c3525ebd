'use strict';

// api/server/middleware/index.js: LibreChat's barrel of middleware (the parts the auth routes use),
// with the wiring of docs/install.md.

const requireJwtAuth = require('./requireJwtAuth');
const stock = require('./stock');
const { createSetBalanceConfig } = require('../../api');
const { balanceOptions } = require('../../appConfig');
const {
  requireCustomBackendAuth,
  appendCustomBackendMetrics,
  customBackendEventsHandler,
} = require('librechat-custom-backend-auth');

module.exports = {
  requireCustomBackendAuth,
  appendCustomBackendMetrics,
  customBackendEventsHandler,
  ...stock,
  requireJwtAuth,
  // v0.7.9 exports it from here; v0.8 routes build it with createSetBalanceConfig themselves.
  setBalanceConfig: createSetBalanceConfig(balanceOptions),
};
