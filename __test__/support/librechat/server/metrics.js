'use strict';

/**
 * `createMetrics()` of LibreChat main (packages/api/src/app/metrics.ts, v0.8.8-rc1), the part the
 * package meets: a prom-client registry of its own (out of the operator's reach) with a counter of
 * its own, and `metricsRouter`, which answers the registry's text only to
 * `Authorization: Bearer $METRICS_SECRET` (401 otherwise). Written by us from reading it.
 */

const { Registry, Counter } = require('prom-client');

function createMetrics(express) {
  const registry = new Registry();
  const lookups = new Counter({
    name: 'openid_user_lookup_total',
    help: 'OpenID user lookup attempts',
    labelNames: ['result'],
    registers: [registry],
  });
  const metricsRouter = express.Router();
  metricsRouter.get('/', (req, res) => {
    const secret = process.env.METRICS_SECRET;
    if (!secret || req.headers.authorization !== `Bearer ${secret}`) return res.status(401).end();
    return registry.metrics().then((text) => {
      res.set('Content-Type', registry.contentType);
      res.end(text);
    });
  });
  return { metricsRouter, lookups };
}

module.exports = { createMetrics };
