'use strict';

// Issue 14 ("tests an auth reviewer would trust"): checks of the test harness itself, and the items
// that have no better home. Each was seen failing against deliberately broken code.

const request = require('supertest');
const { startHarness, shape } = require('./support/harness');

describe('#14.3 the secrets-in-logs check searches every secret a test sends or configures', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'review-secrets' });
  });
  afterEach(() => {
    h.logs.lines.length = 0; // the lines planted below must not fail close()
  });
  afterAll(() => h.close());

  const planted = (line) => {
    h.logs.logger.warn(line);
    return () => h.assertNoSecretsLogged();
  };

  test('#14.3 a wrong password a request sent', async () => {
    await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'a-wrong-password-9' });
    expect(planted('login failed: a-wrong-password-9')).toThrow(/secret appears/);
  });

  test('#14.3 JWT_SECRET, JWT_REFRESH_SECRET and BACKEND_TOKEN_ENCRYPTION_KEY', () => {
    for (const name of ['JWT_SECRET', 'JWT_REFRESH_SECRET', 'BACKEND_TOKEN_ENCRYPTION_KEY']) {
      expect(planted(`value ${h.vars[name]}`)).toThrow(/secret appears/);
      h.logs.lines.length = 0;
    }
  });

  test('#14.3 the password of a MONGO_URI configured later', async () => {
    await h.reconfigure({ MONGO_URI: 'mongodb://lc:s3cr3t-pass%2Dword@127.0.0.1:9/x', MONGO_TIMEOUT_MS: '200' });
    expect(planted('cannot reach the database with s3cr3t-pass-word')).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    await h.reconfigure({ MONGO_URI: h.vars.MONGO_URI });
  });

  test('#14.3 an access token and a refresh token the app answered, and a bearer token a request sent', async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    const refresh = /refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1];
    expect(planted(`token ${res.body.token}`)).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    expect(planted(`refresh ${decodeURIComponent(refresh)}`)).toThrow(/secret appears/);
    h.logs.lines.length = 0;
    await request(h.app).get('/api/user').set('Authorization', 'Bearer some-forged-token-123');
    expect(planted('refused some-forged-token-123')).toThrow(/secret appears/);
  });
});

