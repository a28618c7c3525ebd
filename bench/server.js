'use strict';

/**
 * The server under test: one authentication stack on Express 5, in its own process (bench/run.js
 * starts it pinned to one core). Every stack serves `GET /api/user` behind
 * `passport.authenticate('jwt', { session: false })`, as LibreChat's requireJwtAuth does, and
 * answers `{ id: req.user.id }`.
 *
 *   BENCH_STACK=b MONGO_URI=... JWT_SECRET=... node bench/server.js    (normally started by run.js)
 *
 * Stacks (BENCH_STACK):
 *   a    no authentication (the limit): same app and middleware, no passport.authenticate
 *   p    passport alone: requireJwtAuth with a strategy whose authenticate() succeeds at once with
 *        a constant user (the floor of any passport strategy, ours included)
 *   b    LibreChat's stock `jwt` strategy: passport-jwt + jsonwebtoken with the string JWT_SECRET,
 *        getUserById from @librechat/data-schemas per request
 *   c    the same with the secret as a crypto.createSecretKey KeyObject
 *   d    ours: customJwtStrategy({ service }) (user cache as configured: USER_CACHE_TTL)
 *   d0   ours with USER_CACHE_TTL=0 (run.js sets it)
 *   e    the seed's design for backend tokens: backend userinfo (global fetch) on every request,
 *        then findUser by email
 *   f    ours with BACKEND_BEARER_TOKENS=userinfo (run.js sets it)
 *   L    ours: POST /api/auth/login (requireCustomBackendAuth + customBackendLoginController) and
 *        POST /api/auth/refresh (customRefreshController)
 *   Llc  LibreChat's own local login and refresh (stand-ins below, from its published packages)
 *   g    ours with BACKEND_BEARER_TOKENS=jwks (run.js sets it; the rows gRS256/gES256/gEdDSA differ
 *        only in the token's algorithm)
 *
 * IPC (process.send): sends {type:'ready', port, express} once listening; answers
 * {type:'cpu'} with {type:'cpu', usage: process.cpuUsage(), rss} and exits on {type:'stop'}.
 */

const crypto = require('crypto');
const express = require('express');
const passport = require('passport');
const cookieParser = require('cookie-parser');

const STACK = process.env.BENCH_STACK;
const USER_FIELDS = '-password -__v -totpSecret -backupCodes';

/* LibreChat's stock `jwt` strategy (api/strategies/jwtStrategy.js, newest upstream), the same
 * stand-in the LibreChat-shaped test app uses; `secretOrKey` is the string JWT_SECRET (b) or a
 * KeyObject (c). */
require('../__test__/support/librechat/alias');
const stockJwtStrategy = require('../__test__/support/librechat/strategies/jwtStrategy');

/* ------------------------------------------------------------------------------------------------
 * Stand-in for the seed's per-request backend-token design (contract §14-15: customBackendTokenAuth
 * and the userinfo branch of its customJwtStrategy): every request sends the bearer token to the
 * backend's userinfo endpoint (global fetch, no cache), then finds the LibreChat user by e-mail.
 * Kinder to the seed than the seed was: it unwraps `{ user }` (seed defect 6), checks `ok` before
 * parsing (defect 26) and only reads the user where the seed upserted it on every request.
 * ---------------------------------------------------------------------------------------------- */
function seedUserinfoStrategy(methods, userInfoUrl) {
  const { Strategy: CustomStrategy } = require('passport-custom');
  const strategy = new CustomStrategy(async (req, done) => {
    try {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization || '');
      if (!m) return done(null, false);
      const response = await fetch(userInfoUrl, {
        method: 'GET',
        headers: { Authorization: `Bearer ${m[1]}`, Accept: 'application/json' },
      });
      if (!response.ok) {
        await response.arrayBuffer().catch(() => {});
        return done(null, false);
      }
      const data = await response.json();
      const backendUser = data?.user ?? data;
      if (typeof backendUser?.email !== 'string') return done(null, false);
      const user = await methods.findUser({ email: backendUser.email.toLowerCase() }, USER_FIELDS);
      if (!user) return done(null, false);
      user.id = user._id.toString();
      return done(null, user);
    } catch (err) {
      return done(err, false);
    }
  });
  strategy.name = 'jwt';
  return strategy;
}

