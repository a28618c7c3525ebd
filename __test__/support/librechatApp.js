'use strict';

/**
 * A small Express app that behaves like LibreChat's API server where authentication is concerned,
 * wired with librechat-custom-backend-auth exactly as WIRING.md (beside this file) tells operators
 * to wire LibreChat. Test scaffolding: our own code, written from the research in WIRING.md.
 *
 *   const { createLibreChatApp } = require('./support/librechatApp');
 *   const lc = await createLibreChatApp({ mongoUri, jwt: 'librechat' });
 *   await request(lc.app).post('/api/auth/login').send({ email, password });
 *   await lc.close();
 *
 * Routes: POST /api/auth/login, /api/auth/logout, /api/auth/refresh; GET /api/user;
 * GET /api/optional (test-only, behind optionalJwtAuth: answers { user: req.user?.id ?? null });
 * POST /api/test/mutate-user (test-only, behind requireJwtAuth: changes req.user in place, as a
 * careless route might).
 */

const cookies = require('cookie');
const passport = require('passport');
const cookieParser = require('cookie-parser');
const { SystemRoles } = require('librechat-data-provider');

/** LibreChat's isEnabled(): true only for `true` or the string "true" (trimmed, any case). */
function isEnabled(value) {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && value.toLowerCase().trim() === 'true';
}

const silentLogger = { info() {}, warn() {}, error() {}, debug() {} };

/* ------------------------------------------------------------------------------------------------
 * LibreChat's stock `jwt` strategy (api/strategies/jwtStrategy.js), used for jwt: 'librechat'.
 * ---------------------------------------------------------------------------------------------- */
function jwtLogin(methods, secretOrKey = process.env.JWT_SECRET) {
  const { Strategy: JwtStrategy, ExtractJwt } = require('passport-jwt');
  return new JwtStrategy(
    {
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey,
    },
    async (payload, done) => {
      try {
        const user = await methods.getUserById(payload?.id, '-password -__v -totpSecret -backupCodes');
        if (!user) return done(null, false);
        user.id = user._id.toString();
        // newest upstream main: null tells LibreChat's principal lookup "no external id" (see WIRING.md)
        user.idOnTheSource ??= null;
        if (!user.role) {
          user.role = SystemRoles.USER;
          await methods.updateUser(user.id, { role: user.role });
        }
        return done(null, user);
      } catch (err) {
        return done(err, false);
      }
    },
  );
}

/* ------------------------------------------------------------------------------------------------
 * requireJwtAuth / optionalJwtAuth (api/server/middleware/), newest upstream shape.
 * `activate` re-installs this app's strategies on the shared passport singleton first, so that
 * several apps can live in one jest file (see createLibreChatApp).
 * ---------------------------------------------------------------------------------------------- */
const hasPassportStrategy = (name) => passport._strategy(name) != null;
const userIdOf = (user) => user?.id?.toString?.() ?? user?._id?.toString?.();

function parseCookies(req) {
  return req.headers.cookie ? cookies.parse(req.headers.cookie) : {};
}

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

function createJwtAuthMiddleware(activate) {
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
      activate();
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
        // LibreChat-only, left out: tenantContextMiddleware, CloudFront auth-cookie refresh.
        return next();
      })(req, res, next);
    };
    attempt(0);
  }

  function optionalJwtAuth(req, res, next) {
    activate();
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

  return { requireJwtAuth, optionalJwtAuth };
}

/* ------------------------------------------------------------------------------------------------
 * LibreChat-only middleware of the /login chain, as pass-throughs in their chain position.
 * ---------------------------------------------------------------------------------------------- */
/** Stand-in: LibreChat logs the forwarding headers. */
function logHeaders(req, res, next) {
  next();
}
/** Stand-in: LibreChat's express-rate-limit (LOGIN_MAX per LOGIN_WINDOW, 429). */
function loginLimiter(req, res, next) {
  next();
}
/** Stand-in: LibreChat's ban check (BAN_VIOLATIONS, 403). */
function checkBan(req, res, next) {
  next();
}
/** Stand-in: LibreChat's createSetBalanceConfig(...) (upserts the Balance of req.user). */
function setBalanceConfig(req, res, next) {
  next();
}
/** Real behaviour (newest upstream main): ALLOW_EMAIL_LOGIN set and not true → 403. */
function validateEmailLogin(req, res, next) {
  const allowed =
    process.env.ALLOW_EMAIL_LOGIN === undefined || isEnabled(process.env.ALLOW_EMAIL_LOGIN);
  if (allowed || isEnabled(process.env.ALLOW_EMAIL_LOGIN_OVERRIDE)) return next();
  return res.status(403).json({ message: 'Email login is not allowed.' });
}

