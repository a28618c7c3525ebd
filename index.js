'use strict';

// The package's exports. All auth work happens in the native addon (binding.js, generated); the
// files under lib/ adapt it to passport and Express, one role each.

const { CustomBackendAuthError, STATUS_BY_CODE } = require('./lib/errors');
const { isCustomBackendAuthEnabled } = require('./lib/switches');
const {
  CustomBackendAuthService,
  getAuthService,
  configureCustomBackendAuth,
} = require('./lib/service');
const { customBackendStrategy, customJwtStrategy } = require('./lib/strategies');
const {
  requireCustomBackendAuth,
  customBackendLoginController,
  customRefreshController,
  customLogoutController,
  customLogoutAllController,
  customSessionsController,
  customEndSessionController,
  customLocalAccountsClosed,
  customTwoFactorController,
} = require('./lib/controllers');
const { customBackendEventsHandler } = require('./lib/events');
const { customBackendStartupConfig } = require('./lib/startupConfig');
const { registerCustomBackendMetrics, appendCustomBackendMetrics } = require('./lib/metrics');
const { AUDIT_EVENTS, AUDIT_PREFIX } = require('./lib/audit');

module.exports = {
  CustomBackendAuthService,
  CustomBackendAuthError,
  STATUS_BY_CODE,
  isCustomBackendAuthEnabled,
  getAuthService,
  configureCustomBackendAuth,
  customBackendStrategy,
  requireCustomBackendAuth,
  customBackendLoginController,
  customJwtStrategy,
  customRefreshController,
  customLogoutController,
  customLogoutAllController,
  customSessionsController,
  customEndSessionController,
  customLocalAccountsClosed,
  customTwoFactorController,
  customBackendEventsHandler,
  customBackendStartupConfig,
  registerCustomBackendMetrics,
  appendCustomBackendMetrics,
  AUDIT_EVENTS,
  AUDIT_PREFIX,
};
