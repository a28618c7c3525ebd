'use strict';

// customJwtStrategy (passport `jwt`) on every request: LibreChat access tokens verified natively,
// backend tokens by user info or JWKS, caches, and LibreChat's own req.user shape.

const crypto = require('crypto');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { harnessHooks, freshService } = require('./support/harness');
const { ALICE, BOB, sleep, getWithBearer } = require('./support/auth');
const { customJwtStrategy } = require('..');

/** Runs the strategy on a request and resolves what passport would be told. */
function runStrategy(strategy, headers) {
  return new Promise((resolve) => {
    const s = Object.create(strategy);
    s.success = (user) => resolve({ user });
    s.fail = (challenge, status) => resolve({ fail: status ?? 401, challenge });
    s.error = (error) => resolve({ error });
    s.authenticate({ headers });
  });
}

/** ObjectIds to hex and Dates to ISO, to compare two user objects by value. */
function plain(v) {
  if (v?._bsontype === 'ObjectId') return `oid:${v.toHexString()}`;
  if (v instanceof Date) return `date:${v.toISOString()}`;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, plain(v[k])]));
  return v;
}

describe('customJwtStrategy', () => {
  let h;
  const seen = [];
  const get = (token, path) => getWithBearer(h.app, token, path);
  const login = async (creds = ALICE) => {
    const r = await h.service.login(creds);
    seen.push(r.token, r.refreshToken);
    return r;
  };

  harnessHooks({ db: 'jwt' }, (made) => (h = made), { each: freshService, seen });

  describe('LibreChat access tokens', () => {
    test('a login token opens GET /api/user', async () => {
      const { token, user } = await login();
      const res = await get(token);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: user._id.toHexString(), email: 'alice@example.com', provider: 'custom-backend' });
      expect(h.mock.calls.userinfo).toBe(0);
    });

    test('req.user equals what LibreChat\'s getUserById yields, with an ObjectId _id and Date dates', async () => {
      const { token, user } = await login();
      const id = user._id.toHexString();
      h.service.evictUser(id);
      for (const round of ['cold', 'cached']) {
        // #14.7: the first round loads the user, the second is served from the cache.
        expect(h.service.checkBearer(token).kind).toBe(round === 'cold' ? 'load' : 'user');
        const { user: ours } = await runStrategy(customJwtStrategy(), { authorization: `Bearer ${token}` });
        const theirs = await h.lc.methods.getUserById(id, '-password -__v -totpSecret -backupCodes');
        theirs.id = theirs._id.toString();
        theirs.idOnTheSource ??= null;
        expect(ours._id._bsontype).toBe('ObjectId');
        expect(ours.createdAt).toBeInstanceOf(Date);
        expect(ours.id).toBe(id);
        expect(plain(ours)).toEqual(plain(theirs));
      }
    });

    test('#12.1 checkBearer answers one shape for every kind (the native verdict comes packed in a string)', async () => {
      const { token, user } = await login();
      const id = user._id.toHexString();
      const iat = jwt.decode(token).iat;
      h.service.evictUser(id);
      const shape = (kind, rest) => ({ kind, id: undefined, version: undefined, reason: undefined, issuedAt: undefined, ...rest });
      expect(h.service.checkBearer(token)).toStrictEqual(shape('load', { id, issuedAt: iat }));
      // Without `iat` a token is still LibreChat's (its own jwt strategy does not require one).
      const noIat = jwt.sign({ id, username: 'alice', provider: 'custom-backend', email: 'alice@example.com' }, h.vars.JWT_SECRET, { expiresIn: 60, noTimestamp: true });
      seen.push(noIat);
      expect(h.service.checkBearer(noIat)).toStrictEqual(shape('load', { id }));
      await h.service.loadUser(id);
      const cached = h.service.checkBearer(token);
      expect(cached).toStrictEqual(shape('user', { id, version: expect.any(Number) }));
      expect(h.service.cachedUser(cached.id, cached.version)._id.toHexString()).toBe(id);
      expect(h.service.checkBearer('opaque-backend-token-0123456789')).toStrictEqual(shape(h.vars.BACKEND_BEARER_TOKENS === 'off' ? 'invalid' : 'backend', {}));
      const expired = jwt.sign({ id, exp: Math.floor(Date.now() / 1000) - 60 }, h.vars.JWT_SECRET);
      seen.push(expired);
      expect(h.service.checkBearer(expired)).toStrictEqual(shape('invalid', { reason: expect.stringMatching(/expired/i) }));
      const forged = jwt.sign({ id, exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-of-32-characters!!');
      seen.push(forged);
      expect(h.service.checkBearer(forged)).toStrictEqual(shape('invalid', { reason: 'Invalid token: bad signature' }));
    });

    test('a missing role becomes USER and is saved, as LibreChat does', async () => {
      const { token, user } = await login(BOB); // first user: ADMIN
      await login(ALICE);
      const alice = await h.db.collection('users').findOne({ idOnTheSource: 'u-1001' });
      await h.db.collection('users').updateOne({ _id: alice._id }, { $unset: { role: '' } });
      const aliceToken = jwt.sign({ id: alice._id.toHexString(), username: 'alice', provider: 'custom-backend', email: alice.email }, h.vars.JWT_SECRET, { expiresIn: 60 });
      seen.push(aliceToken);
      h.service.evictUser(alice._id.toHexString());
      const res = await get(aliceToken);
      expect(res.status).toBe(200);
      expect(res.body.role).toBe('USER');
      expect((await h.db.collection('users').findOne({ _id: alice._id })).role).toBe('USER');
      expect((await get(token)).body.role).toBe('ADMIN');
      expect(user.role).toBe('ADMIN');
    });

    describe('401 for every token that is not a valid LibreChat access token, and none reaches the backend', () => {
      let token;
      let userId;
      beforeEach(async () => {
        const r = await login();
        token = r.token;
        userId = r.user._id.toHexString();
      });
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const cases = {
        'no Authorization header': () => undefined,
        'a Basic header': () => null,
        'a tampered payload': () => {
          const [hd, , sig] = token.split('.');
          return `${hd}.${b64({ id: new ObjectId().toHexString(), exp: Math.floor(Date.now() / 1000) + 600 })}.${sig}`;
        },
        'a tampered signature': () => `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`,
        'alg none': () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ id: userId, exp: Math.floor(Date.now() / 1000) + 600 })}.`,
        'HS512 with the right secret': () => jwt.sign({ id: userId }, h.vars.JWT_SECRET, { algorithm: 'HS512', expiresIn: 60 }),
        'RS256': () => {
          const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
          return jwt.sign({ id: userId }, privateKey, { algorithm: 'RS256', expiresIn: 60 });
        },
        'an expired token': () => jwt.sign({ id: userId, exp: Math.floor(Date.now() / 1000) - 10 }, h.vars.JWT_SECRET),
        'another secret': () => jwt.sign({ id: userId }, 'some-other-secret', { expiresIn: 60 }),
        'a LibreChat refresh token': () => jwt.sign({ id: userId, sessionId: new ObjectId().toHexString() }, h.vars.JWT_REFRESH_SECRET, { expiresIn: 60 }),
        'a refresh-shaped token signed with JWT_SECRET': () => jwt.sign({ sessionId: new ObjectId().toHexString() }, h.vars.JWT_SECRET, { expiresIn: 60 }),
        'a 2FA temp token': () => jwt.sign({ userId, twoFAPending: true }, h.vars.JWT_SECRET, { expiresIn: '5m' }),
        'an oversized token': () => `${token}${'A'.repeat(10_000)}`,
        'a token of a user that does not exist': () => jwt.sign({ id: new ObjectId().toHexString() }, h.vars.JWT_SECRET, { expiresIn: 60 }),
      };
      test.each(Object.keys(cases))('%s', async (name) => {
        const t = cases[name]();
        if (t) seen.push(t);
        const req = request(h.app).get('/api/user');
        if (t === null) req.set('Authorization', 'Basic dXNlcjpwYXNz');
        else if (t !== undefined) req.set('Authorization', `Bearer ${t}`);
        const res = await req;
        expect(res.status).toBe(401);
        expect(h.mock.calls.userinfo).toBe(0);
      });
    });

    test('the database down while loading the user: 503 {message}, not 401', async () => {
      const { token } = await login();
      const net = require('net');
      const srv = net.createServer();
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const { port } = srv.address();
      await new Promise((r) => srv.close(r));
      await h.reconfigure({ MONGO_URI: `mongodb://127.0.0.1:${port}/down`, MONGO_TIMEOUT_MS: '300', USER_CACHE_TTL: '0' });
      const res = await get(token);
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/database/i);
    });

    test('optionalJwtAuth: a valid token sets req.user, none or a bad one is silently anonymous', async () => {
      const { token, user } = await login();
      expect((await get(token, '/api/optional')).body).toEqual({ user: user._id.toHexString() });
      expect((await get(undefined, '/api/optional')).body).toEqual({ user: null });
      const garbage = await get('garbage', '/api/optional');
      expect(garbage.status).toBe(200);
      expect(garbage.body).toEqual({ user: null }); // #14.7: no req.user
    });
  });

  describe('the user cache', () => {
    test('serves the hot path without a database read until its TTL ends', async () => {
      // 3 s leaves a loaded machine time for the two requests that must land inside the TTL.
      await h.reconfigure({ USER_CACHE_TTL: '3' });
      const { token, user } = await login();
      expect((await get(token)).status).toBe(200);
      await h.db.collection('users').deleteOne({ _id: user._id });
      // Still cached: proves the request made no database round trip.
      expect((await get(token)).status).toBe(200);
      await sleep(3100);
      expect((await get(token)).status).toBe(401);
    });

    test('USER_CACHE_TTL=0 turns it off: a deleted user is refused at once', async () => {
      await h.reconfigure({ USER_CACHE_TTL: '0' });
      const { token, user } = await login();
      expect((await get(token)).status).toBe(200);
      await h.db.collection('users').deleteOne({ _id: user._id });
      expect((await get(token)).status).toBe(401);
    });

    test('a login updates the cached entry; evictUser forgets it', async () => {
      await h.reconfigure({ USER_CACHE_TTL: '600' });
      const { token, user } = await login();
      expect((await get(token)).body.name).toBe('Alice Liddell');
      h.mock.updateUser('u-1001', { name: 'Alice Changed' });
      await login();
      expect((await get(token)).body.name).toBe('Alice Changed');
      await h.db.collection('users').updateOne({ _id: user._id }, { $set: { name: 'Edited Elsewhere' } });
      expect((await get(token)).body.name).toBe('Alice Changed');
      h.service.evictUser(user._id.toHexString());
      expect((await get(token)).body.name).toBe('Edited Elsewhere');
    });
  });

  describe('backend tokens in userinfo mode (the default)', () => {
    beforeEach(async () => {
      await login(); // alice has a LibreChat account
      h.mock.reset();
    });

    test('a backend access token is accepted, and answered from the cache afterwards', async () => {
      const t = h.mock.issueAccessToken('u-1001');
      for (let i = 0; i < 5; i++) {
        const res = await get(t);
        expect(res.status).toBe(200);
        expect(res.body.email).toBe('alice@example.com');
      }
      expect(h.mock.calls.userinfo).toBe(1);
    });

    test('concurrent requests with the same uncached token make exactly one backend call', async () => {
      h.mock.set({ userinfo: { latencyMs: 150 } });
      const t = h.mock.issueAccessToken('u-1001');
      const all = await Promise.all(Array.from({ length: 20 }, () => get(t)));
      expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(h.mock.calls.userinfo).toBe(1);
    });

    test('a refused token is cached briefly as refused', async () => {
      for (let i = 0; i < 3; i++) expect((await get('at_not-a-real-token-0000')).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(1);
    });

    test('the positive cache lasts at most BACKEND_TOKEN_CACHE_TTL', async () => {
      await h.reconfigure({ BACKEND_TOKEN_CACHE_TTL: '3' });
      const t = h.mock.issueAccessToken('u-1001');
      expect((await get(t)).status).toBe(200);
      expect((await get(t)).status).toBe(200);
      expect(h.mock.calls.userinfo).toBe(1);
      await sleep(3100);
      h.mock.revokeToken(t);
      expect((await get(t)).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(2);
    });

    test('and never past the token\'s own exp when it is a JWT', async () => {
      await h.reconfigure({ BACKEND_TOKEN_CACHE_TTL: '600' });
      h.mock.set({ jwtTokens: 'RS256' });
      const t = h.mock.issueAccessToken('u-1001', { ttlSec: 3 });
      expect((await get(t)).status).toBe(200);
      expect((await get(t)).status).toBe(200);
      expect(h.mock.calls.userinfo).toBe(1);
      await sleep(3100);
      expect((await get(t)).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(2);
    });

    test('a token signed with JWT_SECRET but carrying an issuer is a backend token: never checked against JWT_SECRET', async () => {
      const alice = await h.db.collection('users').findOne({ idOnTheSource: 'u-1001' });
      const t = jwt.sign({ id: alice._id.toHexString(), iss: 'https://elsewhere' }, h.vars.JWT_SECRET, { expiresIn: 60 });
      seen.push(t);
      expect((await get(t)).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(1);
    });

    test('a backend user with no LibreChat account: 401; with BACKEND_PROVISION_ON_BEARER it is created', async () => {
      const t = h.mock.issueAccessToken('u-1003');
      expect((await get(t)).status).toBe(401);
      expect(await h.db.collection('users').countDocuments({ idOnTheSource: 'u-1003' })).toBe(0);
      await h.reconfigure({ BACKEND_PROVISION_ON_BEARER: 'true' });
      const res = await get(t);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ email: 'carol@example.org', provider: 'custom-backend', role: 'USER' });
      expect(await h.db.collection('users').countDocuments({ idOnTheSource: 'u-1003' })).toBe(1);
    });

    test('provisioning keeps the conflict rule: another provider\'s account is not taken over', async () => {
      await h.lc.methods.createUser({ provider: 'local', email: 'carol@example.org', username: 'c', name: 'C', emailVerified: true });
      await h.reconfigure({ BACKEND_PROVISION_ON_BEARER: 'true' });
      const res = await get(h.mock.issueAccessToken('u-1003'));
      expect(res.status).toBe(409);
      expect(await h.db.collection('users').countDocuments({ email: 'carol@example.org' })).toBe(1);
    });

    test.each([
      ['answering 500', { userinfo: { status: 500 } }],
      ['hanging', { userinfo: { hang: true } }],
    ])('backend %s while validating: 503 {message}, not 401', async (_name, switches) => {
      await h.reconfigure({ BACKEND_TIMEOUT_MS: '1000' });
      h.mock.set(switches);
      const res = await get(h.mock.issueAccessToken('u-1001'));
      expect(res.status).toBe(503);
      expect(typeof res.body.message).toBe('string');
    });

    test('BACKEND_BEARER_TOKENS=off refuses backend tokens without a call', async () => {
      await h.reconfigure({ BACKEND_BEARER_TOKENS: 'off' });
      expect((await get(h.mock.issueAccessToken('u-1001'))).status).toBe(401);
      expect(h.mock.calls.userinfo).toBe(0);
    });
  });

  describe('backend tokens in jwks mode', () => {
    const jwksEnv = () => ({
      BACKEND_BEARER_TOKENS: 'jwks',
      BACKEND_JWKS_URL: h.mock.urls.jwks,
      BACKEND_JWT_ISSUER: h.mock.issuer,
      BACKEND_JWT_AUDIENCE: 'librechat',
      BACKEND_JWKS_REFETCH_COOLDOWN_MS: '60000',
    });
    beforeEach(async () => {
      await login();
      h.mock.reset();
    });

    test.each([['RS256'], ['ES256'], ['EdDSA']])('%s tokens verify locally, without user info', async (alg) => {
      await h.reconfigure(jwksEnv());
      h.mock.set({ jwtTokens: alg });
      const t = h.mock.issueAccessToken('u-1001');
      const res = await get(t);
      expect(res.status).toBe(200);
      expect(res.body.email).toBe('alice@example.com');
      expect(h.mock.calls.userinfo).toBe(0);
      expect(h.mock.calls.jwks).toBe(1);
    });

    test('wrong issuer, wrong audience, expired, unknown key, alg confusion and opaque tokens are 401', async () => {
      await h.reconfigure(jwksEnv());
      h.mock.set({ jwtTokens: 'RS256' });
      const good = h.mock.issueAccessToken('u-1001');
      expect((await get(good)).status).toBe(200);
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: 'u-1001', iss: h.mock.issuer, aud: 'librechat', iat: now, exp: now + 60 };
      const header = JSON.parse(Buffer.from(good.split('.')[0], 'base64url'));
      const bad = {
        issuer: h.mock.signJwt({ ...claims, iss: 'https://evil.example' }, { alg: 'RS256' }),
        audience: h.mock.signJwt({ ...claims, aud: 'other-app' }, { alg: 'RS256' }),
        expired: h.mock.signJwt({ ...claims, exp: now - 5 }, { alg: 'RS256' }),
        unknownKey: h.mock.signJwt(claims, { alg: 'RS256', kid: 'not-published', key: h.mock.newKey('RS256').privateKey }),
        hmacConfusion: jwt.sign(claims, 'secret-instead-of-key', { algorithm: 'HS256', keyid: header.kid }),
        opaque: 'at_opaque-token-0000000000',
      };
      for (const [name, t] of Object.entries(bad)) {
        seen.push(t);
        expect([name, (await get(t)).status]).toEqual([name, 401]);
      }
      expect(h.mock.calls.userinfo).toBe(0);
    });

    test('an unknown kid refetches the key set at most once per cooldown', async () => {
      await h.reconfigure(jwksEnv());
      h.mock.set({ jwtTokens: 'RS256' });
      expect((await get(h.mock.issueAccessToken('u-1001'))).status).toBe(200);
      expect(h.mock.calls.jwks).toBe(1);
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: 'u-1001', iss: h.mock.issuer, aud: 'librechat', exp: now + 60 };
      for (let i = 0; i < 5; i++) {
        const t = h.mock.signJwt(claims, { alg: 'RS256', kid: `forged-${i}`, key: h.mock.newKey('RS256').privateKey });
        expect((await get(t)).status).toBe(401);
      }
      expect(h.mock.calls.jwks).toBe(2);
    });

    test('a rotated key is picked up by refetching on its new kid', async () => {
      await h.reconfigure({ ...jwksEnv(), BACKEND_JWKS_REFETCH_COOLDOWN_MS: '0' });
      h.mock.set({ jwtTokens: 'ES256' });
      expect((await get(h.mock.issueAccessToken('u-1001'))).status).toBe(200);
      h.mock.rotateKeys({ alg: 'ES256', dropOld: true });
      expect((await get(h.mock.issueAccessToken('u-1001'))).status).toBe(200);
      expect(h.mock.calls.jwks).toBe(2);
    });

    test('#12 a first sight whose key is in the fresh key set is judged by checkBearer itself; an unknown kid or a stale set go the async way', async () => {
      const service = await h.reconfigure({ ...jwksEnv(), BACKEND_JWKS_CACHE_TTL: '1' });
      h.mock.set({ jwtTokens: 'RS256' });
      // The first token fetches the key set and maps the user: the async path.
      const first = h.mock.issueAccessToken('u-1001');
      expect(service.checkBearer(first).kind).toBe('backend');
      expect((await get(first)).status).toBe(200);
      const known = service.checkBearer(first);
      expect(known.kind).toBe('user');
      // A token never seen, of the same user: no hop to the runtime, the same answer as the cached one.
      const fresh = h.mock.issueAccessToken('u-1001');
      expect(service.checkBearer(fresh)).toStrictEqual(known);
      const forged = `${fresh.slice(0, fresh.lastIndexOf('.'))}.${Buffer.alloc(256, 7).toString('base64url')}`;
      expect(service.checkBearer(forged)).toMatchObject({ kind: 'invalid', reason: 'bad signature' });
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: 'u-1001', iss: h.mock.issuer, aud: 'librechat', exp: now + 60 };
      const unknownKid = h.mock.signJwt(claims, { alg: 'RS256', kid: 'not-published', key: h.mock.newKey('RS256').privateKey });
      expect(service.checkBearer(unknownKid).kind).toBe('backend');
      // Past BACKEND_JWKS_CACHE_TTL the set is refreshed by the async path first.
      await new Promise((r) => setTimeout(r, 1100));
      const late = h.mock.issueAccessToken('u-1001');
      expect(service.checkBearer(late).kind).toBe('backend');
      expect((await get(late)).status).toBe(200);
      expect(h.mock.calls.userinfo).toBe(0);
    });

    test('JWKS endpoint down: 503', async () => {
      await h.reconfigure({ ...jwksEnv(), BACKEND_TIMEOUT_MS: '1000' });
      h.mock.set({ jwtTokens: 'RS256', jwks: { status: 500 } });
      const res = await get(h.mock.issueAccessToken('u-1001'));
      expect(res.status).toBe(503);
    });
  });
});