/* ------------------------------------------------------------------------------------------------
 * GET /api/user: UserController.getUserController, newest upstream (allowlist of public fields).
 * The S3 avatar URL refresh only runs with fileStrategy s3; this app has none.
 * ---------------------------------------------------------------------------------------------- */
const PUBLIC_USER_FIELDS = [
  '_id', 'id', 'name', 'username', 'email', 'emailVerified', 'avatar', 'provider', 'role',
  'plugins', 'twoFactorEnabled', 'termsAccepted', 'personalization', 'favorites', 'skillStates',
  'createdAt', 'updatedAt', 'tenantId',
];

function getUserController(req, res) {
  const source = typeof req.user?.toObject === 'function' ? req.user.toObject() : req.user ?? {};
  const userData = {};
  for (const field of PUBLIC_USER_FIELDS) {
    if (source[field] !== undefined) userData[field] = source[field];
  }
  res.status(200).send(userData);
}

/**
 * Stand-ins for LibreChat's stock login/refresh/logout (used when USE_CUSTOM_BACKEND_AUTH is off):
 * they answer 418 so a test can see that the stock path, not ours, handled the request.
 */
const stock = (name) => (req, res) => res.status(418).json({ message: `LibreChat ${name}` });
const requireLocalAuth = stock('requireLocalAuth');
const loginController = stock('loginController');
const refreshController = stock('refreshController');
const logoutController = stock('logoutController');

/** Stand-in for a controller our package does not export yet: fails loudly. */
function notImplemented(name) {
  const handler = (req, res) =>
    res.status(501).json({ message: `${name} is not exported by librechat-custom-backend-auth` });
  Object.defineProperty(handler, 'name', { value: `${name}NotImplemented` });
  return handler;
}

function requireExport(pkg, name) {
  if (typeof pkg[name] !== 'function') {
    throw new TypeError(`librechat-custom-backend-auth does not export ${name}()`);
  }
  return pkg[name];
}

/**
 * @param {object} [options]
 * @param {Function} [options.express] require('express') (5) or require('express4')
 * @param {string} options.mongoUri e.g. 'mongodb://127.0.0.1:PORT/testdb'
 * @param {'librechat'|'custom'} [options.jwt] which `jwt` strategy guards the API
 * @param {object} [options.service] a CustomBackendAuthService, passed to our strategy factories
 * @param {{info:Function,warn:Function,error:Function,debug:Function}} [options.logger]
 * @param {object} [options.connectOptions] extra mongoose.connect() options
 */
