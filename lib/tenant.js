'use strict';

// The request's LibreChat tenant (docs/tenants.md): the one LibreChat's own tenant context holds
// (its `preAuthTenant` or the deployment's resolver put it there), else, with TRUST_TENANT_HEADER,
// the `X-Tenant-Id` header as sent. The addon checks it (LibreChat's rules for a tenant id).

const { hostModule } = require('./host');

/** LibreChat's `getTenantId` (its AsyncLocalStorage), or a stand-in for a LibreChat without tenants. */
let contextTenant = null;

function librechatTenant() {
  if (contextTenant === null) {
    contextTenant = () => undefined;
    try {
      const { getTenantId } = hostModule('@librechat/data-schemas');
      if (typeof getTenantId === 'function') contextTenant = getTenantId;
    } catch {
      // not inside LibreChat, or one before tenants
    }
  }
  return contextTenant();
}

/** The request's tenant, or undefined (a deployment without tenants, or none named). */
function requestTenant(req, service) {
  const fromContext = librechatTenant();
  if (fromContext) return fromContext;
  if (!service.trustTenantHeader) return undefined;
  const header = req.headers?.['x-tenant-id'];
  return typeof header === 'string' ? header : undefined;
}

module.exports = { requestTenant };
