'use strict';

// The Express handlers of /api/auth: login (middleware and controller), refresh, logout.

const { CustomBackendAuthError, toAuthError, loginStatusOf } = require('./errors');
const { getAuthService } = require('./service');
const { hostModule } = require('./host');
const { AUDIT_EVENTS } = require('./audit');
const { requestTenant } = require('./tenant');
const { ssoRequest, setSsoPause, clearSsoPause, viaOf } = require('./sso');
const {
  PROVIDER,
  RETRY_AFTER_SECONDS,
  logFailure,
  sendError,
  setSessionCookies,
  clearSessionCookies,
  readCookie,
} = require('./http');

/** LibreChat's passport: the one its server initialised and registered the strategies on. */
const passportOf = () => hostModule('passport');

/** Middleware for `POST /api/auth/login`, in place of LibreChat's `requireLocalAuth`. */
function requireCustomBackendAuth(req, res, next) {
  const passport = passportOf();
  passport.authenticate(PROVIDER, { session: false }, (err, user, info) => {
    if (err) {
      return err instanceof CustomBackendAuthError ? sendLoginError(res, err) : next(err);
    }
    if (!user) {
      return sendLoginError(
        res,
        new CustomBackendAuthError('INVALID_CREDENTIALS', info?.message ?? 'Invalid username or password.'),
      );
    }
    req.user = user;
    req.authInfo = info;
    abandonIfNotHandedOut(req, res);
    return next();
  })(req, res, next);
}

/**
 * A login whose answer is not the login controller's (a middleware after this one refused it:
 * the admin panel's admin check answers 403) must not leave its session, nor the backend's,
 * behind: when the answer is done without the controller having handed the session out, it ends.
 */
function abandonIfNotHandedOut(req, res) {
  const { customBackend: result, service } = req.authInfo ?? {};
  if (!result || !service) return;
  res.once('close', () => {
    if (result[HANDED_OUT]) return;
    service
      .abandonLogin(result)
      .then((told) => {
        service.logger.info(
          `[customBackendAuth] a login not completed by the application (answered ${res.statusCode}) was ended${told ? ', at the backend too' : ''}`,
        );
        service.audit(AUDIT_EVENTS.BACKEND_SESSION_ENDED, {
          outcome: 'ok',
          userId: result.user?._id,
          backendId: result.user?.idOnTheSource,
          session: result.sessionId ?? null,
          req,
        });
      })
      .catch((err) => logFailure(service, 'login', toAuthError(err)));
  });
}

/** Marks a login result as answered to the user by the login controller. */
const HANDED_OUT = Symbol('customBackendLoginHandedOut');

/** A failed login: the status LibreChat's web client turns into the truest message
 * (docs/errors-and-statuses.md), the precise reason in the body for other clients. */
function sendLoginError(res, err) {
  return res.status(loginStatusOf(err.code)).json({ code: err.code, message: err.message });
}

/** Handler for `POST /api/auth/login`, in place of LibreChat's `loginController`. */
function customBackendLoginController(req, res) {
  const { customBackend: result, service } = req.authInfo ?? {};
  if (!req.user || !result) {
    return res.status(400).json({ message: 'Invalid credentials' });
  }
  result[HANDED_OUT] = true;
  if (result.twoFAPending) {
    return res.status(200).json({ twoFAPending: true, tempToken: result.tempToken });
  }
  clearSsoPause(req, res);
  setSessionCookies(res, service, result.refreshToken, result.refreshExpiresAt);
  return res.status(200).send({ token: result.token, user: result.user });
}

/**
 * Single sign-on on a page load without a LibreChat session (docs/single-sign-on.md): a session
 * as after a login, or the answer of a page load without one (LibreChat's client then shows the
 * login page) when the request's identity is refused; 503 when it cannot be checked now.
 */
