'use strict';

// Issue 8, the every-request path: backend bearer tokens and 2FA, JWKS outages, the user-info
// budget, token shapes (padding, damaged LibreChat tokens, control characters), req.user copies,
// duration bounds, the expiry parser, and the policy on the cached path.
//
// Then issue 14's every-request items (each seen failing against deliberately broken code): the
// policy on backend bearer tokens in both modes, LibreChat access tokens at the edges, JWKS claims
// and caching.

const crypto = require('crypto');
const path = require('path');
const { spawnSync } = require('child_process');
const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies } = require('./support/harness');
const { ALICE, BOB, CAROL, sleep, postLogin, loginSession, getWithBearer, secretsSeen } = require('./support/auth');

/** A small seeded PRNG (mulberry32): the same corpus on every run. */
function prng(seed) {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches(items, width, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  }
  return out;
}

describe('hardening: the every-request path (issue 8)', () => {
  let h;
  const { seen, keep } = secretsSeen();
  const get = (token, p) => getWithBearer(h.app, token, p);
  const login = (creds = ALICE) => loginSession(h.app, creds, seen);

  const jwksEnv = () => ({
    BACKEND_BEARER_TOKENS: 'jwks',
    BACKEND_JWKS_URL: h.mock.urls.jwks,
    BACKEND_JWT_ISSUER: h.mock.issuer,
    BACKEND_JWT_AUDIENCE: 'librechat',
  });

  beforeAll(async () => {
    h = await startHarness({ db: 'bearer-edge-cases' });
  });
  beforeEach(async () => {
    await h.reconfigure({});
    await h.clear();
    h.mock.reset({ tokens: true });
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seen);
    await h.close();
  });

  describe('#8.2 backend bearer tokens of a 2FA user', () => {
    const enable2FA = async (userId) => {
      await h.db.collection('users').updateOne({ _id: new ObjectId(userId) }, { $set: { twoFactorEnabled: true } });
      h.service.evictUser(userId);
    };

    test.each([
      ['userinfo', () => ({}), null],
      ['jwks', jwksEnv, 'RS256'],
    ])('#8.2 %s mode: a backend token got with the password alone is refused (401) once 2FA is on', async (_mode, env, jwtTokens) => {
      await h.reconfigure(env());
      if (jwtTokens) h.mock.set({ jwtTokens });
      const { userId, token } = await login();
      const before = keep(h.mock.issueAccessToken('u-1001'));
      expect((await get(before)).status).toBe(200);
      await enable2FA(userId);
      // Both the token already accepted (cached verdict) and a new one.
      for (const t of [before, keep(h.mock.issueAccessToken('u-1001'))]) {
        const res = await get(t);
        expect(res.status).toBe(401);
        expect(res.body.message).toMatch(/two-factor authentication is required/i);
      }
      // The LibreChat access token of the session (made before 2FA was on) keeps working.
      expect((await get(token)).status).toBe(200);
    });

    describe.each([
      ['userinfo', () => ({}), null],
      ['jwks', jwksEnv, 'ES256'],
    ])('#8.2 BACKEND_SESSION_MODE=backend, %s mode', (_mode, env, jwtTokens) => {
      test('#8.2 only the access token of a session that passed LibreChat\'s second step is accepted', async () => {
        await h.reconfigure({ ...env(), BACKEND_SESSION_MODE: 'backend' });
        if (jwtTokens) h.mock.set({ jwtTokens });
        const first = await login();
        await enable2FA(first.userId);
        await h.db.collection('sessions').deleteMany({});

        // The first step: our login answers twoFAPending and starts no session.
        const step1 = await request(h.app).post('/api/auth/login').send(ALICE);
        expect(step1.body.twoFAPending).toBe(true);
        keep(step1.body.tempToken);
        // A token the backend gives for the password alone is refused.
        const direct = keep(h.mock.issueAccessToken('u-1001'));
        const refused = await get(direct);
        expect(refused.status).toBe(401);
        expect(refused.body.message).toMatch(/two-factor/i);

        // LibreChat's second step (verify2FAWithTempToken) creates the session; its first refresh
        // takes over the backend tokens and, in backend mode, hands the backend's access token out.
        const { refreshToken } = await h.lc.methods.createSession(first.userId);
        keep(refreshToken);
        const refreshed = await request(h.app).post('/api/auth/refresh').set('Cookie', `refreshToken=${refreshToken}`);
        expect(refreshed.status).toBe(200);
        const sessionToken = keep(refreshed.body.token);
        keep(parseSetCookies(refreshed).refreshToken.value);
        expect(sessionToken).not.toBe(direct);
        expect((await get(sessionToken)).status).toBe(200);
        expect((await get(sessionToken)).status).toBe(200); // and from the caches

        // Another server (its own caches) accepts the session's token, found in the database,
        // and still refuses the password-only one.
        const other = h.makeService({ ...env(), BACKEND_SESSION_MODE: 'backend' });
        try {
          expect(other.checkBearer(sessionToken).kind).toBe('backend');
          const user = await other.authenticateBackendToken(sessionToken);
          expect(user.id).toBe(first.userId);
          await expect(other.authenticateBackendToken(direct)).rejects.toMatchObject({ code: 'TWO_FACTOR_REQUIRED', status: 401 });
        } finally {
          await other.close();
        }
      });
    });
  });

  describe('#8.5 JWKS outages', () => {
    test('#8.5 a hanging JWKS refetch does not serialise requests: 8 concurrent valid tokens are answered from the last good key set', async () => {
      // A JWKS fetch could wait 60 s; the test's timeout (20 s) proves nobody waits for it.
      await h.reconfigure({ ...jwksEnv(), BACKEND_JWKS_CACHE_TTL: '1', BACKEND_TIMEOUT_MS: '60000' });
      h.mock.set({ jwtTokens: 'RS256' });
      await login();
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
      expect(h.mock.calls.jwks).toBe(1);
      await sleep(1500); // the key set is now stale
      h.mock.set({ jwks: { hang: true } });
      const tokens = Array.from({ length: 8 }, () => keep(h.mock.issueAccessToken('u-1001')));
      const answers = await Promise.all(tokens.map((t) => get(t)));
      expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
      // One refetch runs (in the background, hanging), not one per request.
      for (let i = 0; i < 100 && h.mock.calls.jwks < 2; i++) await sleep(50);
      expect(h.mock.calls.jwks).toBe(2);
    }, 20000);

    test('#8.5 while the JWKS fails, known keys keep working up to BACKEND_JWKS_MAX_STALE, then 503', async () => {
      await h.reconfigure({ ...jwksEnv(), BACKEND_JWKS_CACHE_TTL: '1', BACKEND_JWKS_MAX_STALE: '2' });
      h.mock.set({ jwtTokens: 'EdDSA' });
      await login();
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
      await sleep(1500);
      h.mock.set({ jwks: { status: 500 } });
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
      await sleep(2500); // now past TTL + max staleness
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(503);
      // The JWKS is back: a request after the back-off (#21.11e) fetches it and works again.
      h.mock.set({ jwks: { status: null } });
      let status;
      for (let i = 0; i < 40 && status !== 200; i++) {
        status = (await get(keep(h.mock.issueAccessToken('u-1001')))).status;
        if (status !== 200) await sleep(250);
      }
      expect(status).toBe(200);
    }, 20000);

    test('#21.11e with no usable key set and a failing JWKS, requests do not each fetch it: a back-off, 503 meanwhile', async () => {
      await h.reconfigure(jwksEnv());
      h.mock.set({ jwtTokens: 'RS256' });
      await login();
      h.mock.set({ jwks: { status: 500 } });
      const started = Date.now();
      const answers = [];
      for (let i = 0; i < 30; i++) answers.push((await get(keep(h.mock.issueAccessToken('u-1001')))).status);
      const seconds = (Date.now() - started) / 1000;
      expect(new Set(answers)).toEqual(new Set([503]));
      // 1 s after a failure, then 2, 4, ...: at most one fetch per second of the run, plus the first.
      expect(h.mock.calls.jwks).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
      expect(h.mock.calls.jwks).toBeLessThan(30);
    }, 20000);
  });

  test('#8.7 a flood of distinct random tokens makes at most the budget of user-info calls', async () => {
    const RATE = 2;
    const BURST = 10;
    await h.reconfigure({ BACKEND_USERINFO_RATE: String(RATE), BACKEND_USERINFO_BURST: String(BURST), BACKEND_USERINFO_MAX_CONCURRENT: '4' });
    h.mock.set({ userinfo: { latencyMs: 20 } });
    const tokens = Array.from({ length: 400 }, () => `tok_${crypto.randomBytes(16).toString('hex')}`);
    const started = Date.now();
    const answers = await inBatches(tokens, 50, async (t) => get(t));
    const elapsedSec = (Date.now() - started) / 1000;
    expect(new Set(answers.map((r) => r.status))).toEqual(new Set([401, 503]));
    // The bucket starts full (BURST) and refills RATE per second.
    expect(h.mock.calls.userinfo).toBeLessThanOrEqual(BURST + Math.ceil(RATE * (elapsedSec + 1)));
    // Over budget is an outage answer (503: LibreChat's client does not refresh or log out on it).
    for (const r of answers.filter((a) => a.status === 503)) {
      expect(r.body.message).toMatch(/too many unknown tokens to check at once/);
    }
  }, 60000);

  describe('#21.8 junk tokens do not push real users out of the user-info budget', () => {
    const JUNK = '10.9.9.9';
    const from = (ip, token) => request(h.app).get('/api/user').set('X-Forwarded-For', ip).set('Authorization', `Bearer ${token}`);
    const junk = () => `tok_${crypto.randomBytes(16).toString('hex')}`;
    /** `rounds` times: 20 junk tokens from one address at once with one real request; the real answers. */
    async function underFlood(rounds, real) {
      const statuses = [];
      for (let i = 0; i < rounds; i++) {
        const [answer] = await Promise.all([real(i), ...Array.from({ length: 20 }, () => from(JUNK, junk()))]);
        statuses.push(answer.status);
      }
      return statuses;
    }

    beforeEach(async () => {
      h.app.set('trust proxy', 1); // LibreChat's default (TRUST_PROXY)
      await h.reconfigure({
        BACKEND_USERINFO_RATE: '5', BACKEND_USERINFO_BURST: '40', BACKEND_USERINFO_MAX_CONCURRENT: '4', BACKEND_TOKEN_CACHE_TTL: '0',
      });
      await login(ALICE);
      await login(BOB);
      h.mock.set({ userinfo: { latencyMs: 20 } });
    });
    afterEach(() => h.app.set('trust proxy', false));

    test('#21.8 new tokens from an address a valid token came from pass while junk floods', async () => {
      const users = ['u-1001', 'u-1002'];
      // Each real user has used a backend token from their address before.
      for (const [i, u] of users.entries()) expect((await from(`10.0.0.${i + 1}`, keep(h.mock.issueAccessToken(u)))).status).toBe(200);
      const statuses = await underFlood(12, (i) => from(`10.0.0.${(i % 2) + 1}`, keep(h.mock.issueAccessToken(users[i % 2]))));
      expect(statuses).toEqual(Array(12).fill(200));
      // The junk was held to its half: refused at once (503) once that was spent.
      expect((await from(JUNK, junk())).status).toBe(503);
    }, 30000);

    test('#21.8 a token seen valid before passes while junk floods, from any address', async () => {
      const token = keep(h.mock.issueAccessToken('u-1001'));
      expect((await from('10.0.0.7', token)).status).toBe(200);
      // No verdict cache (TTL 0): each use is a user-info call, from an address never seen.
      const statuses = await underFlood(12, (i) => from(`10.0.1.${i + 1}`, token));
      expect(statuses).toEqual(Array(12).fill(200));
    }, 30000);
  });

  test('#8.9 a padded or respelled signature does not verify (canonical base64url only)', async () => {
    const s = await login();
    expect((await get(s.token)).status).toBe(200);
    for (const t of [`${s.token}=`, `${s.token}==`, `${s.token.split('.')[0]}=.${s.token.split('.').slice(1).join('.')}`]) {
      expect((await get(t)).status).toBe(401);
    }
    expect(h.mock.calls.userinfo).toBe(0);
    // A backend JWT with a padded signature neither (jwks mode).
    await h.reconfigure(jwksEnv());
    h.mock.set({ jwtTokens: 'RS256' });
    const b = keep(h.mock.issueAccessToken('u-1001'));
    expect((await get(b)).status).toBe(200);
    expect((await get(`${b}=`)).status).toBe(401);
  });

  test('#8.10 damaged LibreChat tokens are refused locally: thousands of mutations, zero user-info calls', async () => {
    const s = await login();
    const temp = keep(jwt.sign({ userId: s.userId, twoFAPending: true }, h.vars.JWT_SECRET, { expiresIn: '5m' }));
    const rnd = prng(0x8a10);
    // Printable ASCII only (anything else cannot travel in a header; it is refused anyway).
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/!~*%';
    const corpus = new Set();
    for (const T of [s.token, temp]) {
      for (const m of [`${T}.`, `.${T}`, `${T}.x`, `${T}${T}`, `${T}.${T}`, `x${T}`, `${T}x`, `${T}=`, `junk${T}junk`,
        T.replace('.', ''), `${T.split('.')[0]}.${T.split('.')[1]}`, `${T.split('.')[1]}.${T.split('.')[2]}`]) corpus.add(m);
      for (let n = 3; n < T.length; n += 7) corpus.add(T.slice(0, n));
      for (let i = 0; i < 2000; i++) {
        const m = T.split('');
        const edits = 1 + rnd(3);
        for (let e = 0; e < edits; e++) {
          const at = rnd(m.length);
          const c = alphabet[rnd(alphabet.length)];
          const op = rnd(4);
          if (op === 0) m[at] = c;
          else if (op === 1) m.splice(at, 1);
          else if (op === 2) m.splice(at, 0, c);
          else [m[at], m[(at + 1) % m.length]] = [m[(at + 1) % m.length], m[at]];
        }
        const mutated = m.join('');
        if (mutated !== T) corpus.add(mutated);
      }
    }
    expect(corpus.size).toBeGreaterThan(3000);
    const statuses = await inBatches([...corpus], 50, async (t) => [t, (await get(t)).status]);
    const accepted = statuses.filter(([, st]) => st !== 401);
    expect(accepted).toEqual([]);
    expect(h.mock.calls.userinfo).toBe(0);
    // Real opaque backend tokens still go to the backend.
    expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
    expect(h.mock.calls.userinfo).toBe(1);
  }, 120000);

  test('#8.14 a route changing req.user does not change what the next request sees', async () => {
    const s = await login();
    const backendToken = keep(h.mock.issueAccessToken('u-1001'));
    const expected = (await get(s.token)).body;
    expect(expected.personalization.memories).toBe(true);
    expect(expected.plugins).toEqual([]);
    for (const t of [s.token, s.token, backendToken, backendToken]) {
      h.service.evictUser(s.userId); // the first request of each pair loads, the second is cached
      for (let i = 0; i < 2; i++) {
        expect((await request(h.app).post('/api/test/mutate-user').set('Authorization', `Bearer ${t}`)).status).toBe(200);
        const after = await get(t);
        expect(after.body.personalization).toEqual(expected.personalization);
        expect(after.body.plugins).toEqual([]);
        expect(after.body.createdAt).toBe(expected.createdAt);
      }
    }
  });

  describe('#8.16 and #8.17 configuration bounds', () => {
    test.each([
      ['USER_CACHE_TTL', '18446744073709551615'],
      ['USER_CACHE_TTL', '86401'],
      ['BACKEND_TOKEN_CACHE_TTL', '86401'],
      ['REFRESH_GRACE_MS', '86400001'],
      ['SESSION_EXPIRY', '1000 * 60 * 60 * 24 * 366'],
      ['REFRESH_TOKEN_EXPIRY', '1000 * 60 * 60 * 24 * 366'],
      ['BACKEND_TIMEOUT_MS', '600001'],
      ['MONGO_TIMEOUT_MS', '600001'],
    ])('#8.16 %s=%s is CONFIG_INVALID', (name, value) => {
      expect(() => h.makeService({ [name]: value })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }));
    });

    test.each([
      ['BACKEND_JWKS_CACHE_TTL', '86401'],
      ['BACKEND_JWKS_REFETCH_COOLDOWN_MS', '86400001'],
      ['BACKEND_JWKS_MAX_STALE', '604801'],
    ])('#8.16 %s=%s is CONFIG_INVALID', (name, value) => {
      expect(() => h.makeService({ ...jwksEnv(), [name]: value })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }));
    });

    test('bounds: the largest allowed TTLs work (no overflow on any request)', async () => {
      await h.reconfigure({ USER_CACHE_TTL: '86400', BACKEND_TOKEN_CACHE_TTL: '86400' });
      const s = await login();
      expect((await get(s.token)).status).toBe(200);
      expect((await get(s.token)).status).toBe(200);
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
    });

    test('#8.17 SESSION_EXPIRY with 200,000 nested parentheses is CONFIG_INVALID, not a crash', () => {
      // In a child process: on a stack overflow only the child dies, and the test reports it.
      const script = `
        const { CustomBackendAuthService } = require(${JSON.stringify(path.join(__dirname, '..'))});
        const vars = JSON.parse(process.env.LCBA_VARS);
        vars.SESSION_EXPIRY = '('.repeat(200000) + '1' + ')'.repeat(200000);
        try { new CustomBackendAuthService(vars); console.log('BUILT'); }
        catch (e) { console.log(e.code + ' ' + e.message.slice(0, 60)); }`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, LCBA_VARS: JSON.stringify(h.vars) },
        encoding: 'utf8',
        timeout: 60000,
      });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^CONFIG_INVALID SESSION_EXPIRY/);
    });
  });

  describe('#8.19 the policy on the cached path', () => {
    test.each([
      ['BACKEND_REQUIRED_ROLES', { BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff' }, { roles: [] }],
      ['BACKEND_ALLOWED_EMAIL_DOMAINS', { BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.com' }, { email: 'alice@elsewhere.org' }],
    ])('#8.19 %s: a backend token refused with 403 stays refused on later requests', async (_name, env, change) => {
      await h.reconfigure(env);
      await login();
      // Another token of the same backend user, accepted: the id mapping is now cached.
      expect((await get(keep(h.mock.issueAccessToken('u-1001')))).status).toBe(200);
      h.mock.updateUser('u-1001', change);
      const refused = keep(h.mock.issueAccessToken('u-1001'));
      for (let i = 0; i < 3; i++) expect((await get(refused)).status).toBe(403);
    });
  });

  test('#8.22d a bearer token with CR/LF or other control characters is malformed: 401, no backend call', async () => {
    await login();
    const valid = keep(h.mock.issueAccessToken('u-1001'));
    for (const t of [`${valid}\r\nX-Injected: 1`, `${valid}\n`, `at_\t${valid}`, `${valid}\u0000`, `${valid}\u007f`]) {
      expect(h.service.checkBearer(t).kind).toBe('invalid');
      await expect(h.service.authenticateBackendToken(t)).rejects.toMatchObject({ code: 'TOKEN_INVALID', status: 401 });
    }
    expect(h.mock.calls.userinfo).toBe(0);
    // Over HTTP, a header with a control character never reaches the strategy (the parser
    // refuses it); one the header rule cuts at whitespace is a 401.
    expect((await get(`${valid}\t${valid}`)).status).toBe(401);
    expect(h.mock.calls.userinfo).toBe(0);
  });
});

describe('#14.2 the policy applies to backend bearer tokens, in both modes', () => {
  let h;
  const get = (token) => getWithBearer(h.app, token);
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
    for (const creds of [ALICE, BOB, CAROL]) {
      expect((await postLogin(h.app, creds)).status).toBe(200);
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

describe('#14.8 LibreChat access tokens at the edges', () => {
  let h;
  let alice;
  const jwt = require('jsonwebtoken');
  const get = (authorization) => request(h.app).get('/api/user').set('Authorization', authorization);
  const sign = (payload, options = {}) => jwt.sign(payload, h.vars.JWT_SECRET, { algorithm: 'HS256', ...options });

  beforeAll(async () => {
    h = await startHarness({ db: 'review-access-tokens' });
    alice = (await postLogin(h.app, ALICE)).body.user;
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
  const get = (token) => getWithBearer(h.app, token);
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
    expect((await postLogin(h.app, ALICE)).status).toBe(200);
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

  // Found by the soak run (#29): its rounds rotate the JWKS keys while the backend flaps.
  test('#29 a token of a key rotated in while the JWKS fails is 503, never refused, and passes once it answers', async () => {
    await h.reconfigure(env({ BACKEND_JWKS_REFETCH_COOLDOWN_MS: '30000', BACKEND_TIMEOUT_MS: '1000' }));
    expect((await get(h.mock.signJwt(claims(), { alg: 'RS256' }))).status).toBe(200);
    h.mock.rotateKeys({ alg: 'RS256' }); // a new key signs from now on; the old one stays published
    h.mock.set({ status: 503 });
    const rotated = h.mock.signJwt(claims({ jti: 'rotated' }), { alg: 'RS256' });
    h.secrets.add(rotated);
    expect((await get(rotated)).status).toBe(503);
    // Within the unknown-kid cooldown: still the outage's answer, not "unknown signing key".
    expect((await get(rotated)).status).toBe(503);
    h.mock.set({ status: null });
    // Once the back-off after the failed fetch (1 s) is over, the JWKS is asked and the key found.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await get(rotated)).status).toBe(200);
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
