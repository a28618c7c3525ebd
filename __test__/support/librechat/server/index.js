'use strict';

/**
 * A LibreChat-shaped API server: what api/server/index.js of LibreChat v0.8.8-rc1 does where
 * authentication is concerned, with the wiring of docs/install.md (`version: 'v0.7.9'` mounts
 * v0.7.9's auth routes instead). Test scaffolding written by us from reading LibreChat; the files
 * beside it mirror LibreChat's (strategies/index.js, server/middleware/index.js, server/routes/…),
 * and `__test__/wiring.spec.js` checks that they carry exactly the lines the wiring patches add.
 *
 *   const { createLibreChatApp } = require('./support/librechat/server');
 *   const lc = await createLibreChatApp({ mongoUri });
 *   await request(lc.app).post('/api/auth/login').send({ email, password });
 *   await lc.close();
 *
 * Routes: POST /api/auth/{login,logout,refresh}; POST /api/auth/logout/all, GET /api/auth/sessions, DELETE /api/auth/sessions/:id, POST /api/auth/custom-backend/events; GET /api/config; POST /api/admin/login/local,
 * GET /api/admin/verify; GET /api/user; GET /metrics (behind METRICS_SECRET); test-only: GET /api/optional (behind optionalJwtAuth,
 * answers { user: req.user?.id ?? null }), POST /api/test/mutate-user (changes req.user in place,
 * as a careless route might) and GET /api/test/route-sees{,-classic} (what a route behind
 * requireJwtAuth finds on req: whatTheRouteSees.js).
 *
 * One app per process at a time: LibreChat's passport and models are process-wide singletons, and
 * so are they here (close() releases them).
 */

require('../alias');
const passport = require('passport');
const compression = require('compression');
const cookieParser = require('cookie-parser');
const models = require('~/models');
const { setAppConfig } = require('../appConfig');
const { jwtLogin } = require('~/strategies');
const {
  isCustomBackendAuthEnabled,
  customJwtStrategy,
  customBackendStrategy,
  customBackendEventsHandler,
  appendCustomBackendMetrics,
} = require('librechat-custom-backend-auth');
const { optionalJwtAuth } = require('~/server/middleware/requireJwtAuth');
const { preAuthTenantMiddleware } = require('../api');
const { createMetrics } = require('./metrics');
const { getUserController } = require('./controllers');

const silentLogger = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * @param {object} options
 * @param {string} options.mongoUri e.g. 'mongodb://127.0.0.1:PORT/testdb'
 * @param {Function} [options.express] require('express') (5) or require('express4')
 * @param {'v0.8'|'v0.7.9'} [options.version] which LibreChat's auth routes to mount
 * @param {{info:Function,warn:Function,error:Function,debug:Function}} [options.logger]
 * @param {object} [options.connectOptions] extra mongoose.connect() options
 * @param {(req, res) => void} [options.inspect] test-only: sees every request after body parsing
 * @param {object} [options.appConfig] LibreChat's app config (librechat.yaml), e.g. `{ balance }`
 */
