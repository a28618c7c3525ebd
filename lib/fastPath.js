'use strict';

// The fast path of `passport.authenticate('jwt')` (JWT_FAST_PATH, off by default; issue 28, item 2).
// A request whose token the package answers from memory (a LibreChat token or a cached backend
// token, its user cached) skips passport's strategy machinery and leaves `req`, and calls its
// callback, exactly as passport would; everything else goes through passport unchanged, with the
// verdict already computed. It sits under LibreChat's `requireJwtAuth` rather than replacing it, so
// that what each LibreChat version or fork does around the strategy (the OpenID branch,
// `req.authStrategy`, the tenant context, the CloudFront cookies, its logs) runs as it always does.

/** Requests the fast path has checked but could not answer: the strategy takes the verdict over. */
const prechecked = new WeakMap();

/** Options whose success passport answers by setting `req.user` (and `req.authInfo`) alone. */
const SUCCESS_OPTIONS = ['successFlash', 'successMessage', 'assignProperty', 'successReturnToOrRedirect', 'successRedirect'];
const plainSuccess = (options) =>
  options != null && options.session === false && SUCCESS_OPTIONS.every((k) => options[k] === undefined);

/** What passport's `authenticate` middleware does to `req` first, when `passport.initialize()` has done it. */
function prologue(req, passport) {
  if (
    typeof req.logIn !== 'function' ||
    typeof req.logOut !== 'function' ||
    typeof req.isAuthenticated !== 'function' ||
    typeof req.isUnauthenticated !== 'function'
  ) {
    return false;
  }
  req.login = req.logIn;
  req.logout = req.logOut;
  req._sessionManager = passport._sm;
  return true;
}

/**
 * Puts the fast path in front of `passport.authenticate('jwt', ...)` of this passport instance for
 * `strategy` (a CustomJwtStrategy); every other call goes to what answered it before (passport's own, or
 * the application's wrapper of it). Installing again for another strategy replaces the fast path.
 */
function installFastPath(passport, strategy) {
  const current = passport.authenticate;
  if (current.fastPathOf === strategy) return;
  // What answered before: passport's own, or a wrapper the application put there (kept).
  const original = current.fastPathOf ? current.beforeFastPath : current;
  function authenticate(name, options, callback) {
    // Anything but the plain `{ session: false }` success of LibreChat's calls is passport's own.
    if (name !== 'jwt' || !plainSuccess(options)) return original.call(passport, name, options, callback);
    return function jwtFastPath(req, res, next) {
      const seen = passport._strategy('jwt') === strategy ? strategy.inspect(req) : null;
      if (seen === null || seen.user === null || !prologue(req, passport)) {
        if (seen !== null) prechecked.set(req, seen);
        return original.call(passport, name, options, callback)(req, res, next);
      }
      seen.service.jwtFastPathAnswers += 1;
      // passport's `success(user)`: a callback gets (null, user, undefined), else req.logIn and authInfo.
      if (callback) return callback(null, seen.user, undefined);
      req.logIn(seen.user, options, (err) => {
        if (err) return next(err);
        if (options.authInfo === false) return next();
        passport.transformAuthInfo({}, req, (infoErr, info) => {
          if (infoErr) return next(infoErr);
          req.authInfo = info;
          next();
        });
      });
    };
  }
  authenticate.fastPathOf = strategy;
  authenticate.beforeFastPath = original;
  passport.authenticate = authenticate;
}

/** The fast path's verdict on `req`, once, for the strategy passport runs after it. */
function takePrechecked(req) {
  const seen = prechecked.get(req);
  if (seen !== undefined) prechecked.delete(req);
  return seen;
}

module.exports = { installFastPath, takePrechecked };
