'use strict';

/**
 * `requireJwtAuth` and `optionalJwtAuth` (api/server/middleware/), written from reading LibreChat.
 * The default export is v0.8.8-rc1's: JSON 401 `{message}`, the OpenID reuse branch, `req.authStrategy`
 * and its tenant context after success (the CloudFront cookie refresh is left out). `classic` is v0.7.9's: passport's
 * own failure, a plain-text `Unauthorized`.
 */

const cookies = require('cookie');
const passport = require('passport');
const { isEnabled, tenantContextMiddleware } = require('../../api');

const hasPassportStrategy = (name) => passport._strategy(name) != null;
const userIdOf = (user) => user?.id?.toString?.() ?? user?._id?.toString?.();
const parseCookies = (req) => (req.headers.cookie ? cookies.parse(req.headers.cookie) : {});

/** The `openid_user_id` cookie: a JWT signed with JWT_REFRESH_SECRET, payload { id }. */
function openIdReuseUserId(parsed) {
  if (!parsed.openid_user_id || !process.env.JWT_REFRESH_SECRET) return null;
  try {
    const payload = require('jsonwebtoken').verify(parsed.openid_user_id, process.env.JWT_REFRESH_SECRET);
    return typeof payload?.id === 'string' ? payload.id : null;
  } catch {
    return null;
  }
}

function requireJwtAuth(req, res, next) {
  const parsed = parseCookies(req);
  const reuseUserId = openIdReuseUserId(parsed);
  const useOpenIdJwt =
    parsed.token_provider === 'openid' &&
    isEnabled(process.env.OPENID_REUSE_TOKENS) &&
    hasPassportStrategy('openidJwt') &&
    reuseUserId != null;
  const strategies = useOpenIdJwt ? ['openidJwt', 'jwt'] : ['jwt'];

  const attempt = (index) => {
    const strategy = strategies[index];
    passport.authenticate(strategy, { session: false }, (err, user, info, status) => {
      if (err) return next(err);
      const wrongOpenIdUser = user && strategy === 'openidJwt' && userIdOf(user) !== reuseUserId;
      if (!user || wrongOpenIdUser) {
        if (index + 1 < strategies.length) return attempt(index + 1);
        return res
          .status(wrongOpenIdUser ? 401 : status || 401)
          .json({ message: (!wrongOpenIdUser && info?.message) || 'Unauthorized' });
      }
      req.user = user;
      req.authStrategy = strategy;
      return tenantContextMiddleware(req, res, next);
    })(req, res, next);
  };
  attempt(0);
}

function optionalJwtAuth(req, res, next) {
  const parsed = parseCookies(req);
  const useOpenIdJwt =
    parsed.token_provider === 'openid' &&
    isEnabled(process.env.OPENID_REUSE_TOKENS) &&
    hasPassportStrategy('openidJwt');
  const strategy = useOpenIdJwt ? 'openidJwt' : 'jwt';
  passport.authenticate(strategy, { session: false }, (err, user) => {
    if (err) return next(err);
    if (user) {
      req.user = user;
      req.authStrategy = strategy;
    }
    return next();
  })(req, res, next);
}

/** v0.7.9: `passport.authenticate('jwt', { session: false })`. */
function classic(req, res, next) {
  return passport.authenticate('jwt', { session: false })(req, res, next);
}

module.exports = requireJwtAuth;
module.exports.optionalJwtAuth = optionalJwtAuth;
module.exports.classic = classic;
