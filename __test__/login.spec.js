'use strict';

// POST /api/auth/login through the LibreChat-shaped app, on Express 5 (current LibreChat) and
// Express 4 (LibreChat 0.7.x), against the mock backend and the real test database. What the addon
// writes is read back with LibreChat's own @librechat/data-schemas models and methods.

const crypto = require('crypto');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies, shape } = require('./support/harness');
const { closedPort } = require('./support/tcpProxy');
// ALICE: a username in the email field; BOB: an email address.
const { ALICE, BOB_BY_EMAIL: BOB, CAROL, postLogin, rememberTokensIn } = require('./support/auth');

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');


describe.each([
  ['LibreChat v0.8 (Express 5)', 'express', 'v0.8', 'login-e5'],
  ['LibreChat v0.7.9 (Express 4)', 'express4', 'v0.7.9', 'login-e4'],
])('POST /api/auth/login on %s', (_label, expressModule, version, dbName) => {
  let h;
  const seenTokens = [];
  const login = (body) => postLogin(h.app, body);
  const remember = rememberTokensIn(seenTokens);

  beforeAll(async () => {
    h = await startHarness({ db: dbName, express: require(expressModule), version });
  });
  beforeEach(async () => {
    await h.clear();
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seenTokens);
    await h.close();
  });

  test('logs in, answers {token, user} and sends {username, password} as JSON to the backend', async () => {
    const res = remember(await login(ALICE));
    expect(res.status).toBe(200);
    expect(h.mock.calls.login).toBe(1);
    expect(h.mock.requests[0].headers['content-type']).toMatch(/application\/json/);
    expect(h.mock.requests[0].body).toEqual({ username: 'Alice', password: 'alice-password-1' });

    const { token, user } = res.body;
    const payload = jwt.verify(token, h.vars.JWT_SECRET, { algorithms: ['HS256'] });
    expect(Object.keys(payload).sort()).toEqual(['email', 'exp', 'iat', 'id', 'provider', 'username']);
    expect(payload).toMatchObject({ id: user._id, username: 'alice', provider: 'custom-backend', email: 'alice@example.com' });
    expect(payload.exp - payload.iat).toBe(15 * 60);
    expect(user).toMatchObject({
      id: user._id,
      email: 'alice@example.com',
      username: 'alice',
      name: 'Alice Liddell',
      provider: 'custom-backend',
      idOnTheSource: 'u-1001',
      emailVerified: true,
    });
    for (const secret of ['password', 'totpSecret', 'backupCodes', '__v']) expect(user).not.toHaveProperty(secret);
  });

  test('the token works on GET /api/user through LibreChat\'s own jwt strategy', async () => {
    const { body } = remember(await login(ALICE));
    const res = await request(h.app).get('/api/user').set('Authorization', `Bearer ${body.token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: body.user.id, email: 'alice@example.com', provider: 'custom-backend' });
  });

  test('the stored user is what LibreChat\'s User model writes, validates and is found by findUser', async () => {
    const { body } = remember(await login(ALICE));
    const { User } = h.lc.models;
    const raw = await h.db.collection('users').findOne({ _id: new ObjectId(body.user.id) });

    // LibreChat's own write of the same user, compared field by field and by BSON type.
    const reference = await User.create({
      provider: 'custom-backend',
      email: 'Ref@Example.com',
      username: 'Ref',
      name: 'Ref',
      emailVerified: true,
      role: 'USER',
      idOnTheSource: 'ref-1',
    });
    const refRaw = await h.db.collection('users').findOne({ _id: reference._id });
    expect(shape(raw)).toEqual(shape(refRaw));
    expect(Object.keys(raw)).toEqual(Object.keys(refRaw));

    expect(new User(raw).validateSync()).toBeUndefined();
    const found = await h.lc.methods.findUser({ email: 'ALICE@example.com' });
    expect(found._id.toString()).toBe(body.user.id);
    const byId = await h.lc.methods.getUserById(body.user.id, '-password -__v -totpSecret -backupCodes');
    expect(byId).toMatchObject({ provider: 'custom-backend', idOnTheSource: 'u-1001', role: 'ADMIN' });
  });

  test('starts a LibreChat session: hashed refresh token, expiry, encrypted backend tokens', async () => {
    const before = Date.now();
    const res = remember(await login(ALICE));
    const cookies = parseSetCookies(res);
    const refreshToken = cookies.refreshToken.value;
    const payload = jwt.verify(refreshToken, h.vars.JWT_REFRESH_SECRET, { algorithms: ['HS256'] });
    expect(payload.id).toBe(res.body.user.id);

    const session = await h.db.collection('sessions').findOne({ _id: new ObjectId(payload.sessionId) });
    expect(session.refreshTokenHash).toBe(sha256(refreshToken));
    expect(session.user.toString()).toBe(res.body.user.id);
    expect(session.__v).toBe(0);
    const week = 7 * 24 * 3600 * 1000;
    expect(session.expiration.getTime()).toBeGreaterThanOrEqual(before + week - 1000);
    expect(session.expiration.getTime()).toBeLessThanOrEqual(Date.now() + week);

    // The backend's tokens are stored, but never in clear text.
    const loginAnswer = h.mock.issuedTokens();
    expect(loginAnswer.length).toBeGreaterThanOrEqual(2);
    expect(session.customBackend.refreshToken).toMatch(/^v2\./);
    const stored = JSON.stringify(session);
    for (const t of loginAnswer) expect(stored).not.toContain(t);

    // LibreChat's own session lookup finds it.
    const found = await h.lc.methods.findSession({ refreshToken });
    expect(found._id.toString()).toBe(payload.sessionId);
  });

  test('sets refreshToken and token_provider cookies with LibreChat\'s flags', async () => {
    const res = remember(await login(ALICE));
    const cookies = parseSetCookies(res);
    const session = await h.db.collection('sessions').findOne({});
    for (const name of ['refreshToken', 'token_provider']) {
      const c = cookies[name];
      expect(c).toBeDefined();
      expect(c.attrs.httponly).toBe(true);
      expect(c.attrs.samesite).toBe('Strict');
      expect(c.attrs.path).toBe('/');
      expect(c.attrs.secure).toBeUndefined();
      expect(Math.abs(new Date(c.attrs.expires).getTime() - session.expiration.getTime())).toBeLessThan(1000);
    }
    expect(cookies.token_provider.value).toBe('custom-backend');
    expect(res.headers['set-cookie']).toHaveLength(2);
  });

  test('cookies are Secure with NODE_ENV=production', async () => {
    const prod = h.makeService({ NODE_ENV: 'production', BACKEND_ALLOW_INSECURE_HTTP: 'true' });
    const result = await prod.login(ALICE);
    seenTokens.push(result.token, result.refreshToken);
    expect(prod.secureCookies).toBe(true);
    const res = { cookies: [], cookie: (...args) => res.cookies.push(args) };
    const { customBackendLoginController } = require('..');
    res.status = () => res;
    res.send = () => res;
    customBackendLoginController({ user: result.user, authInfo: { customBackend: result, service: prod } }, res);
    expect(res.cookies.map(([name, , o]) => [name, o.secure, o.httpOnly, o.sameSite])).toEqual([
      ['refreshToken', true, true, 'strict'],
      ['token_provider', true, true, 'strict'],
    ]);
    await prod.close();
  });

  test('a second login updates the user and does not duplicate it', async () => {
    const first = remember(await login(ALICE)).body.user;
    await new Promise((r) => setTimeout(r, 5)); // #14.7: a later updatedAt is then visible
    h.mock.updateUser('u-1001', { name: 'Alice Renamed', username: 'AliceR', email: 'Alice.New@Example.com' });
    const res = remember(await login({ email: 'AliceR', password: 'alice-password-1' }));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: first.id, name: 'Alice Renamed', username: 'alicer', email: 'alice.new@example.com' });
    expect(await h.db.collection('users').countDocuments({})).toBe(1);
    const raw = await h.db.collection('users').findOne({});
    expect(raw.updatedAt.getTime()).toBeGreaterThan(new Date(first.updatedAt).getTime());
    expect(raw.createdAt.getTime()).toBe(new Date(first.createdAt).getTime());
    expect(await h.db.collection('sessions').countDocuments({})).toBe(2);
  });

  test('an account of another provider with the same email is not taken over: 409, nothing written', async () => {
    await h.lc.methods.createUser({ provider: 'local', email: 'carol@example.org', username: 'carol-local', name: 'Local Carol', emailVerified: true });
    const before = await h.db.collection('users').findOne({ email: 'carol@example.org' });
    const counts = await h.counts();
    const res = remember(await login(CAROL));
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/already exists/);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await h.counts()).toEqual(counts);
    expect(await h.db.collection('users').findOne({ email: 'carol@example.org' })).toEqual(before);
  });

  test('a known user whose new e-mail another account holds: 409, neither account changed (#28: one read finds both)', async () => {
    remember(await login(ALICE));
    await h.lc.methods.createUser({ provider: 'local', email: 'taken@example.org', username: 'taken-local', name: 'Taken', emailVerified: true });
    const before = await h.db.collection('users').find({}).sort({ email: 1 }).toArray();
    const counts = await h.counts();
    h.mock.updateUser('u-1001', { email: 'Taken@Example.org' });
    const res = remember(await login(ALICE));
    expect([res.status, res.body.code]).toEqual([409, 'ACCOUNT_CONFLICT']);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await h.counts()).toEqual(counts);
    expect(await h.db.collection('users').find({}).sort({ email: 1 }).toArray()).toEqual(before);
  });

  test('the first user of an empty collection becomes ADMIN, later ones USER', async () => {
    const a = remember(await login(BOB)).body.user;
    const b = remember(await login(ALICE)).body.user;
    expect(a.role).toBe('ADMIN');
    expect(b.role).toBe('USER');
    // A returning first user keeps ADMIN.
    expect(remember(await login(BOB)).body.user.role).toBe('ADMIN');
  });

  test('with CHECK_BALANCE and START_BALANCE a new user gets LibreChat\'s balance document', async () => {
    const svc = h.makeService({ CHECK_BALANCE: 'true', START_BALANCE: '20000' });
    const result = await svc.login(ALICE);
    seenTokens.push(result.token, result.refreshToken);
    const balance = await h.db.collection('balances').findOne({ user: result.user._id });
    expect(balance).toMatchObject({ tokenCredits: 20000, autoRefillEnabled: false, refillIntervalValue: 30, refillIntervalUnit: 'days', refillAmount: 0, __v: 0 });

    // LibreChat's createUser with the same balance config, compared by shape.
    const refId = await h.lc.methods.createUser(
      { provider: 'local', email: 'ref-balance@example.com', username: 'ref', name: 'Ref', emailVerified: true },
      { enabled: true, startBalance: 20000 },
    );
    const ref = await h.db.collection('balances').findOne({ user: refId });
    expect(shape(balance)).toEqual(shape(ref));

    // A returning user is not credited again.
    const again = await svc.login(ALICE);
    seenTokens.push(again.token, again.refreshToken);
    expect((await h.db.collection('balances').findOne({ user: result.user._id })).tokenCredits).toBe(20000);
    await svc.close();
    // Without CHECK_BALANCE, no balance document.
    remember(await login(BOB));
    expect(await h.db.collection('balances').countDocuments({})).toBe(2);
  });

  test('a user with 2FA gets {twoFAPending, tempToken} and no session', async () => {
    remember(await login(ALICE));
    await h.db.collection('users').updateOne({ idOnTheSource: 'u-1001' }, { $set: { twoFactorEnabled: true } });
    await h.db.collection('sessions').deleteMany({});
    const res = await login(ALICE);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ twoFAPending: true, tempToken: expect.any(String) });
    seenTokens.push(res.body.tempToken);
    const payload = jwt.verify(res.body.tempToken, h.vars.JWT_SECRET);
    expect(payload).toMatchObject({ twoFAPending: true });
    expect(payload.id).toBeUndefined();
    expect(payload.exp - payload.iat).toBe(300);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
  });

  describe('the user comes from user info when the login answer lacks it', () => {
    test.each([['wrapped'], ['bare']])('user info %s', async (userShape) => {
      h.mock.set({ noUserInLogin: true, userShape });
      const res = remember(await login(ALICE));
      expect(res.status).toBe(200);
      expect(h.mock.calls.userinfo).toBe(1);
      expect(h.mock.requests.find((r) => r.name === 'userinfo').headers.authorization).toMatch(/^Bearer at_/);
      expect(res.body.user).toMatchObject({ idOnTheSource: 'u-1001', email: 'alice@example.com' });
    });

    test('snake_case token fields (access_token, refresh_token, expires_in)', async () => {
      h.mock.set({ fieldStyle: 'snake', noUserInLogin: true });
      const res = remember(await login(ALICE));
      expect(res.status).toBe(200);
      const session = await h.db.collection('sessions').findOne({});
      expect(session.customBackend.refreshToken).toMatch(/^v2\./);
      expect(session.customBackend.accessExpiresAt).toBeInstanceOf(Date);
    });
  });

  describe('errors answer {message} with the right status and write nothing', () => {
    const expectNothingWritten = async () => expect(await h.counts()).toEqual({ users: 0, sessions: 0, balances: 0 });

    test.each([
      ['no email', { password: 'x-password' }],
      ['empty email', { email: '   ', password: 'x-password' }],
      ['no password', { email: 'alice' }],
      ['empty password', { email: 'alice', password: '' }],
      ['email not a string', { email: ['alice'], password: 'x-password' }],
      ['password not a string', { email: 'alice', password: 12345678 }],
      ['username over 256 characters', { email: 'a'.repeat(257), password: 'x-password' }],
      ['password over 1024 characters', { email: 'alice', password: 'p'.repeat(1025) }],
    ])('400 without calling the backend: %s', async (_name, body) => {
      const res = await login(body);
      expect(res.status).toBe(400);
      expect(typeof res.body.message).toBe('string');
      expect(h.mock.calls.login).toBe(0);
      await expectNothingWritten();
    });

    test('400 for a body that is not JSON', async () => {
      for (const [type, body] of [['text/plain', 'email=alice&password=x'], ['application/json', '{"email": "alice", "password": ']]) {
        const res = await request(h.app).post('/api/auth/login').set('Content-Type', type).send(body);
        expect(res.status).toBe(400);
        expect(typeof res.body.message).toBe('string');
      }
      expect(h.mock.calls.login).toBe(0);
      await expectNothingWritten();
    });

    test('wrong credentials: 404 like LibreChat\'s wrong password (not 401)', async () => {
      const res = await login({ email: 'Alice', password: 'wrong-password' });
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ code: 'INVALID_CREDENTIALS', message: 'Invalid username or password.' });
      expect(h.mock.calls.login).toBe(1);
      await expectNothingWritten();
    });

    test.each([[401], [403]])('backend %i: 404 invalid credentials', async (status) => {
      h.mock.set({ login: { status } });
      const res = await login(ALICE);
      expect(res.status).toBe(404);
      await expectNothingWritten();
    });

    test.each([[500], [502], [503]])('backend %i: BACKEND_UNAVAILABLE, answered 500 at login (#10.4)', async (status) => {
      h.mock.set({ login: { status } });
      const res = await login(ALICE);
      expect(res.status).toBe(500);
      expect(res.body.code).toBe('BACKEND_UNAVAILABLE');
      expect(res.body.message).toMatch(/unavailable/);
      await expectNothingWritten();
    });

    test('backend unreachable: 503', async () => {
      const svc = h.makeService({ BACKEND_AUTH_URL: `http://127.0.0.1:${await closedPort()}/login` });
      await expect(svc.login(ALICE)).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', status: 503 });
      await svc.close();
      await expectNothingWritten();
    });

    test('backend slower than BACKEND_TIMEOUT_MS: 504, and the request does not hang', async () => {
      h.mock.set({ login: { hang: true } });
      const svc = h.makeService({ BACKEND_TIMEOUT_MS: '1000' });
      // The backend never answers: only BACKEND_TIMEOUT_MS can end this before the test timeout.
      await expect(svc.login(ALICE)).rejects.toMatchObject({ code: 'BACKEND_TIMEOUT', status: 504 });
      await svc.close();
      h.mock.set({ login: { hang: false, latencyMs: 3000 } });
      const svc2 = h.makeService({ BACKEND_TIMEOUT_MS: '1000' });
      await expect(svc2.login(ALICE)).rejects.toMatchObject({ code: 'BACKEND_TIMEOUT' });
      await svc2.close();
      await expectNothingWritten();
    });

    test('the app answers 500 (BACKEND_TIMEOUT, #10.4) over HTTP for a hanging backend', async () => {
      await h.reconfigure({ BACKEND_TIMEOUT_MS: '1000' });
      try {
        h.mock.set({ login: { hang: true } });
        const res = await login(ALICE);
        expect(res.status).toBe(500);
        expect(res.body.code).toBe('BACKEND_TIMEOUT');
      } finally {
        await h.reconfigure();
      }
    });

    test.each([
      ['malformed JSON', { login: { malformed: true } }],
      ['a 2xx without a token', { login: { noToken: true } }],
      ['no user id in login or user info', { noUserInLogin: true, userFields: ({ id, ...rest }) => rest }],
      ['no user email in login or user info', { noUserInLogin: true, userFields: ({ email, ...rest }) => rest }],
      ['user info refusing the new token', { noUserInLogin: true, userinfo: { status: 401 } }],
    ])('BACKEND_BAD_RESPONSE (500 at login, #10.4) for %s', async (_name, switches) => {
      h.mock.set(switches);
      const res = await login(ALICE);
      expect(res.status).toBe(500);
      expect(res.body.code).toBe('BACKEND_BAD_RESPONSE');
      expect(typeof res.body.message).toBe('string');
      await expectNothingWritten();
    });

    test('database unreachable: 503 DB_UNAVAILABLE', async () => {
      const svc = h.makeService({ MONGO_URI: `mongodb://127.0.0.1:${await closedPort()}/x`, MONGO_TIMEOUT_MS: '500' });
      await expect(svc.login(ALICE)).rejects.toMatchObject({ code: 'DB_UNAVAILABLE', status: 503 });
      await svc.close();
    });

    test('no error answer carries a stack, a password or a backend body', async () => {
      h.mock.set({ login: { status: 500 } });
      const res = await login(ALICE);
      const text = JSON.stringify(res.body);
      expect(text).not.toMatch(/alice-password|forced error|at .*\.js/);
      expect(Object.keys(res.body)).toEqual(['code', 'message']);
    });
  });
});