async function createLibreChatApp({
  express = require('express'),
  mongoUri,
  jwt = 'librechat',
  service,
  logger = silentLogger,
  connectOptions = {},
} = {}) {
  if (!mongoUri) throw new TypeError('createLibreChatApp: mongoUri is required');
  if (jwt !== 'librechat' && jwt !== 'custom') {
    throw new TypeError(`createLibreChatApp: jwt must be 'librechat' or 'custom', not ${jwt}`);
  }

  /* Database: a dedicated Mongoose instance with LibreChat's own models and methods. */
  const { Mongoose } = require('mongoose');
  const { createModels, createMethods } = require('@librechat/data-schemas');
  const mongoose = new Mongoose();
  const models = createModels(mongoose);
  const methods = createMethods(mongoose);
  await mongoose.connect(mongoUri, connectOptions);
  for (const name of ['User', 'Session', 'Balance']) {
    await models[name].init().catch((err) => logger.warn(`[librechatApp] ${name}.init(): ${err.message}`));
  }

  try {
    // Our package, required lazily: repo root index.js.
    const pkg = require('../..');
    const customBackendStrategy = requireExport(pkg, 'customBackendStrategy');
    const requireCustomBackendAuth = requireExport(pkg, 'requireCustomBackendAuth');
    const customBackendLoginController = requireExport(pkg, 'customBackendLoginController');
    const customRefreshController = pkg.customRefreshController ?? notImplemented('customRefreshController');
    const customLogoutController = pkg.customLogoutController ?? notImplemented('customLogoutController');
    const factoryOptions = service ? { service } : undefined;

    const app = express();
    app.disable('x-powered-by');
    app.set('trust proxy', Number(process.env.TRUST_PROXY) || 1);

    /* api/server/index.js: middleware (noIndex, mongoSanitize, cors, compression, static: left out) */
    app.use(express.json({ limit: '3mb' }));
    app.use(express.urlencoded({ extended: true, limit: '3mb' }));
    app.use(cookieParser());

    /* OAUTH (api/server/index.js, wired as in WIRING.md) */
    const useCustomAuth = pkg.isCustomBackendAuthEnabled();
    app.use(passport.initialize());
    if (useCustomAuth && jwt === 'custom') {
      passport.use(requireExport(pkg, 'customJwtStrategy')(factoryOptions));
    } else {
      passport.use(jwtLogin(methods));
    }
    // passport.use(passportLogin()); LibreChat's 'local' strategy stays registered; unused here.
    if (useCustomAuth) passport.use(customBackendStrategy(factoryOptions));

    /*
     * Test-only: passport is one singleton per process, so the most recently created app would own
     * 'jwt' and 'custom-backend' for every app. Each request re-installs this app's strategies
     * after the (async) body parsers; the router then runs synchronously up to passport.authenticate.
     * requireJwtAuth/optionalJwtAuth re-install them again right before authenticating.
     */
    const ownStrategies = ['jwt', 'custom-backend']
      .map((name) => [name, passport._strategy(name)])
      .filter(([, strategy]) => strategy != null);
    const activate = () => {
      for (const [name, strategy] of ownStrategies) passport.use(name, strategy);
    };
    app.use((req, res, next) => {
      activate();
      next();
    });

    const { requireJwtAuth, optionalJwtAuth } = createJwtAuthMiddleware(activate);

    /* api/server/routes/auth.js (wired as in WIRING.md) */
    const auth = express.Router();
    auth.post('/logout', requireJwtAuth, useCustomAuth ? customLogoutController : logoutController);
    auth.post(
      '/login',
      logHeaders,
      loginLimiter,
      checkBan,
      validateEmailLogin,
      useCustomAuth ? requireCustomBackendAuth : requireLocalAuth,
      setBalanceConfig,
      useCustomAuth ? customBackendLoginController : loginController,
    );
    auth.post('/refresh', useCustomAuth ? customRefreshController : refreshController);

    /* api/server/routes/user.js */
    const user = express.Router();
    user.get('/', requireJwtAuth, getUserController);

    app.use('/api/auth', auth);
    app.use('/api/user', user);
    app.get('/api/optional', optionalJwtAuth, (req, res) => res.json({ user: req.user?.id ?? null }));
    app.post('/api/test/mutate-user', requireJwtAuth, (req, res) => {
      const u = req.user;
      if (u.personalization && typeof u.personalization === 'object') u.personalization.memories = 'changed by a route';
      if (Array.isArray(u.plugins)) u.plugins.push('pushed-by-a-route');
      if (u.createdAt instanceof Date) u.createdAt.setTime(0);
      res.json({ ok: true });
    });

    // LibreChat serves index.html for unknown paths; a JSON 404 is clearer in tests.
    app.use((req, res) => res.status(404).json({ message: 'Not found' }));

    // ErrorController stand-in: 500, never a stack. Body-parser client errors keep their 4xx status.
    // eslint-disable-next-line no-unused-vars
    app.use((err, req, res, next) => {
      if (res.headersSent) return;
      const status = err?.expose && err.status >= 400 && err.status < 500 ? err.status : 500;
      if (status === 500) logger.error(`[ErrorController] ${err?.name ?? 'Error'}: ${err?.message}`);
      res.status(status).json({ message: status === 500 ? 'Something went wrong' : 'Invalid request' });
    });

    const close = async () => {
      await mongoose.disconnect();
    };
    return { app, mongoose, connection: mongoose.connection, models, methods, close };
  } catch (err) {
    await mongoose.disconnect().catch(() => {});
    throw err;
  }
}

module.exports = { createLibreChatApp, isEnabled, jwtLogin };
