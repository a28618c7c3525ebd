'use strict';

// api/server/routes/auth.js of LibreChat v0.8.8-rc1 (the login, logout and refresh routes), with the
// wiring of docs/install.md. A factory, so that each test app builds it with its own Express.

const { loginController, logoutController, refreshController } = require('../controllers');
const {
  isCustomBackendAuthEnabled,
  customBackendLoginController,
  customRefreshController,
  customLogoutController,
  customLogoutAllController,
  customSessionsController,
  customEndSessionController,
} = require('librechat-custom-backend-auth');
const middleware = require('~/server/middleware');
const { createSetBalanceConfig } = require('../../api');
const { balanceOptions } = require('../../appConfig');

module.exports = function authRoutes(express) {
  const setBalanceConfig = createSetBalanceConfig(balanceOptions);
  const router = express.Router();

  const ldapAuth = !!process.env.LDAP_URL && !!process.env.LDAP_USER_SEARCH_BASE;
  const useCustomAuth = isCustomBackendAuthEnabled();
  router.post(
    '/logout',
    middleware.requireJwtAuth,
    useCustomAuth ? customLogoutController : logoutController,
  );
  router.post(
    '/login',
    middleware.logHeaders,
    middleware.loginLimiter,
    middleware.checkBan,
    middleware.validateEmailLogin,
    useCustomAuth
      ? middleware.requireCustomBackendAuth
      : ldapAuth
        ? middleware.requireLdapAuth
        : middleware.requireLocalAuth,
    setBalanceConfig,
    useCustomAuth ? customBackendLoginController : loginController,
  );
  router.post('/refresh', useCustomAuth ? customRefreshController : refreshController);
  if (useCustomAuth) {
    router.post('/logout/all', middleware.requireJwtAuth, customLogoutAllController);
    router.get('/sessions', middleware.requireJwtAuth, customSessionsController);
    router.delete('/sessions/:sessionId', middleware.requireJwtAuth, customEndSessionController);
  }
  return router;
};
