'use strict';

// JWT_FAST_PATH (lib/fastPath.js; issue 28, item 2): a table over every kind of token and failure,
// each sent once through passport and once with the fast path in front of it, behind LibreChat's
// requireJwtAuth of v0.8.x and of v0.7.9. Status, body, headers and everything the route finds on
// `req` must be the same; the rows answered from memory must not have reached passport's strategy.

const request = require('supertest');
const jwt = require('jsonwebtoken');
const passport = require('passport');
const { harnessHooks, clearWorld } = require('./support/harness');
const { ALICE, loginSession, secretsSeen } = require('./support/auth');

const FORMS = [
  ['requireJwtAuth of v0.8.x', '/api/test/route-sees'],
  ['requireJwtAuth of v0.7.9 (classic)', '/api/test/route-sees-classic'],
];

describe('JWT_FAST_PATH: the same answers as passport, for every kind of token and failure', () => {
  let h;
  let fast;
  let strategyRuns;
  const { seen, keep } = secretsSeen();
  harnessHooks({ db: 'fast-path', version: 'v0.8', env: { JWT_FAST_PATH: 'true' } }, (made) => (h = made), { each: clearWorld, seen });

  beforeAll(() => {
    // customJwtStrategy() found JWT_FAST_PATH on when the app was built, and put itself in front of passport.
    fast = passport.authenticate;
    expect(Object.prototype.hasOwnProperty.call(passport, 'authenticate')).toBe(true);
    const proto = Object.getPrototypeOf(passport._strategy('jwt'));
    const run = proto.authenticate;
    proto.authenticate = function counted(...args) {
      strategyRuns += 1;
      return run.apply(this, args);
    };
  });
  afterEach(() => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    saved.clear();
  });
  afterAll(() => {
    passport.authenticate = fast;
  });

  /**
   * A fresh service and world, the way through chosen, then the row's setup: the request's headers.
   * The row's variables go to LibreChat's side too (its preAuthTenant reads TRUST_TENANT_HEADER).
   */
  const saved = new Map();
  async function prepare(way, row) {
    for (const [k, v] of Object.entries(row.env ?? {})) {
      if (!saved.has(k)) saved.set(k, process.env[k]);
      process.env[k] = v;
    }
    await h.reconfigure(row.env ?? {});
    await h.clear();
    h.mock.reset();
    if (way === 'fast') passport.authenticate = fast;
    else if (way === 'passport') delete passport.authenticate; // passport's own, from its prototype
    return row.setup();
  }

  const bearer = (token) => ({ Authorization: `Bearer ${token}` });
  const login = () => loginSession(h.app, ALICE, seen);
  const send = (path, headers) => request(h.app).get(path).set(headers).then((res) => res);

  // Each row: setup() -> headers (after whatever makes the state it names), the status passport answers,
  // memory: answered from memory (the fast path's own rows).
  const ROWS = [
    { name: 'no Authorization header', status: 401, setup: async () => ({}) },
    { name: 'a Basic Authorization header', status: 401, setup: async () => ({ Authorization: 'Basic YWxpY2U6cGFzcw==' }) },
    { name: 'Bearer with no token', status: 401, setup: async () => ({ Authorization: 'Bearer ' }) },
    { name: 'a token that is not a JWT', status: 401, setup: async () => bearer('not-a-jwt') },
    {
      name: 'a LibreChat token with a forged signature', status: 401,
      setup: async () => bearer(keep(jwt.sign({ id: '0123456789abcdef01234567' }, 'not-the-secret', { expiresIn: '5m' }))),
    },
    {
      name: 'an expired LibreChat token', status: 401,
      setup: async () => {
        const { userId } = await login();
        return bearer(keep(jwt.sign({ id: userId, exp: Math.floor(Date.now() / 1000) - 60 }, h.vars.JWT_SECRET)));
      },
    },
    {
      name: "a 2FA temp token (LibreChat's twoFAPending)", status: 401,
      setup: async () => {
        const { userId } = await login();
        return bearer(keep(jwt.sign({ userId, twoFAPending: true }, h.vars.JWT_SECRET, { expiresIn: '5m' })));
      },
    },
    {
      name: 'a LibreChat token, its user cached', status: 200,
      memory: true,
      setup: async () => {
        const { token } = await login();
        expect((await send('/api/user', bearer(token))).status).toBe(200);
        return bearer(token);
      },
    },
    {
      name: 'a LibreChat token, its user not cached (loaded from the database)', status: 200,
      setup: async () => {
        const { token, userId } = await login();
        h.service.evictUser(userId);
        return bearer(token);
      },
    },
    {
      name: 'a LibreChat token, user cache off (USER_CACHE_TTL=0)', status: 200,
      env: { USER_CACHE_TTL: '0' },
      setup: async () => bearer((await login()).token),
    },
    {
      name: 'a LibreChat token of a deleted user', status: 401,
      setup: async () => {
        const { token, userId } = await login();
        await h.db.collection('users').deleteMany({});
        h.service.evictUser(userId);
        return bearer(token);
      },
    },
    {
      name: 'a LibreChat token after log out everywhere', status: 401,
      setup: async () => {
        const { token } = await login();
        expect((await request(h.app).post('/api/auth/logout/all').set(bearer(token)).then((r) => r)).status).toBe(200);
        return bearer(token);
      },
    },
    {
      name: 'a LibreChat token of another tenant (TRUST_TENANT_HEADER)', status: 401,
      env: { TRUST_TENANT_HEADER: 'true' },
      setup: async () => {
        const { token } = await loginSessionIn('acme');
        expect((await send('/api/user', { ...bearer(token), 'X-Tenant-Id': 'acme' })).status).toBe(200);
        return { ...bearer(token), 'X-Tenant-Id': 'globex' };
      },
    },
    {
      name: 'a LibreChat token of a tenant, its user cached (the tenant context after it)', status: 200,
      env: { TRUST_TENANT_HEADER: 'true' },
      memory: true,
      setup: async () => {
        const { token } = await loginSessionIn('acme');
        const headers = { ...bearer(token), 'X-Tenant-Id': 'acme' };
        expect((await send('/api/user', headers)).status).toBe(200);
        return headers;
      },
    },
    {
      name: 'a LibreChat token with the OpenID cookie of LibreChat (token_provider=openid)', status: 200,
      memory: true,
      setup: async () => {
        const { token } = await login();
        expect((await send('/api/user', bearer(token))).status).toBe(200);
        return { ...bearer(token), Cookie: 'token_provider=openid' };
      },
    },
    {
      name: 'a backend token seen the first time (user info)', status: 200,
      setup: async () => {
        await login();
        return bearer(keep(h.mock.issueAccessToken('u-1001')));
      },
    },
    {
      name: 'a backend token, its verdict and user cached', status: 200,
      memory: true,
      setup: async () => {
        await login();
        const t = keep(h.mock.issueAccessToken('u-1001'));
        expect((await send('/api/user', bearer(t))).status).toBe(200);
        return bearer(t);
      },
    },
    {
      name: 'a backend token the backend refuses', status: 401,
      setup: async () => bearer('at_not-a-real-token-0000'),
    },
    {
      name: 'a backend token while the backend is down (503)', status: 503,
      setup: async () => {
        await login();
        h.mock.set({ userinfo: { status: 503 } });
        return bearer(keep(h.mock.issueAccessToken('u-1001')));
      },
    },
    {
      name: 'a backend token with BACKEND_BEARER_TOKENS=off', status: 401,
      env: { BACKEND_BEARER_TOKENS: 'off' },
      setup: async () => bearer(keep(h.mock.issueAccessToken('u-1001'))),
    },
  ];

  /** Logs Alice in through the X-Tenant-Id header of `tenant`. */
  async function loginSessionIn(tenant) {
    const res = await request(h.app).post('/api/auth/login').set('X-Tenant-Id', tenant).send(ALICE).then((r) => r);
    expect(res.status).toBe(200);
    return { token: keep(res.body.token) };
  }

  /** What a client and the route can tell of an answer. Ids and dates differ between runs: masked. */
  function answerOf(res) {
    const mask = (text) =>
      text
        .replace(/[0-9a-f]{24}/g, '<id>')
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/g, '<date>');
    return {
      status: res.status,
      body: mask(res.text),
      contentType: res.headers['content-type'] ?? null,
      wwwAuthenticate: res.headers['www-authenticate'] ?? null,
      retryAfter: res.headers['retry-after'] ?? null,
    };
  }

  for (const [form, path] of FORMS) {
    describe(form, () => {
      test.each(ROWS.map((row) => [row.name, row]))('%s', async (_name, row) => {
        const answers = {};
        const runs = {};
        for (const way of ['passport', 'fast']) {
          const headers = await prepare(way, row);
          strategyRuns = 0;
          answers[way] = answerOf(await send(path, headers));
          runs[way] = strategyRuns;
        }
        expect(answers.passport.status).toBe(row.status);
        expect(answers.fast).toEqual(answers.passport);
        // Through passport the strategy runs once (none without a 'jwt' attempt); the fast path
        // answers the rows of memory without it, and hands every other row to passport.
        expect(runs.passport).toBe(1);
        expect(runs.fast).toBe(row.memory ? 0 : 1);
      });
    });
  }

  test('a 200 is what a route behind passport sees: req.user, authInfo, authStrategy, the tenant context', async () => {
    const row = ROWS.find((r) => r.name.startsWith('a LibreChat token of a tenant, its user cached'));
    const headers = await prepare('fast', row);
    const before = h.service.metrics().jwtFastPathAnswers;
    const res = await send('/api/test/route-sees', headers);
    expect(res.status).toBe(200);
    expect(h.service.metrics().jwtFastPathAnswers).toBe(before + 1); // librechat_custom_backend_jwt_fast_path_answers_total
    expect(res.body).toMatchObject({
      authStrategy: 'jwt',
      authInfo: 'unset',
      tenant: 'acme',
      passport: { login: 'function', logout: 'function', isAuthenticated: true, sessionManager: true },
      user: { email: 'alice@example.com', tenantId: 'acme' },
    });
    const classic = await send('/api/test/route-sees-classic', headers);
    expect(classic.body).toMatchObject({ authInfo: {}, authStrategy: null, user: { email: 'alice@example.com' } });
  });

  test("an application's own wrapper of passport.authenticate stays in front of every call but the fast path's answers", async () => {
    const { installFastPath } = require('../lib/fastPath');
    const strategy = passport._strategy('jwt');
    const own = Object.getPrototypeOf(passport).authenticate;
    const names = [];
    const wrapper = function wrapped(name, ...rest) {
      names.push(name);
      return own.call(passport, name, ...rest);
    };
    try {
      passport.authenticate = wrapper;
      installFastPath(passport, strategy);
      expect(passport.authenticate.beforeFastPath).toBe(wrapper);
      const cached = await prepare('keep', ROWS.find((r) => r.name === 'a LibreChat token, its user cached'));
      names.length = 0;
      expect((await send('/api/test/route-sees', cached)).status).toBe(200); // from memory: not the wrapper's
      expect((await send('/api/test/route-sees', { Authorization: 'Bearer not-a-jwt' })).status).toBe(401);
      expect(names).toEqual(['jwt']); // the refused token went through the wrapper to passport
    } finally {
      passport.authenticate = fast;
    }
  });

  test('other strategies and other options are passport\'s own', async () => {
    const own = Object.getPrototypeOf(passport).authenticate;
    passport.authenticate = fast;
    // A session login, a callback without options, a redirect on success: none is the fast path's.
    for (const args of [['jwt'], ['jwt', () => {}], ['jwt', { session: false, successRedirect: '/' }], ['local', { session: false }]]) {
      expect(fast(...args).name).toBe(own.call(passport, ...args).name);
    }
    expect(fast('jwt', { session: false }).name).toBe('jwtFastPath');
  });
});