async function createLibreChatApp({
  mongoUri,
  express = require('express'),
  version = 'v0.8',
  logger = silentLogger,
  connectOptions = {},
  inspect,
  appConfig = null,
} = {}) {
  if (!mongoUri) throw new TypeError('createLibreChatApp: mongoUri is required');
  if (version !== 'v0.8' && version !== 'v0.7.9') throw new TypeError(`createLibreChatApp: unknown version ${version}`);

  /* Database: a dedicated Mongoose instance with LibreChat's own models and methods. */
  const { Mongoose } = require('mongoose');
  const { createModels, createMethods } = require('@librechat/data-schemas');
  const mongoose = new Mongoose();
  const schemaModels = createModels(mongoose);
  const methods = createMethods(mongoose);
  const unbind = models.bind(methods);
  setAppConfig(appConfig);
  const close = async () => {
    setAppConfig(null);
    passport.unuse('jwt');
    passport.unuse('custom-backend');
    unbind();
    await mongoose.disconnect();
  };

  try {
    await mongoose.connect(mongoUri, connectOptions);
    for (const name of ['User', 'Session', 'Balance']) {
      await schemaModels[name].init().catch((err) => logger.warn(`[LibreChat app] ${name}.init(): ${err.message}`));
    }
    await methods.seedSystemGrants(); // api/models/index.js: the ADMIN role's capabilities

    const app = express();
    app.disable('x-powered-by');
    app.set('trust proxy', Number(process.env.TRUST_PROXY) || 1);
    // Signed backend events: the signature covers the raw body, so before express.json (404 when off).
    app.post('/api/auth/custom-backend/events', customBackendEventsHandler);
    app.use(express.json({ limit: '3mb' }));
    app.use(express.urlencoded({ extended: true, limit: '3mb' }));
    app.use(cookieParser());
    app.use(compression());
    if (inspect) {
      app.use((req, res, next) => {
        inspect(req, res);
        next();
      });
    }

    /* OAUTH */
    app.use(passport.initialize());
    const useCustomAuth = isCustomBackendAuthEnabled();
    passport.use(useCustomAuth ? customJwtStrategy() : jwtLogin()); // both are named 'jwt'
    if (useCustomAuth) {
      passport.use(customBackendStrategy()); // 'custom-backend'
    }
    // passport.use(passportLogin()); LibreChat's 'local' strategy: its login is a stand-in here.

    const requireJwtAuth = require('~/server/middleware').requireJwtAuth;
    const authRoutes = require(version === 'v0.7.9' ? './routes/auth-v0.7.9' : './routes/auth');
    // v0.8.5+: the tenant of unauthenticated routes (login, refresh) from the trusted header.
    if (version === 'v0.8') app.use('/api/auth', preAuthTenantMiddleware);
    app.use('/api/auth', authRoutes(express));
    app.use('/api/config', optionalJwtAuth, require('./routes/config')(express));
    if (version === 'v0.8') app.use('/api/admin', require('./routes/admin/auth')(express));
    app.get('/api/user', version === 'v0.7.9' ? require('./middleware/requireJwtAuth').classic : requireJwtAuth, getUserController);

    const metrics = createMetrics(express);
    if (useCustomAuth) {
      app.use('/metrics', appendCustomBackendMetrics()); // the package's metrics after LibreChat's
    }
    app.use('/metrics', metrics.metricsRouter);

    app.get('/api/optional', optionalJwtAuth, (req, res) => res.json({ user: req.user?.id ?? null }));
    app.post('/api/test/mutate-user', requireJwtAuth, (req, res) => {
      const u = req.user;
      if (u.personalization && typeof u.personalization === 'object') u.personalization.memories = 'changed by a route';
      if (Array.isArray(u.plugins)) u.plugins.push('pushed-by-a-route');
      if (u.createdAt instanceof Date) u.createdAt.setTime(0);
      res.json({ ok: true });
    });

    // Test-only: what a route behind requireJwtAuth (v0.8.x, or v0.7.9's classic) finds on req.
    const { whatTheRouteSees } = require('./whatTheRouteSees');
    app.get('/api/test/route-sees', requireJwtAuth, whatTheRouteSees);
    app.get('/api/test/route-sees-classic', require('./middleware/requireJwtAuth').classic, whatTheRouteSees);

    // LibreChat serves index.html for unknown paths; a JSON 404 is clearer in tests.
    app.use((req, res) => res.status(404).json({ message: 'Not found' }));

    // ErrorController: 500, never a stack. Body-parser client errors keep their 4xx status.
    // eslint-disable-next-line no-unused-vars
    app.use((err, req, res, next) => {
      if (res.headersSent) return;
      const status = err?.expose && err.status >= 400 && err.status < 500 ? err.status : 500;
      if (status === 500) logger.error(`[ErrorController] ${err?.name ?? 'Error'}: ${err?.message}`);
      res.status(status).json({ message: status === 500 ? 'Something went wrong' : 'Invalid request' });
    });

    return { app, mongoose, connection: mongoose.connection, models: schemaModels, methods, metrics, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}

module.exports = { createLibreChatApp };
