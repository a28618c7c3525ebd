'use strict';

// api/server/routes/auth.js of LibreChat v0.7.9 (Express 4: destructured middleware, no
// validateEmailLogin, passport's plain-text 401), with the wiring of docs/install.md.

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
const {
  checkBan,
  logHeaders,
  loginLimiter,
  requireLdapAuth,
  setBalanceConfig,
  requireLocalAuth,
  validateRegistration,
  validatePasswordReset,
} = require('~/server/middleware');
const { classic: requireJwtAuth } = require('~/server/middleware/requireJwtAuth');

module.exports = function authRoutes(express) {
  const useCustomAuth = isCustomBackendAuthEnabled();
  const router = express.Router();

  const ldapAuth = !!process.env.LDAP_URL && !!process.env.LDAP_USER_SEARCH_BASE;
  router.post(
    '/logout',
    requireJwtAuth,
    useCustomAuth ? customLogoutController : logoutController,
  );
  router.post(
    '/login',
    logHeaders,
    loginLimiter,
    checkBan,
    useCustomAuth
      ? requireCustomBackendAuth
      : ldapAuth
        ? requireLdapAuth
        : requireLocalAuth,
    setBalanceConfig,
    useCustomAuth ? customBackendLoginController : loginController,
  );
  router.post('/refresh', useCustomAuth ? customRefreshController : refreshController);
  if (useCustomAuth) {
    router.post('/logout/all', requireJwtAuth, customLogoutAllController);
    router.get('/sessions', requireJwtAuth, customSessionsController);
    router.delete('/sessions/:sessionId', requireJwtAuth, customEndSessionController);
    // No local accounts beside backend users: answered as LibreChat answers them when disabled.
    router.post(['/register', '/requestPasswordReset', '/resetPassword'], customLocalAccountsClosed);
    router.post('/2fa/verify-temp', customTwoFactorController);
  }
  // LibreChat's own 2FA step (its controller a stand-in answering 418: the package passed it on).
  router.post('/2fa/verify-temp', verify2FAWithTempToken);
  router.post('/register', checkBan, validateRegistration, registrationController);
  router.post('/requestPasswordReset', checkBan, validatePasswordReset, resetPasswordRequestController);
  router.post('/resetPassword', checkBan, validatePasswordReset, resetPasswordController);
  return router;
};
