'use strict';

/**
 * The admin panel's local login of LibreChat v0.8.8-rc1 (api/server/routes/admin/auth.js:
 * `POST /login/local`, `GET /verify`), with the wiring of docs/install.md. `requireAdminAccess` is
 * LibreChat's `requireCapability(SystemCapabilities.ACCESS_ADMIN)` (packages/api
 * middleware/capabilities.ts) over LibreChat's own data-schemas methods: the user's principals, then
 * whether one of them holds the capability (the ADMIN role does once `seedSystemGrants` ran). The
 * OAuth routes, code exchange and token refresh serve OpenID and social providers and are left out.
 */

const { SystemCapabilities } = require('@librechat/data-schemas');
const { tenantContextMiddleware, createSetBalanceConfig } = require('../../../api');
const { balanceOptions } = require('../../../appConfig');
const { loginController } = require('../../controllers');
const {
  isCustomBackendAuthEnabled,
  requireCustomBackendAuth,
  customBackendLoginController,
} = require('librechat-custom-backend-auth');
const models = require('~/models');
const middleware = require('~/server/middleware');

function requireCapability(capability) {
  return async (req, res, next) => {
    try {
      const id = req.user?.id ?? req.user?._id?.toString();
      if (!id) return res.status(401).json({ message: 'Authentication required' });
      const methods = models.methods();
      const principals = await methods.getUserPrincipals({
        userId: id,
        role: req.user.role ?? '',
        idOnTheSource: req.user.idOnTheSource ?? null,
      });
      if (await methods.hasCapabilityForPrincipals({ principals, capability, tenantId: req.user.tenantId })) {
        return next();
      }
      return res.status(403).json({ message: 'Forbidden' });
    } catch {
      return res.status(500).json({ message: 'Internal Server Error' });
    }
  };
}

module.exports = function adminAuthRoutes(express) {
  const router = express.Router();
  const requireAdminAccess = requireCapability(SystemCapabilities.ACCESS_ADMIN);
  const useCustomAuth = isCustomBackendAuthEnabled();
  const setBalanceConfig = createSetBalanceConfig(balanceOptions);

  router.post(
    '/login/local',
    middleware.logHeaders,
    middleware.loginLimiter,
    middleware.checkBan,
    middleware.validateEmailLogin,
    useCustomAuth ? requireCustomBackendAuth : middleware.requireLocalAuth,
    tenantContextMiddleware,
    requireAdminAccess,
    setBalanceConfig,
    useCustomAuth ? customBackendLoginController : loginController,
  );

  router.get('/verify', middleware.requireJwtAuth, requireAdminAccess, (req, res) => {
    const { password: _p, totpSecret: _t, __v, ...user } = req.user; // eslint-disable-line no-unused-vars
    user.id = user._id.toString();
    res.status(200).json({ user });
  });
  return router;
};
