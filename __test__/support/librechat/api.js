'use strict';

/** The parts of LibreChat's `@librechat/api` the stand-in uses, written from reading it (v0.8.8-rc1). */

/** `isEnabled`: true only for `true` or the string "true" (trimmed, any case). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.toLowerCase().trim() === 'true';
}

const VALID_TENANT_ID = /^[-a-zA-Z0-9_.]+$/;

/**
 * `preAuthTenantMiddleware` (middleware/preAuthTenant.ts) on the published data-schemas'
 * AsyncLocalStorage: the tenant from `X-Tenant-Id` when `TRUST_TENANT_HEADER=true`; the system
 * tenant and malformed ids are ignored (the request runs without a tenant).
 */
function preAuthTenantMiddleware(req, res, next) {
  const { tenantStorage, SYSTEM_TENANT_ID } = require('@librechat/data-schemas');
  const raw = req.headers['x-tenant-id'];
  if (!raw || typeof raw !== 'string' || !isEnabled(process.env.TRUST_TENANT_HEADER)) return next();
  const tenantId = raw.trim();
  if (!tenantId || tenantId === SYSTEM_TENANT_ID || tenantId.length > 128 || !VALID_TENANT_ID.test(tenantId)) {
    return next();
  }
  return tenantStorage.run({ tenantId }, async () => next());
}

/**
 * `tenantContextMiddleware` (middleware/tenant.ts), chained by `requireJwtAuth` after the strategy:
 * what follows runs in `req.user.tenantId`'s context; the system tenant is a 403.
 */
function tenantContextMiddleware(req, res, next) {
  const { tenantStorage, SYSTEM_TENANT_ID } = require('@librechat/data-schemas');
  const tenantId = req.user?.tenantId;
  if (tenantId === SYSTEM_TENANT_ID) {
    return res.status(403).json({ error: 'System tenant is not allowed for request-scoped routes' });
  }
  if (!tenantId) return next();
  return tenantStorage.run({ tenantId, userId: req.user.id }, async () => next());
}

/**
 * `createSetBalanceConfig` (packages/api/src/middleware/balance.ts): after login, brings the user's
 * balance document in line with the app's balance config, with LibreChat's own model methods: a
 * missing record or `tokenCredits` gets `startBalance`; with a complete auto-refill config, the
 * refill fields are copied and `lastRefill` is set when missing. Per-user serialisation is left out.
 */
function createSetBalanceConfig({ getAppConfig, findBalanceByUser, upsertBalanceFields }) {
  return async (req, res, next) => {
    try {
      const user = req.user;
      const balance = (await getAppConfig({ role: user?.role, userId: user?.id }))?.balance;
      res.locals.balanceConfigEnabled = balance?.enabled === true;
      if (!balance?.enabled || balance.startBalance == null || !user?._id) return next();
      const userId = user._id.toString();
      const record = await findBalanceByUser(userId);
      const fields = {};
      if (!record) fields.user = userId;
      if (record?.tokenCredits == null) fields.tokenCredits = balance.startBalance;
      const refill = ['refillIntervalValue', 'refillIntervalUnit', 'refillAmount'];
      if (balance.autoRefillEnabled && refill.every((k) => balance[k] != null)) {
        for (const k of ['autoRefillEnabled', ...refill]) if (record?.[k] !== balance[k]) fields[k] = balance[k];
        if (!record?.lastRefill) fields.lastRefill = new Date();
      }
      res.locals.balanceData = Object.keys(fields).length ? await upsertBalanceFields(userId, fields) : record;
      return next();
    } catch (err) {
      return next(err);
    }
  };
}

module.exports = { isEnabled, preAuthTenantMiddleware, tenantContextMiddleware, createSetBalanceConfig };