describe('#14.1 refreshes in a row carry the backend refresh token the backend last issued', () => {
  let h;
  let answers;
  const login = async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    expect(res.status).toBe(200);
    return res;
  };
  const cookieOf = (res) => `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
  const refresh = (cookie) => request(h.app).post('/api/auth/refresh').set('Cookie', cookie);
  const sentRefreshTokens = () => h.mock.requests.filter((r) => r.name === 'refresh').map((r) => r.body.refreshToken);

  beforeAll(async () => {
    h = await startHarness({ db: 'review-refresh-chain' });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
    answers = [];
    h.mock.set({
      beforeSend: async ({ name, answer }) => {
        if (name === 'login' || name === 'refresh') answers.push({ name, refreshToken: answer?.refreshToken });
      },
    });
  });
  afterAll(() => h.close());

  test('#14.1 three refreshes with the rotated cookie: each sends the token the previous answer rotated to', async () => {
    let res = await login();
    for (let i = 0; i < 3; i += 1) {
      res = await refresh(cookieOf(res));
      expect(res.status).toBe(200);
    }
    const issued = answers.map((a) => a.refreshToken);
    expect(new Set(issued).size).toBe(4); // the login's and three rotations
    expect(sentRefreshTokens()).toEqual(issued.slice(0, 3));
  });

  test('#14.1 a refresh answer without a refresh token keeps the previous one', async () => {
    h.mock.set({ refresh: { rotateRefresh: false, omitRefreshToken: true } });
    let res = await login();
    for (let i = 0; i < 2; i += 1) {
      res = await refresh(cookieOf(res));
      expect(res.status).toBe(200);
    }
    const fromLogin = answers[0].refreshToken;
    expect(answers.slice(1).map((a) => a.refreshToken)).toEqual([undefined, undefined]);
    expect(sentRefreshTokens()).toEqual([fromLogin, fromLogin]);
  });
});

describe('#14.2 the policy applies to backend bearer tokens, in both modes', () => {
  let h;
  const get = (token) => request(h.app).get('/api/user').set('Authorization', `Bearer ${token}`);
  const MODES = {
    userinfo: () => ({ BACKEND_BEARER_TOKENS: 'userinfo' }),
    jwks: () => ({
      BACKEND_BEARER_TOKENS: 'jwks',
      BACKEND_JWKS_URL: h.mock.urls.jwks,
      BACKEND_JWT_ISSUER: h.mock.issuer,
      BACKEND_JWT_AUDIENCE: 'librechat',
    }),
  };
  const token = (mode, userId) => {
    h.mock.set({ jwtTokens: mode === 'jwks' ? 'RS256' : false });
    return h.mock.issueAccessToken(userId);
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'review-bearer-policy' });
    for (const [email, password] of [['Alice', 'alice-password-1'], ['bob', 'bob-password-2'], ['carol', 'carol-password-3']]) {
      expect((await request(h.app).post('/api/auth/login').send({ email, password })).status).toBe(200);
    }
  });
  afterAll(() => h.close());

  describe.each(Object.keys(MODES))('%s', (mode) => {
    test('#14.2 BACKEND_REQUIRED_ROLES: a token of a user without the role is 403, and stays 403 from the cache', async () => {
      await h.reconfigure({ ...MODES[mode](), BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'admin' });
      const alice = token(mode, 'u-1001');
      for (let i = 0; i < 2; i += 1) {
        const res = await get(alice);
        expect(res.status).toBe(403);
        expect(res.body.message).toMatch(/role/i);
      }
      const bob = await get(token(mode, 'u-1002'));
      expect(bob.status).toBe(200);
      expect(bob.body.username).toBe('bob');
    });

    test('#14.2 BACKEND_ALLOWED_EMAIL_DOMAINS: a token of a user of another domain is 403, and stays 403 from the cache', async () => {
      await h.reconfigure({ ...MODES[mode](), BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.com' });
      const carol = token(mode, 'u-1003');
      for (let i = 0; i < 2; i += 1) {
        const res = await get(carol);
        expect(res.status).toBe(403);
        expect(res.body.message).toMatch(/domain|email/i);
      }
      expect((await get(token(mode, 'u-1001'))).status).toBe(200);
    });
  });

  test('#14.2 with JWKS and a domain list, a token without an email claim is refused', async () => {
    await h.reconfigure({ ...MODES.jwks(), BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.com' });
    const iat = Math.floor(Date.now() / 1000);
    const claims = { sub: 'u-1001', iss: h.mock.issuer, aud: 'librechat', iat, exp: iat + 600 };
    expect((await get(h.mock.signJwt(claims, { alg: 'RS256' }))).status).toBe(403);
    expect((await get(h.mock.signJwt({ ...claims, email: 'alice@example.com' }, { alg: 'RS256' }))).status).toBe(200);
  });
});

describe('#14.4 the backend says no at refresh: 401, session deleted, cookies cleared, fresh backend tokens ended', () => {
  let h;
  const login = async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    expect(res.status).toBe(200);
    return `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
  };
  const refresh = (cookie) => request(h.app).post('/api/auth/refresh').set('Cookie', cookie);
  const expectEnded = async (res) => {
    expect(res.status).toBe(401);
    const cleared = res.headers['set-cookie'].filter((c) => /^(refreshToken|token_provider)=;/.test(c));
    expect(cleared).toHaveLength(2);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'review-refresh-refused' });
    await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test.each([
    ['a 400', { status: 400 }],
    ['a 403', { status: 403 }],
    ['a 2xx with `error` and no token', { status: 200, body: { error: 'invalid_grant' } }],
  ])('#14.4 %s to the refresh call', async (_label, answer) => {
    const cookie = await login();
    h.mock.set({ refresh: answer });
    await expectEnded(await refresh(cookie));
    expect(h.mock.calls.refresh).toBe(1);
  });

  test('#14.4 user info refusing the new access token: the tokens just received are ended at the backend', async () => {
    const cookie = await login();
    h.mock.set({ userinfo: { status: 401 } });
    await expectEnded(await refresh(cookie));
    expect(h.mock.calls.logout).toBe(1);
    const ended = h.mock.requests.find((r) => r.name === 'logout').body.refreshToken;
    expect(h.mock.tokenInfo(ended)).toMatchObject({ revoked: true });
  });

  test('#14.4 a domain no longer allowed', async () => {
    const cookie = await login();
    await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout, BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.org' });
    await expectEnded(await refresh(cookie));
    expect(h.mock.calls.logout).toBe(1);
    await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
  });

  test('#14.4 an answer naming another backend user: nothing is written for that identity', async () => {
    const cookie = await login();
    h.mock.set({ userinfo: { userFields: (u) => ({ ...u, id: 'u-7777', email: 'eve@example.com', username: 'eve' }) } });
    await expectEnded(await refresh(cookie));
    const users = h.db.collection('users');
    expect(await users.countDocuments({ $or: [{ idOnTheSource: 'u-7777' }, { email: 'eve@example.com' }, { username: 'eve' }] })).toBe(0);
    expect(await users.countDocuments({})).toBe(1);
  });
});

