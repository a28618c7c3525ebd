'use strict';

// The passport strategies: `custom-backend` (login) and `jwt` (every API request).

const { OUTAGE_CODES, toAuthError } = require('./errors');
const { serviceOf } = require('./service');
const { PROVIDER, logFailure, bearerToken } = require('./http');
const { AUDIT_EVENTS, ipOf } = require('./audit');
const { requestTenant } = require('./tenant');
const { hostModule } = require('./host');
const { installFastPath, takePrechecked } = require('./fastPath');

/** The audit fields of a user document. */
const whoIs = (user) => ({ userId: user?._id, backendId: user?.idOnTheSource });

/** The passport strategy `custom-backend`: logs in against the backend and starts the session. */
class CustomBackendStrategy {
  constructor(opts) {
    this.name = PROVIDER;
    this._opts = opts;
  }

  authenticate(req) {
    const service = serviceOf(this._opts);
    const body = req.body !== null && typeof req.body === 'object' ? req.body : {};
    // One audit event per login: a throw after the success event is not a second one.
    let audited = false;
    service
      .login({ email: body.email, username: body.username, password: body.password }, requestTenant(req, service))
      .then((result) => {
        audited = true;
        const pending = result.twoFAPending === true;
        let event = pending ? AUDIT_EVENTS.LOGIN_2FA_PENDING : AUDIT_EVENTS.LOGIN_SUCCESS;
        if (result.backendChallenge) event = AUDIT_EVENTS.SECOND_FACTOR_CHALLENGED;
        service.audit(event, {
          outcome: 'ok',
          ...whoIs(result.user),
          session: pending ? null : result.sessionId,
          req,
        });
        this.success(result.user, { customBackend: result, service });
      })
      .catch((err) => {
        const authErr = toAuthError(err);
        logFailure(service, 'login', authErr);
        if (!audited) {
          service.audit(AUDIT_EVENTS.LOGIN_FAILURE, { outcome: authErr.code, backendId: authErr.backendId, req });
        }
        this.error(authErr);
      });
  }
}

function customBackendStrategy(opts) {
  // Built now, so that a configuration error stops LibreChat at start-up, not at the first login.
  serviceOf(opts);
  return new CustomBackendStrategy(opts);
}

/**
 * The passport strategy `jwt` (in place of LibreChat's `jwtLogin()`): LibreChat access tokens are
 * verified natively and synchronously; backend tokens by JWKS or user info. Failures are 401, a
 * backend outage 503 (see OUTAGE_CODES).
 */
class CustomJwtStrategy {
  constructor(opts) {
    this.name = 'jwt';
    this._opts = opts;
  }

  authenticate(req) {
    const { service, token, tenant, check, user } = takePrechecked(req) ?? this.inspect(req);
    if (!token) return this.fail({ message: 'No auth token' }, 401);
    if (user) return this.success(user);
    if (check.kind === 'user' || check.kind === 'load') {
      return this.settle(service, service.loadUser(check.id, check.issuedAt, tenant), req);
    }
    if (check.kind === 'backend') {
      return this.settle(service, service.authenticateBackendToken(token, ipOf(req), tenant), req);
    }
    return this.fail({ message: 'Unauthorized' }, 401);
  }

  /**
   * What can be known of `req` without I/O: its token, tenant and native verdict, and `user` when
   * memory answers it (here and in lib/fastPath.js), else null.
   */
  inspect(req) {
    const service = serviceOf(this._opts);
    const token = bearerToken(req);
    if (!token) return { service, token, tenant: undefined, check: null, user: null };
    const tenant = requestTenant(req, service);
    const check = service.checkBearer(token, tenant);
    const cached = check.kind === 'user' ? service.cachedUser(check.id, check.version) : null;
    return { service, token, tenant, check, user: cached && withLibreChatDefaults(cached) };
  }

  settle(service, promise, req) {
    promise.then(
      (user) => (user ? this.success(withLibreChatDefaults(user)) : this.fail({ message: 'Unauthorized' }, 401)),
      (err) => {
        const authErr = toAuthError(err);
        if (authErr.status >= 500) logFailure(service, 'token check', authErr);
        if (authErr.code === 'TWO_FACTOR_REQUIRED' || authErr.code === 'TENANT_MISMATCH') {
          return this.fail({ message: authErr.message }, 401);
        }
        if (authErr.status === 401) return this.fail({ message: 'Unauthorized' }, 401);
        if (OUTAGE_CODES.has(authErr.code)) return this.fail({ message: authErr.message }, 503);
        if (authErr.code === 'ACCESS_DENIED') {
          service.audit(AUDIT_EVENTS.ACCESS_DENIED, { outcome: authErr.code, backendId: authErr.backendId, req });
        }
        // A refusal such as an account conflict (409) or a missing role (403) keeps its status.
        if (authErr.status < 500) return this.fail({ message: authErr.message }, authErr.status);
        return this.error(authErr);
      },
    );
  }
}

/** What LibreChat's own jwt strategy adds to the lean user. */
function withLibreChatDefaults(user) {
  user.idOnTheSource ??= null;
  return user;
}

function customJwtStrategy(opts) {
  const strategy = new CustomJwtStrategy(opts);
  const service = serviceOf(opts);
  if (service.jwtFastPath) {
    installFastPath(hostModule('passport'), strategy);
    service.logger.info("[customBackendAuth] JWT_FAST_PATH: passport.authenticate('jwt') answers cached tokens itself");
  }
  return strategy;
}

module.exports = { customBackendStrategy, customJwtStrategy };
