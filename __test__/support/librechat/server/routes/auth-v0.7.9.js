'use strict';

// api/server/routes/auth.js of LibreChat v0.7.9 (Express 4: destructured middleware, no
// validateEmailLogin, passport's plain-text 401), with the wiring of docs/install.md.

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
const {
  checkBan,
  logHeaders,
  loginLimiter,
  requireLdapAuth,
  setBalanceConfig,
  requireLocalAuth,
  requireCustomBackendAuth,
} = require('~/server/middleware');
const { classic: requireJwtAuth } = require('~/server/middleware/requireJwtAuth');

module.exports = function authRoutes(express) {
  const router = express.Router();

  const ldapAuth = !!process.env.LDAP_URL && !!process.env.LDAP_USER_SEARCH_BASE;
  const useCustomAuth = isCustomBackendAuthEnabled();
  router.post('/logout', requireJwtAuth, useCustomAuth ? customLogoutController : logoutController);
  router.post(
    '/login',
    logHeaders,
    loginLimiter,
    checkBan,
    useCustomAuth ? requireCustomBackendAuth : ldapAuth ? requireLdapAuth : requireLocalAuth,
    setBalanceConfig,
    useCustomAuth ? customBackendLoginController : loginController,
  );
  router.post('/refresh', useCustomAuth ? customRefreshController : refreshController);
  if (useCustomAuth) {
    router.post('/logout/all', requireJwtAuth, customLogoutAllController);
    router.get('/sessions', requireJwtAuth, customSessionsController);
    router.delete('/sessions/:sessionId', requireJwtAuth, customEndSessionController);
  }
  return router;
};