async function ssoSignIn(req, res, service, sso, tenant) {
  try {
    const r = await service.ssoLogin(sso, tenant);
    if (r.outcome === 'untrusted') {
      const line = '[customBackendAuth] single sign-on identity headers from a peer that is not a trusted proxy were ignored';
      service.repeatedLines.log('sso untrusted', 'warn', line, (more, seconds) => `${line} (and ${more} more in ${seconds} s)`);
    }
    if (r.outcome !== 'session') return res.status(200).send('Refresh token not provided');
    service.audit(AUDIT_EVENTS.LOGIN_SUCCESS, {
      outcome: 'ok', userId: r.user?._id, backendId: r.user?.idOnTheSource, session: r.sessionId, via: r.via, req,
    });
    clearSsoPause(req, res);
    setSessionCookies(res, service, r.refreshToken, r.refreshExpiresAt);
    return res.status(200).send({ token: r.token, user: r.user });
  } catch (err) {
    const authErr = toAuthError(err);
    logFailure(service, 'single sign-on', authErr);
    service.audit(AUDIT_EVENTS.LOGIN_FAILURE, { outcome: authErr.code, backendId: authErr.backendId, via: viaOf(sso), req });
    if (authErr.status >= 500) {
      if (authErr.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
      return sendError(res, authErr);
    }
    return res.status(200).send('Refresh token not provided');
  }
}

/** Handler for `POST /api/auth/refresh`, in place of LibreChat's `refreshController`. */
async function customRefreshController(req, res) {
  const service = getAuthService();
  const refreshToken = readCookie(req, 'refreshToken');
  const tenant = requestTenant(req, service);
  const sso = ssoRequest(req, service);
  if (!refreshToken) {
    if (sso) return ssoSignIn(req, res, service, sso, tenant);
    return res.status(200).send('Refresh token not provided');
  }
  // Identifiers of the session the token names (checked signature), for the audit of a refusal.
  const subject = () => service.refreshSubject(refreshToken);
  try {
    const r = await service.refresh(refreshToken, tenant, sso);
    if (r.switchedVia) {
      // The portal's user is another person than the session's: that session ended, theirs began.
      const s = subject();
      service.audit(AUDIT_EVENTS.LOGOUT, { outcome: 'ok', userId: s?.userId, session: s?.sessionId, req });
      service.audit(AUDIT_EVENTS.LOGIN_SUCCESS, {
        outcome: 'ok', userId: r.user?._id, backendId: r.user?.idOnTheSource, session: r.sessionId, via: r.switchedVia, req,
      });
      clearSsoPause(req, res);
      setSessionCookies(res, service, r.refreshToken, r.refreshExpiresAt);
      return res.status(200).send({ token: r.token, user: r.user });
    }
    service.audit(r.outage ? AUDIT_EVENTS.REFRESH_OUTAGE : AUDIT_EVENTS.REFRESH_SUCCESS, {
      outcome: r.outage ? (r.outageCode ?? 'BACKEND_UNAVAILABLE') : 'ok',
      userId: r.user?._id,
      backendId: r.user?.idOnTheSource,
      session: r.sessionId,
      req,
    });
    if (r.outage) {
      // The backend could not refresh: an access token from the session, the cookies unchanged.
      service.logger.warn('[customBackendAuth] refresh: backend unavailable; access token re-issued without rotation');
    } else {
      setSessionCookies(res, service, r.refreshToken, r.refreshExpiresAt, r.provider);
    }
    return res.status(200).send({ token: r.token, user: r.user });
  } catch (err) {
    const authErr = toAuthError(err);
    logFailure(service, 'refresh', authErr);
    const s = subject();
    let event = AUDIT_EVENTS.REFRESH_FAILURE; // could not decide now (backend, database): retry
    if (authErr.reason === 'reuse') event = AUDIT_EVENTS.REFRESH_REUSE_DETECTED;
    else if (authErr.status < 500) event = AUDIT_EVENTS.REFRESH_REFUSED;
    service.audit(event, { outcome: authErr.code, userId: s?.userId, session: s?.sessionId, req });
    // The session is gone: make the browser forget it too. Otherwise (backend down) keep it.
    if (authErr.status === 401) clearSessionCookies(res);
    if (authErr.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
    return sendError(res, authErr);
  }
}

/** Handler for `POST /api/auth/logout` (behind `requireJwtAuth`), in place of `logoutController`. */
async function customLogoutController(req, res) {
  const service = getAuthService();
  const userId = req.user?.id ?? req.user?._id?.toString() ?? null;
  const refreshToken = readCookie(req, 'refreshToken') ?? null;
  const subject = service.refreshSubject(refreshToken);
  const audited = (outcome) => ({
    outcome,
    userId,
    backendId: req.user?.idOnTheSource,
    // Only a session of this user: another user's refresh cookie ends nothing.
    session: subject?.userId === userId ? subject.sessionId : null,
    req,
  });
  try {
    const backendFailed = await service.logout(refreshToken, userId);
    if (backendFailed) {
      service.logger.warn(`[customBackendAuth] backend logout failed for user ${userId}; the LibreChat session was ended`);
    }
  } catch (err) {
    // Nothing was ended (the database failed first): the cookies stay, so that a retry can.
    const failure = toAuthError(err);
    logFailure(service, 'logout', failure);
    service.audit(AUDIT_EVENTS.LOGOUT, audited(failure.code));
    if (failure.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
    return sendError(res, failure);
  }
  service.audit(AUDIT_EVENTS.LOGOUT, audited('ok'));
  clearSessionCookies(res);
  return res.status(200).send(pauseSso(req, res, service, { message: 'Logout successful' }));
}

/**
 * After a logout, single sign-on waits in this browser while the same portal identity is there
 * (the pause mark); with `BACKEND_SSO_LOGOUT_URL` the answer sends LibreChat's client to the
 * portal's logout (its `redirect`, as for OpenID). Returns the answer's body.
 */
function pauseSso(req, res, service, body) {
  const mark = service.ssoPauseMark(ssoRequest(req, service));
  if (mark) setSsoPause(res, service, mark);
  const redirect = service.ssoSettings?.logoutUrl;
  return redirect ? { ...body, redirect } : body;
}

/** The signed-in user's id (`requireJwtAuth` ran before). */
const userIdOf = (req) => req.user?.id ?? req.user?._id?.toString() ?? null;

/** Answers a failure of a session-management call, with `Retry-After` on 503. */
function sendSessionsError(res, service, what, err) {
  const failure = toAuthError(err);
  logFailure(service, what, failure);
  if (failure.status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
  return sendError(res, failure);
}

/**
 * Handler for `POST /api/auth/logout/all` (behind `requireJwtAuth`): ends every session of the
 * signed-in user on every server, tells the backend for each, clears this browser's cookies, and
 * answers `{message, sessions, backendFailures}`.
 */
async function customLogoutAllController(req, res) {
  const service = getAuthService();
  const userId = userIdOf(req);
  if (!userId) return res.status(401).json({ message: 'Unauthorized' });
  try {
    const r = await service.logoutAll(userId, { req, backendId: req.user?.idOnTheSource });
    if (r.backendFailures > 0) {
      service.logger.warn(`[customBackendAuth] backend logout failed for ${r.backendFailures} session(s) of user ${userId}; the LibreChat sessions were ended`);
    }
    clearSessionCookies(res);
    return res.status(200).json(
      pauseSso(req, res, service, { message: 'Logged out of all sessions', sessions: r.sessions, backendFailures: r.backendFailures }),
    );
  } catch (err) {
    return sendSessionsError(res, service, 'logout everywhere', err);
  }
}

/**
 * Handler for `GET /api/auth/sessions` (behind `requireJwtAuth`): the signed-in user's sessions,
 * `{sessions: [{id, createdAt, lastRefreshedAt, expiresAt, backendTokens, current}]}`; `current`
 * marks the one of this browser's `refreshToken` cookie. Nothing secret.
 */
async function customSessionsController(req, res) {
  const service = getAuthService();
  const userId = userIdOf(req);
  if (!userId) return res.status(401).json({ message: 'Unauthorized' });
  try {
    const current = service.sessionIdOf(readCookie(req, 'refreshToken'), userId);
    const sessions = await service.listSessions(userId);
    return res.status(200).json({ sessions: sessions.map((s) => ({ ...s, current: s.id === current })) });
  } catch (err) {
    return sendSessionsError(res, service, 'session list', err);
  }
}

/**
 * Handler for `DELETE /api/auth/sessions/:sessionId` (behind `requireJwtAuth`): ends one session of
 * the signed-in user (404 when it is not theirs or gone). Ending the current one clears the cookies.
 */
async function customEndSessionController(req, res) {
  const service = getAuthService();
  const userId = userIdOf(req);
  if (!userId) return res.status(401).json({ message: 'Unauthorized' });
  const sessionId = String(req.params?.sessionId ?? '');
  try {
    const r = await service.endSession(userId, sessionId, { req, backendId: req.user?.idOnTheSource });
    if (r.sessions === 0) return res.status(404).json({ message: 'Session not found' });
    if (service.sessionIdOf(readCookie(req, 'refreshToken'), userId) === sessionId) clearSessionCookies(res);
    return res.status(200).json({ message: 'Session ended', sessions: r.sessions, backendFailures: r.backendFailures });
  } catch (err) {
    return sendSessionsError(res, service, 'end session', err);
  }
}

/**
 * Handler for `POST /api/auth/2fa/verify-temp`, registered before LibreChat's own route: a code for
 * the backend's second factor (a temp token of a backend challenge) goes to the backend, and its
 * yes starts the session as a login does, cookies included; answers as LibreChat's 2FA route does
 * (401 `Invalid 2FA code or backup code`, 401 `Invalid or expired temporary token`). Any other temp
 * token goes on to LibreChat's `verify2FAWithTempToken` (`next()`): its own 2FA is untouched.
 */
async function customTwoFactorController(req, res, next) {
  const body = req.body !== null && typeof req.body === 'object' ? req.body : {};
  const text = (v) => (typeof v === 'string' ? v : undefined);
  const tempToken = text(body.tempToken);
  if (!tempToken) return next();
  const service = getAuthService();
  const failed = (event, outcome) => service.audit(event, { outcome, req });
  let r;
  try {
    r = await service.verifyChallenge(tempToken, text(body.token), text(body.backupCode), requestTenant(req, service));
  } catch (err) {
    const authErr = toAuthError(err);
    logFailure(service, 'second factor', authErr);
    failed(AUDIT_EVENTS.SECOND_FACTOR_FAILED, authErr.code);
    return res.status(loginStatusOf(authErr.code)).json({ code: authErr.code, message: authErr.message });
  }
  if (r.outcome === 'not_ours') return next();
  if (r.outcome === 'wrong_code') {
    failed(AUDIT_EVENTS.SECOND_FACTOR_FAILED, 'INVALID_CREDENTIALS');
    return res.status(401).json({ message: 'Invalid 2FA code or backup code' });
  }
  if (r.outcome === 'exhausted') {
    failed(AUDIT_EVENTS.SECOND_FACTOR_EXHAUSTED, 'SESSION_INVALID');
    return res.status(401).json({ message: 'Too many attempts. Please log in again.' });
  }
  if (r.outcome !== 'session') {
    failed(AUDIT_EVENTS.SECOND_FACTOR_FAILED, 'SESSION_INVALID');
    return res.status(401).json({ message: 'Invalid or expired temporary token' });
  }
  const who = { outcome: 'ok', userId: r.user?._id, backendId: r.user?.idOnTheSource, session: r.sessionId, req };
  service.audit(AUDIT_EVENTS.SECOND_FACTOR_PASSED, who);
  service.audit(AUDIT_EVENTS.LOGIN_SUCCESS, who);
  clearSsoPause(req, res);
  setSessionCookies(res, service, r.refreshToken, r.refreshExpiresAt);
  return res.status(200).json({ token: r.token, user: r.user });
}

/**
 * Handler for LibreChat's `POST /api/auth/register`, `/requestPasswordReset` and `/resetPassword`
 * while the switch is on: no local account may appear or change beside the backend's users. It
 * answers as LibreChat does with registration or password reset turned off (its
 * `validateRegistration` and `validatePasswordReset`), invitations included.
 */
function customLocalAccountsClosed(req, res) {
  if (String(req.path ?? '').endsWith('/register')) {
    return res.status(403).json({ message: 'Registration is not allowed.' });
  }
  return res.status(403).send('Password reset is not allowed.');
}

module.exports = {
  customLocalAccountsClosed,
  customTwoFactorController,
  customLogoutAllController,
  customSessionsController,
  customEndSessionController,
  requireCustomBackendAuth,
  customBackendLoginController,
  customRefreshController,
  customLogoutController,
};