describe('configuration', () => {
  const { CustomBackendAuthService, CustomBackendAuthError, isCustomBackendAuthEnabled } = require('..');
  const { TEST_ENV } = require('./support/harness');
  const base = {
    ...TEST_ENV,
    BACKEND_AUTH_URL: 'http://127.0.0.1:1/login',
    BACKEND_USER_INFO_URL: 'http://127.0.0.1:1/userinfo',
    BACKEND_REFRESH_URL: 'http://127.0.0.1:1/refresh',
    MONGO_URI: 'mongodb://127.0.0.1:1/x',
  };

  test.each([
    'BACKEND_AUTH_URL', 'BACKEND_USER_INFO_URL', 'BACKEND_REFRESH_URL', 'JWT_SECRET', 'JWT_REFRESH_SECRET',
    'MONGO_URI', 'BACKEND_TOKEN_ENCRYPTION_KEY',
  ])('a missing %s fails construction with CONFIG_INVALID naming it', (name) => {
    const saved = process.env[name];
    delete process.env[name];
    try {
      let error;
      try {
        new CustomBackendAuthService({ ...base, [name]: undefined });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CustomBackendAuthError);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain(name);
    } finally {
      if (saved !== undefined) process.env[name] = saved;
    }
  });

  test.each([
    ['BACKEND_AUTH_URL', 'api.example.com/login'],
    ['SESSION_EXPIRY', 'fifteen minutes'],
    ['REFRESH_TOKEN_EXPIRY', '0'],
    ['BACKEND_TIMEOUT_MS', '-1'],
    ['BACKEND_TOKEN_ENCRYPTION_KEY', 'too-short'],
    ['JWT_REFRESH_SECRET', TEST_ENV.JWT_SECRET],
  ])('an invalid %s fails with CONFIG_INVALID naming it', (name, value) => {
    expect(() => new CustomBackendAuthService({ ...base, [name]: value })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }),
    );
  });

  test('the error never echoes a secret or the connection string', () => {
    try {
      new CustomBackendAuthService({ ...base, MONGO_URI: 'postgres://admin:hunter22@db/x' });
    } catch (e) {
      expect(e.message).not.toContain('hunter22');
    }
    expect.assertions(1);
  });

  test('USE_CUSTOM_BACKEND_AUTH is read once, as LibreChat reads flags', () => {
    expect(isCustomBackendAuthEnabled({ USE_CUSTOM_BACKEND_AUTH: ' TRUE ' })).toBe(true);
    expect(isCustomBackendAuthEnabled({ USE_CUSTOM_BACKEND_AUTH: 'false' })).toBe(false);
    expect(isCustomBackendAuthEnabled({ USE_CUSTOM_BACKEND_AUTH: '1' })).toBe(false);
    expect(isCustomBackendAuthEnabled({})).toBe(false);
  });
});