/* ------------------------------------------------------------------------------------------------
 * Stand-ins for LibreChat's own login and refresh (LibreChat v0.8.8-rc1, commit 0ab3414c), built
 * from LibreChat's published packages as LibreChat wires them: passport-local with
 * { usernameField: 'email', passReqToCallback: true } and bcryptjs.compare against the stored hash
 * (api/strategies/localStrategy.js: findUser with '+password', comparePassword); loginController
 * (api/server/controllers/auth/LoginController.js) and setAuthTokens (api/server/services/
 * AuthService.js: createSession, getUserById, generateToken, refreshToken + token_provider cookies);
 * refreshController's non-OpenID branch (api/server/controllers/AuthController.js: jwt.verify with
 * JWT_REFRESH_SECRET, getUserById, findSession, setAuthTokens with the session = rotation). The
 * zod check of the login form, the logger lines and CloudFront cookies are left out (cheap or off).
 * ---------------------------------------------------------------------------------------------- */
const DAY_MS = 24 * 60 * 60 * 1000;
const AUTH_REFRESH_USER_PROJECTION = '-password -__v -totpSecret -backupCodes -federatedTokens';

function libreChatAuthFlows(methods) {
  const bcrypt = require('bcryptjs');
  const jsonwebtoken = require('jsonwebtoken');
  const { Strategy: LocalStrategy } = require('passport-local');
  const math = (v, d) => (v && Number.isFinite(Number(v)) ? Number(v) : d);

  passport.use('local', new LocalStrategy(
    { usernameField: 'email', passwordField: 'password', session: false, passReqToCallback: true },
    async (req, email, password, done) => {
      try {
        const user = await methods.findUser({ email: email.trim() }, '+password');
        if (!user || !user.password) return done(null, false, { message: 'Email does not exist.' });
        if (!(await bcrypt.compare(password, user.password))) return done(null, false, { message: 'Incorrect password.' });
        if (!user.emailVerified) return done(null, user, { message: 'Email not verified.' });
        return done(null, user);
      } catch (err) {
        return done(err);
      }
    },
  ));

  async function setAuthTokens(userId, res, existing) {
    let session = existing;
    let refreshToken;
    if (session && session._id && session.expiration != null) {
      refreshToken = await methods.generateRefreshToken(session);
    } else {
      const result = await methods.createSession(userId, { expiresIn: math(process.env.REFRESH_TOKEN_EXPIRY, 7 * DAY_MS) });
      ({ session, refreshToken } = result);
    }
    const expires = new Date(session.expiration.getTime());
    const user = await methods.getUserById(userId);
    const token = await methods.generateToken(user, math(process.env.SESSION_EXPIRY, 15 * 60 * 1000));
    res.cookie('refreshToken', refreshToken, { expires, httpOnly: true, secure: false, sameSite: 'strict' });
    res.cookie('token_provider', 'librechat', { expires, httpOnly: true, secure: false, sameSite: 'strict' });
    return token;
  }

  // requireLocalAuth (api/server/middleware/requireLocalAuth.js)
  const requireLocalAuth = (req, res, next) => {
    passport.authenticate('local', (err, user, info) => {
      if (err) return next(err);
      if (!user) return res.status(404).send(info);
      if (info && info.message === 'Email not verified.') return res.status(422).send({ message: info.message });
      req.user = user;
      return next();
    })(req, res, next);
  };
  const loginController = async (req, res) => {
    try {
      if (!req.user) return res.status(400).json({ message: 'Invalid credentials' });
      const { password: _p, totpSecret: _t, __v, ...user } = req.user; // eslint-disable-line no-unused-vars
      user.id = user._id.toString();
      const token = await setAuthTokens(req.user._id, res, null);
      return res.status(200).send({ token, user });
    } catch {
      return res.status(500).json({ message: 'Something went wrong' });
    }
  };
  const refreshController = async (req, res) => {
    const refreshToken = req.cookies?.refreshToken;
    if (!refreshToken) return res.status(200).send('Refresh token not provided');
    try {
      const payload = jsonwebtoken.verify(refreshToken, process.env.JWT_REFRESH_SECRET);
      const user = await methods.getUserById(payload.id, AUTH_REFRESH_USER_PROJECTION);
      if (!user) return res.status(401).redirect('/login');
      const session = await methods.findSession({ userId: payload.id, refreshToken }, { lean: false });
      if (session && session.expiration > new Date()) {
        const token = await setAuthTokens(payload.id, res, session);
        return res.status(200).send({ token, user });
      }
      return res.status(401).send('Refresh token expired or not found for this user');
    } catch {
      return res.status(403).send('Invalid refresh token');
    }
  };
  return { login: [requireLocalAuth, loginController], refresh: [refreshController] };
}

