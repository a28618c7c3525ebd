'use strict';

// api/server/routes/auth.js of LibreChat v0.8.8-rc1 (the login, logout, refresh, registration and
// password-reset routes and the 2FA step; limiters and invitations left out), with the wiring of
// docs/install.md. A factory, so that each test app builds it with its own Express.

const {
  loginController,
  logoutController,
  refreshController,
  registrationController,
  resetPasswordRequestController,
  resetPasswordController,
  verify2FAWithTempToken,
} = require('../controllers');
const {
  isCustomBackendAuthEnabled,
  requireCustomBackendAuth,
  customBackendLoginController,
  customRefreshController,
  customLogoutController,
  customLogoutAllController,
  customSessionsController,
  customEndSessionController,
  customLocalAccountsClosed,
  customTwoFactorController,
} = require('librechat-custom-backend-auth');
const middleware = require('~/server/middleware');
const { createSetBalanceConfig } = require('../../api');
const { balanceOptions } = require('../../appConfig');

module.exports = function authRoutes(express) {
  const useCustomAuth = isCustomBackendAuthEnabled();
  const setBalanceConfig = createSetBalanceConfig(balanceOptions);
  const router = express.Router();

  const ldapAuth = !!process.env.LDAP_URL && !!process.env.LDAP_USER_SEARCH_BASE;
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
      ? requireCustomBackendAuth
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
    // No local accounts beside backend users: answered as LibreChat answers them when disabled.
    router.post(['/register', '/requestPasswordReset', '/resetPassword'], customLocalAccountsClosed);
    router.post('/2fa/verify-temp', customTwoFactorController);
  }
  // LibreChat's own 2FA step (its controller a stand-in answering 418: the package passed it on).
  router.post('/2fa/verify-temp', verify2FAWithTempToken);
  router.post('/register', middleware.checkBan, middleware.validateRegistration, registrationController);
  router.post('/requestPasswordReset', middleware.checkBan, middleware.validatePasswordReset, resetPasswordRequestController);
  router.post('/resetPassword', middleware.checkBan, middleware.validatePasswordReset, resetPasswordController);
  return router;
};
