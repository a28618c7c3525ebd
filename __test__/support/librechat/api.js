'use strict';

/** The parts of LibreChat's `@librechat/api` the stand-in uses, written from reading it (v0.8.8-rc1). */

/** `isEnabled`: true only for `true` or the string "true" (trimmed, any case). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.toLowerCase().trim() === 'true';
}

/** `tenantContextMiddleware`: single-tenant here, so it only passes on. */
function tenantContextMiddleware(req, res, next) {
  next();
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

module.exports = { isEnabled, tenantContextMiddleware, createSetBalanceConfig };