/** The parts of process.env our package reads (run.js passes them in the child's environment). */
function ourServiceOptions() {
  const names = [
    'BACKEND_AUTH_URL', 'BACKEND_USER_INFO_URL', 'BACKEND_REFRESH_URL', 'JWT_SECRET',
    'JWT_REFRESH_SECRET', 'MONGO_URI', 'BACKEND_TOKEN_ENCRYPTION_KEY', 'USER_CACHE_TTL',
    'BACKEND_BEARER_TOKENS', 'BACKEND_TOKEN_CACHE_TTL', 'SESSION_EXPIRY', 'REFRESH_TOKEN_EXPIRY',
    'BACKEND_JWKS_URL', 'BACKEND_JWT_ISSUER', 'BACKEND_JWT_AUDIENCE', 'AUTH_CACHE_MAX_ENTRIES', 'JWT_FAST_PATH',
  ];
  const out = {};
  for (const n of names) if (process.env[n] !== undefined) out[n] = process.env[n];
  return out;
}

async function connectLibreChatModels() {
  const { Mongoose } = require('mongoose');
  const { createModels, createMethods } = require('@librechat/data-schemas');
  const mongoose = new Mongoose();
  createModels(mongoose);
  const methods = createMethods(mongoose);
  await mongoose.connect(process.env.MONGO_URI);
  return { methods, close: () => mongoose.disconnect() };
}

/**
 * BENCH_TIMING=1: the wall time of our per-request calls inside the server under load, where the
 * CPU's caches are cold from the rest of the request (bench/micro.js times them in a hot loop).
 * Printed to stderr when the server stops; the timing itself costs about 0.1 us per call.
 */
const timings = {};
function timeCalls(target, names) {
  for (const name of names) {
    const fn = target[name].bind(target);
    const t = (timings[name] = { calls: 0, ns: 0n });
    target[name] = (...args) => {
      const start = process.hrtime.bigint();
      try {
        return fn(...args);
      } finally {
        t.ns += process.hrtime.bigint() - start;
        t.calls += 1;
      }
    };
  }
}

function printTimings() {
  const parts = Object.entries(timings).filter(([, t]) => t.calls > 0)
    .map(([name, t]) => `${name} ${(Number(t.ns) / t.calls / 1000).toFixed(2)} us (${t.calls} calls)`);
  if (parts.length) process.stderr.write(`[bench server ${STACK}] in-server time per call: ${parts.join(', ')}\n`);
}