describe('#14.8 LibreChat access tokens at the edges', () => {
  let h;
  let alice;
  const jwt = require('jsonwebtoken');
  const get = (authorization) => request(h.app).get('/api/user').set('Authorization', authorization);
  const sign = (payload, options = {}) => jwt.sign(payload, h.vars.JWT_SECRET, { algorithm: 'HS256', ...options });

  beforeAll(async () => {
    h = await startHarness({ db: 'review-access-tokens' });
    alice = (await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' })).body.user;
  });
  beforeEach(() => h.mock.reset());
  afterAll(() => h.close());

  test('#14.8 a token without exp is refused, though signed with JWT_SECRET', async () => {
    const noExp = sign({ id: alice.id, username: 'alice' });
    expect(h.service.checkBearer(noExp).kind).toBe('invalid');
    expect((await get(`Bearer ${noExp}`)).status).toBe(401);
    expect((await get(`Bearer ${sign({ id: alice.id, username: 'alice' }, { expiresIn: 60 })}`)).status).toBe(200);
  });

  test.each([
    ['empty', '', 'invalid'],
    ['numeric', 12345, 'invalid'],
    ['an ObjectId of nobody', '000000000000000000000000', 'load'],
  ])('#14.8 an id that is %s is refused', async (_label, id, kind) => {
    const token = sign({ id }, { expiresIn: 60 });
    // An empty or numeric id is no access token at all; a well-formed one is looked up and not found.
    expect(h.service.checkBearer(token).kind).toBe(kind);
    expect((await get(`Bearer ${token}`)).status).toBe(401);
    expect(h.mock.calls.userinfo).toBe(0);
  });

  test('#14.8 the scheme in lower case is accepted, as passport-jwt does', async () => {
    expect((await get(`bearer ${sign({ id: alice.id }, { expiresIn: 60 })}`)).status).toBe(200);
  });

  test('#14.8 a token with a character that is not printable ASCII is refused without a backend call', async () => {
    const res = await get(`Bearer at_token-with-\u00e9-inside-000000`);
    expect(res.status).toBe(401);
    expect(h.mock.calls.userinfo).toBe(0);
  });

  test('#14.8 the 8192-character bound: a token of 8192 characters reaches the backend, one of 8193 does not', async () => {
    expect((await get(`Bearer at_${'x'.repeat(8189)}`)).status).toBe(401);
    expect(h.mock.calls.userinfo).toBe(1);
    expect((await get(`Bearer at_${'x'.repeat(8190)}`)).status).toBe(401);
    expect(h.mock.calls.userinfo).toBe(1);
  });
});

describe('#14.9 backend tokens checked with JWKS', () => {
  let h;
  const get = (token) => request(h.app).get('/api/user').set('Authorization', `Bearer ${token}`);
  const env = (extra = {}) => ({
    BACKEND_BEARER_TOKENS: 'jwks',
    BACKEND_JWKS_URL: h.mock.urls.jwks,
    BACKEND_JWT_ISSUER: h.mock.issuer,
    ...extra,
  });
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra = {}) => ({ sub: 'u-1001', iss: h.mock.issuer, email: 'Alice@Example.com', iat: now(), exp: now() + 600, ...extra });

  beforeAll(async () => {
    h = await startHarness({ db: 'review-jwks' });
    expect((await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' })).status).toBe(200);
    h.mock.set({ jwtTokens: 'RS256' });
  });
  beforeEach(() => h.mock.reset());
  afterAll(() => h.close());

  test('#14.9 a token whose alg differs from its key\'s, or without kid, exp or iss, is 401', async () => {
    await h.reconfigure(env());
    const good = h.mock.signJwt(claims(), { alg: 'RS256' });
    expect((await get(good)).status).toBe(200);
    const rsKid = JSON.parse(Buffer.from(good.split('.')[0], 'base64url').toString()).kid;
    const { exp, iss, ...rest } = claims(); // eslint-disable-line no-unused-vars
    const bad = {
      algDiffers: h.mock.signJwt(claims(), { alg: 'ES256', kid: rsKid }),
      noKid: h.mock.signJwt(claims(), { alg: 'RS256', kid: null }),
      noExp: h.mock.signJwt({ ...rest, iss }, { alg: 'RS256' }),
      noIss: h.mock.signJwt({ ...rest, exp }, { alg: 'RS256' }),
    };
    for (const [name, t] of Object.entries(bad)) expect([name, (await get(t)).status]).toEqual([name, 401]);
  });

  test('#14.9 the key set is fetched again after BACKEND_JWKS_CACHE_TTL, and once for many requests before', async () => {
    // No stale answers (BACKEND_JWKS_MAX_STALE=0): past the TTL a request waits for the new fetch.
    await h.reconfigure(env({ BACKEND_JWKS_CACHE_TTL: '3', BACKEND_JWKS_MAX_STALE: '0' }));
    for (let i = 0; i < 5; i += 1) expect((await get(h.mock.signJwt(claims({ jti: `j${i}` }), { alg: 'RS256' }))).status).toBe(200);
    expect(h.mock.calls.jwks).toBe(1);
    await new Promise((r) => setTimeout(r, 3100));
    expect((await get(h.mock.signJwt(claims({ jti: 'later' }), { alg: 'RS256' }))).status).toBe(200);
    expect(h.mock.calls.jwks).toBe(2);
  });

  test('#14.9 a verdict is cached: the same token many times verifies once', async () => {
    await h.reconfigure(env());
    const t = h.mock.signJwt(claims(), { alg: 'RS256' });
    for (let i = 0; i < 5; i += 1) expect((await get(t)).status).toBe(200);
    expect(h.mock.calls.jwks).toBe(1);
    expect(h.service.checkBearer(t).kind).toBe('user'); // served from the verdict and user caches
  });

  test('#14.9 BACKEND_JWT_ID_CLAIM names the claim holding the backend id', async () => {
    await h.reconfigure(env({ BACKEND_JWT_ID_CLAIM: 'uid' }));
    expect((await get(h.mock.signJwt(claims({ sub: 'someone-else', uid: 'u-1001' }), { alg: 'RS256' }))).status).toBe(200);
    expect((await get(h.mock.signJwt(claims({ sub: 'u-1001', uid: 'u-4040' }), { alg: 'RS256' }))).status).toBe(401);
  });

  test('#14.9 without a username claim, preferred_username names a provisioned user', async () => {
    await h.reconfigure(env({ BACKEND_PROVISION_ON_BEARER: 'true' }));
    const t = h.mock.signJwt(claims({ sub: 'u-5150', email: 'zed@example.com', preferred_username: 'Zeddy', name: 'Zed' }), { alg: 'RS256' });
    const res = await get(t);
    expect(res.status).toBe(200);
    expect(res.body.username).toBe('zeddy');
  });
});

describe('#14.6 refresh tokens that do not fit their session', () => {
  let h;
  const jwt = require('jsonwebtoken');
  const { ObjectId } = require('bson');
  const login = async (email, password) => {
    const res = await request(h.app).post('/api/auth/login').send({ email, password });
    expect(res.status).toBe(200);
    const refreshToken = decodeURIComponent(/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]);
    return { userId: res.body.user.id, refreshToken, ...jwt.decode(refreshToken) };
  };
  const refresh = (token) => request(h.app).post('/api/auth/refresh').set('Cookie', `refreshToken=${encodeURIComponent(token)}`);
  const sign = (payload) => jwt.sign(payload, h.vars.JWT_REFRESH_SECRET, payload.exp ? {} : { expiresIn: 600 });
  const expectRefused = (res) => {
    expect(res.status).toBe(401);
    const cleared = (res.headers['set-cookie'] ?? []).filter((c) => /^(refreshToken|token_provider)=;/.test(c));
    expect(cleared).toHaveLength(2);
  };
  const sessions = () => h.db.collection('sessions');

  beforeAll(async () => {
    h = await startHarness({ db: 'review-refresh-tokens' });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test('#14.6 a valid refresh JWT naming another user\'s session: 401, both sessions untouched, no backend call', async () => {
    const alice = await login('Alice', 'alice-password-1');
    const bob = await login('bob', 'bob-password-2');
    const before = await sessions().find({}).sort({ _id: 1 }).toArray();
    expectRefused(await refresh(sign({ id: alice.userId, sessionId: bob.sessionId })));
    expect(await sessions().find({}).sort({ _id: 1 }).toArray()).toEqual(before);
    expect(h.mock.calls.refresh).toBe(0);
  });

  test('#14.6 an expired refresh JWT: 401, no backend call', async () => {
    const alice = await login('Alice', 'alice-password-1');
    const iat = Math.floor(Date.now() / 1000) - 120;
    expectRefused(await refresh(sign({ id: alice.userId, sessionId: alice.sessionId, iat, exp: iat + 60 })));
    expect(h.mock.calls.refresh).toBe(0);
    expect(await sessions().countDocuments({})).toBe(1);
  });

  test('#14.6 a session id with no document: 401, no backend call', async () => {
    const alice = await login('Alice', 'alice-password-1');
    expectRefused(await refresh(sign({ id: alice.userId, sessionId: new ObjectId().toHexString() })));
    expect(h.mock.calls.refresh).toBe(0);
  });

  test('#14.6 an expired session: 401, the session document is deleted and the cookies cleared', async () => {
    const alice = await login('Alice', 'alice-password-1');
    await sessions().updateOne({ _id: new ObjectId(alice.sessionId) }, { $set: { expiration: new Date(Date.now() - 1000) } });
    expectRefused(await refresh(alice.refreshToken));
    expect(await sessions().countDocuments({})).toBe(0);
    expect(h.mock.calls.refresh).toBe(0);
  });
});

describe('#14.5 the refresh lease', () => {
  let h;
  const sessions = () => h.db.collection('sessions');
  const login = async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    expect(res.status).toBe(200);
    return `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
  };
  const refresh = (cookie) => request(h.app).post('/api/auth/refresh').set('Cookie', cookie);

  beforeAll(async () => {
    // 3 s: the lost-lease test's backend call holds a database write, which a loaded machine can
    // stretch past a shorter timeout (then 504, not the 503 under test).
    h = await startHarness({ db: 'review-lease', env: { BACKEND_TIMEOUT_MS: '3000' } });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test('#14.5 the lease lasts BACKEND_TIMEOUT_MS + 5 s and is released after the refresh', async () => {
    const cookie = await login();
    let lock;
    h.mock.set({ refresh: { beforeSend: async () => { lock = (await sessions().findOne({})).customBackend.lock; } } });
    expect((await refresh(cookie)).status).toBe(200);
    expect(lock.until.getTime() - lock.since.getTime()).toBe(3000 + 5000);
    expect((await sessions().findOne({})).customBackend.lock ?? null).toBeNull();
  });

  test('#14.5 a lease another server keeps taking: the refresh waits BACKEND_TIMEOUT_MS + 5 s, then 503 with Retry-After, session kept', async () => {
    const cookie = await login();
    const hold = () => sessions().updateOne({}, { $set: { 'customBackend.lock': { owner: 'busy-server', since: new Date(), until: new Date(Date.now() + 6000) } } });
    await hold();
    const keepTaking = setInterval(() => hold().catch(() => {}), 200);
    try {
      const res = await refresh(cookie);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers['set-cookie']).toBeUndefined();
    } finally {
      clearInterval(keepTaking);
    }
    expect(h.mock.calls.refresh).toBe(0);
    expect(await sessions().countDocuments({})).toBe(1);
  }, 30_000);

  test('#14.5 a lease lost during the backend call: 503, the session kept, and the retry refreshes', async () => {
    const cookie = await login();
    h.mock.set({
      refresh: {
        rotateRefresh: false,
        beforeSend: async () => {
          await sessions().updateOne({}, { $set: { 'customBackend.lock': { owner: 'other-server', since: new Date(), until: new Date(Date.now() + 6000) } } });
        },
      },
    });
    const res = await refresh(cookie);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(await sessions().countDocuments({})).toBe(1);
    h.mock.set({ refresh: { rotateRefresh: false, beforeSend: null } });
    await sessions().updateOne({}, { $unset: { 'customBackend.lock': '' } });
    expect((await refresh(cookie)).status).toBe(200);
  });
});

describe('#14.12 session documents are LibreChat\'s', () => {
  let h;
  const { ObjectId } = require('bson');

  beforeAll(async () => {
    h = await startHarness({ db: 'review-session-docs' });
  });
  afterAll(() => h.close());

  test('#14.12 field by field and by BSON type as LibreChat\'s createSession writes it, plus our customBackend field', async () => {
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    const userId = res.body.user.id;
    const { session: theirs } = await h.lc.methods.createSession(userId);
    const raw = h.db.collection('sessions');
    const theirsRaw = await raw.findOne({ _id: theirs._id });
    const oursRaw = await raw.findOne({ _id: { $ne: theirs._id } });
    const { customBackend, ...ours } = shape(oursRaw);
    expect(ours).toEqual(shape(theirsRaw));
    expect(customBackend).toMatchObject({ accessToken: 'string', refreshToken: 'string' });
    expect(oursRaw.user).toEqual(new ObjectId(userId));
  });

  test('#14.12 LibreChat\'s own logout (logoutUser: findSession by user and refresh token, then deleteSession) ends one of ours', async () => {
    await h.clear();
    const res = await request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });
    const refreshToken = decodeURIComponent(/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]);
    const session = await h.lc.methods.findSession({ userId: res.body.user.id, refreshToken });
    expect(session).not.toBeNull();
    expect((await h.lc.methods.deleteSession({ sessionId: session._id })).deletedCount).toBe(1);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    const refresh = await request(h.app).post('/api/auth/refresh').set('Cookie', `refreshToken=${encodeURIComponent(refreshToken)}`);
    expect(refresh.status).toBe(401);
  });
});

describe('#14.14 LibreChat\'s middleware around our login behaves as LibreChat\'s', () => {
  let h;
  const BALANCE = { enabled: true, startBalance: 500, autoRefillEnabled: true, refillIntervalValue: 30, refillIntervalUnit: 'days', refillAmount: 100 };
  const login = () => request(h.app).post('/api/auth/login').send({ email: 'Alice', password: 'alice-password-1' });

  beforeAll(async () => {
    h = await startHarness({ db: 'review-chain', appConfig: { balance: BALANCE } });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test('#14.14 setBalanceConfig runs after our login on the user it set: LibreChat\'s balance document with its refill fields', async () => {
    const res = await login();
    expect(res.status).toBe(200);
    const balance = await h.db.collection('balances').findOne({});
    expect(balance.user.toString()).toBe(res.body.user.id);
    expect(balance).toMatchObject({ tokenCredits: 500, autoRefillEnabled: true, refillIntervalValue: 30, refillIntervalUnit: 'days', refillAmount: 100 });
    expect(balance.lastRefill).toBeInstanceOf(Date);
    expect(await h.lc.methods.findBalanceByUser(res.body.user.id)).toMatchObject({ tokenCredits: 500 });
  });

  test('#14.14 loginLimiter runs before the backend: past LOGIN_MAX the answer is 429 and the backend is not asked', async () => {
    const saved = process.env.LOGIN_MAX;
    process.env.LOGIN_MAX = '2';
    try {
      const statuses = [];
      // A client of its own (trust proxy 1: the address X-Forwarded-For names), counted per IP.
      for (let i = 0; i < 3; i += 1) statuses.push((await login().set('X-Forwarded-For', '203.0.113.7')).status);
      expect(statuses).toEqual([200, 200, 429]);
      expect(h.mock.calls.login).toBe(2);
      expect((await login()).status).toBe(200); // another IP
    } finally {
      process.env.LOGIN_MAX = saved;
    }
  });
});

describe('#14.10 statuses no test had exercised', () => {
  let h;
  const login = (body = { email: 'Alice', password: 'alice-password-1' }) => request(h.app).post('/api/auth/login').send(body);
  const cookieOf = (res) => `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
  const expectLoginRefused = (res, status, code) => {
    expect([res.status, res.body.code]).toEqual([status, code]);
    expect(res.headers['set-cookie']).toBeUndefined();
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'review-statuses' });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test('#14.10 a backend 429 at login: 429 BACKEND_RATE_LIMITED ("too many attempts" on the page)', async () => {
    h.mock.set({ login: { status: 429 } });
    expectLoginRefused(await login(), 429, 'BACKEND_RATE_LIMITED');
  });

  test.each([[400], [422]])('#14.10 a backend %i at login is the backend failing, not a wrong password: 500 BACKEND_BAD_RESPONSE', async (status) => {
    h.mock.set({ login: { status } });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test('#14.10 a login answer over 1 MiB: 500 BACKEND_BAD_RESPONSE, nothing written', async () => {
    h.mock.set({ login: { status: 200, body: { token: 'at_x', user: { id: 'u-1001', email: 'alice@example.com', pad: 'x'.repeat(1024 * 1024) } } } });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test.each([
    ['an id', (u) => ({ ...u, id: 'u'.repeat(1025) })],
    ['an email', (u) => ({ ...u, email: `${'a'.repeat(1020)}@example.com` })],
  ])('#14.10 %s over 1024 characters in the backend\'s user: 500 BACKEND_BAD_RESPONSE at login, nothing written', async (_label, userFields) => {
    h.mock.set({ userFields });
    expectLoginRefused(await login(), 500, 'BACKEND_BAD_RESPONSE');
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
  });

  test('#14.10 a backend 429 on a bearer check: 503, and at refresh: the session kept', async () => {
    const first = await login();
    h.mock.set({ userinfo: { status: 429 } });
    const bearer = await request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`);
    expect(bearer.status).toBe(503);
    h.mock.set({ refresh: { status: 429 } });
    const res = await request(h.app).post('/api/auth/refresh').set('Cookie', cookieOf(first));
    expect(res.status).not.toBe(401);
    expect((res.headers['set-cookie'] ?? []).filter((c) => /^refreshToken=;/.test(c))).toEqual([]);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
  });

  test('#14.10 redirects on user info and refresh are not followed', async () => {
    const first = await login();
    // Each points at itself: a client that followed would call again.
    h.mock.set({
      userinfo: { status: 302, body: {}, headers: { Location: h.mock.urls.userinfo } },
      refresh: { status: 307, body: {}, headers: { Location: h.mock.urls.refresh } },
    });
    const bearer = await request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`);
    expect(bearer.status).toBe(503);
    expect(h.mock.calls.userinfo).toBe(1);
    const res = await request(h.app).post('/api/auth/refresh').set('Cookie', cookieOf(first));
    expect(res.status).not.toBe(401);
    expect(h.mock.calls.refresh).toBe(1);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
  });
});

describe('#14.11 one log line per failure: its prefix, its code, warn for 4xx and error for 5xx', () => {
  let h;
  const login = (body = { email: 'Alice', password: 'alice-password-1' }) => request(h.app).post('/api/auth/login').send(body);
  /** The lines the package wrote while `act` ran. */
  const linesOf = async (act) => {
    const before = h.logs.lines.length;
    await act();
    return h.logs.lines.slice(before).filter((l) => l.includes('[customBackendAuth]'));
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'review-log-lines' });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.reset();
  });
  afterAll(() => h.close());

  test.each([
    ['a wrong password', {}, { email: 'Alice', password: 'wrong-password-1' }, /^warn \[customBackendAuth\] login failed: INVALID_CREDENTIALS /],
    ['a missing password', {}, { email: 'Alice' }, /^warn \[customBackendAuth\] login failed: BAD_REQUEST /],
    ['a backend that is down', { login: { status: 503 } }, undefined, /^error \[customBackendAuth\] login failed: BACKEND_UNAVAILABLE /],
    ['a backend answering garbage', { login: { malformed: true } }, undefined, /^error \[customBackendAuth\] login failed: BACKEND_BAD_RESPONSE /],
  ])('#14.11 login: %s', async (_label, switches, body, line) => {
    h.mock.set(switches);
    const lines = await linesOf(() => login(body));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });

  test('#14.11 refresh: a refusal is one warn line, an API request refused with 401 none, a 5xx token check one error line', async () => {
    const res = await login();
    const cookie = `refreshToken=${/refreshToken=([^;]+)/.exec(res.headers['set-cookie'].join(';'))[1]}`;
    h.mock.set({ refresh: { status: 401 } });
    const refused = await linesOf(() => request(h.app).post('/api/auth/refresh').set('Cookie', cookie));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^warn \[customBackendAuth\] refresh failed: [A-Z_]+ /);
    expect(await linesOf(() => request(h.app).get('/api/user').set('Authorization', 'Bearer at_not-a-token-0000'))).toEqual([]);
    h.mock.set({ userinfo: { status: 500 } });
    const down = await linesOf(() => request(h.app).get('/api/user').set('Authorization', `Bearer ${h.mock.issueAccessToken('u-1001')}`));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatch(/^error \[customBackendAuth\] token check failed: BACKEND_UNAVAILABLE /);
  });
});
