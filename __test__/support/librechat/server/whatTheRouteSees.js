'use strict';

/**
 * Test-only route: what a LibreChat route behind `requireJwtAuth` can read on `req` (passport's
 * properties, `req.user` with the type of every field, `req.authInfo`, `req.authStrategy`, the
 * tenant context), so that two ways through authentication can be compared by value.
 */

const passport = require('passport');
const { getTenantId } = require('@librechat/data-schemas');

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : v?.constructor?.name ?? typeof v);

function whatTheRouteSees(req, res) {
  const user = req.user;
  res.json({
    ownKeys: Object.keys(req).sort(),
    user,
    userTypes: user && Object.fromEntries(Object.keys(user).map((k) => [k, typeOf(user[k])])),
    authInfo: 'authInfo' in req ? req.authInfo ?? 'undefined' : 'unset',
    authStrategy: req.authStrategy ?? null,
    passport: {
      login: req.login === req.logIn && typeof req.logIn,
      logout: req.logout === req.logOut && typeof req.logOut,
      isAuthenticated: req.isAuthenticated(),
      isUnauthenticated: req.isUnauthenticated(),
      sessionManager: req._sessionManager === passport._sm,
    },
    tenant: getTenantId() ?? null,
  });
}

module.exports = { whatTheRouteSees };