async function buildStack() {
  const closers = [];
  let strategy = null;
  let flows = null;
  switch (STACK) {
    case 'Llc': {
      const db = await connectLibreChatModels();
      closers.push(db.close);
      flows = libreChatAuthFlows(db.methods);
      break;
    }
    case 'L': {
      // Ours: the login route and the refresh route as the wiring of docs/install.md mounts them.
      const pkg = require('..');
      const quiet = { info() {}, debug() {}, warn() {}, error: console.error };
      const service = pkg.configureCustomBackendAuth({ ...ourServiceOptions(), logger: quiet });
      closers.push(() => service.close?.());
      passport.use('custom-backend', pkg.customBackendStrategy({ service }));
      flows = {
        login: [pkg.requireCustomBackendAuth, pkg.customBackendLoginController],
        refresh: [pkg.customRefreshController],
      };
      break;
    }
    case 'a':
      break;
    case 'p': {
      const user = { id: process.env.BENCH_USER_ID };
      strategy = { name: 'jwt', authenticate() { this.success(user); } };
      break;
    }
    case 'b':
    case 'c': {
      const db = await connectLibreChatModels();
      closers.push(db.close);
      const secret = process.env.JWT_SECRET;
      strategy = stockJwtStrategy(db.methods, STACK === 'b' ? secret : crypto.createSecretKey(Buffer.from(secret)));
      break;
    }
    case 'e': {
      const db = await connectLibreChatModels();
      closers.push(db.close);
      strategy = seedUserinfoStrategy(db.methods, process.env.BACKEND_USER_INFO_URL);
      break;
    }
    case 'd':
    case 'd0':
    case 'f':
    case 'g': {
      const pkg = require('..');
      if (typeof pkg.customJwtStrategy !== 'function') {
        throw new Error('customJwtStrategy is not exported by librechat-custom-backend-auth (yet)');
      }
      const quiet = { info() {}, debug() {}, warn: console.warn, error: console.error };
      const service = pkg.configureCustomBackendAuth({ ...ourServiceOptions(), logger: quiet });
      closers.push(() => service.close?.());
      if (process.env.BENCH_TIMING === '1') timeCalls(service, ['checkBearer', 'cachedUser']);
      strategy = pkg.customJwtStrategy({ service });
      break;
    }
    default:
      throw new Error(`unknown BENCH_STACK ${JSON.stringify(STACK)}`);
  }
  return { strategy, flows, close: () => Promise.allSettled(closers.map((c) => c())) };
}

async function main() {
  const { strategy, flows, close } = await buildStack();

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // LibreChat's global middleware that runs on every API request (the rest is left out everywhere).
  app.use(express.json({ limit: '3mb' }));
  app.use(express.urlencoded({ extended: true, limit: '3mb' }));
  app.use(cookieParser());
  app.use(passport.initialize());

  if (flows) {
    app.post('/api/auth/login', ...flows.login);
    app.post('/api/auth/refresh', ...flows.refresh);
  } else if (strategy) {
    passport.use('jwt', strategy);
    // requireJwtAuth (the token_provider=openid branch is off: no OPENID_REUSE_TOKENS).
    const requireJwtAuth = passport.authenticate('jwt', { session: false });
    app.get('/api/user', requireJwtAuth, (req, res) => res.json({ id: req.user.id }));
  } else {
    const id = process.env.BENCH_USER_ID || '000000000000000000000000';
    app.get('/api/user', (req, res) => res.json({ id }));
  }
  // LibreChat's ErrorController answers 500; the first few distinct errors go to stderr so that a
  // failing stack says why (messages of this package never hold secrets).
  const seen = new Set();
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const line = `${err?.name ?? 'Error'}${err?.code ? ` ${err.code}` : ''}: ${err?.message}`;
    if (seen.size < 5 && !seen.has(line)) {
      seen.add(line);
      process.stderr.write(`[bench server ${STACK}] ${line}\n`);
    }
    if (!res.headersSent) res.status(500).json({ message: 'Something went wrong' });
  });

  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;

  process.on('message', async (msg) => {
    if (msg?.type === 'cpu') {
      process.send({ type: 'cpu', usage: process.cpuUsage(), rss: process.memoryUsage.rss() });
    } else if (msg?.type === 'stop') {
      printTimings();
      server.closeAllConnections?.();
      server.close();
      await close();
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({
    type: 'ready',
    port: server.address().port,
    express: require('express/package.json').version,
    node: process.version,
  });
}

main().catch((err) => {
  const message = err?.message ?? String(err);
  if (process.send) process.send({ type: 'failed', message });
  else console.error(message);
  process.exit(1);
});
