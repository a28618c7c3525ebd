'use strict';

// Issue 8 ("Hardening"), the items of login, user sync and the database: each test is named after
// its item and failed on the code before the fix. Real parts only: the LibreChat-shaped app, the
// mock backend (a real HTTP server) and the test database; faults are made in the database itself
// (an index that refuses a write, a server that does not answer).
//
// Then issue 14's login items (each seen failing against deliberately broken code): session
// documents against LibreChat's, LibreChat's balance and limiter middleware around our login.

const request = require('supertest');
const { ObjectId } = require('bson');
const { MongoClient } = require('mongodb');
const { startHarness, harnessHooks, freshService, clearWorld, shape } = require('./support/harness');
const { ALICE, BOB_BY_EMAIL: BOB, sleep, postLogin, rememberTokensIn } = require('./support/auth');
const { closedPort } = require('./support/tcpProxy');
const { mongoUri } = require('./support/mongoUri');
const native = require('../binding');
const { startFailoverMongo } = require('./support/failoverMongo');

/** Waits until `check()` holds; the test's own timeout ends a wait that never succeeds. */
async function eventually(check) {
  for (;;) {
    if (await check()) return;
    await sleep(25);
  }
}

describe('issue 8: login, user sync and the database', () => {
  let h;
  const seen = [];
  const login = (body) => postLogin(h.app, body);
  const remember = rememberTokensIn(seen);
  const users = () => h.db.collection('users');

  harnessHooks({ db: 'login-edge-cases' }, (made) => (h = made), { each: freshService, seen });

  test('#8.1 forty concurrent first logins over two service instances make exactly one ADMIN', async () => {
    const racers = Array.from({ length: 40 }, (_, i) => ({
      id: `race-${i}`, username: `racer${i}`, password: `racer-password-${i}`, email: `racer${i}@example.com`, name: `Racer ${i}`,
    }));
    for (const u of racers) {
      h.mock.addUser(u);
      h.secrets.add(u.password);
    }
    const other = h.makeService();
    try {
      // Round 1 on a fresh database; round 2 after the users were removed (the marker of round 1
      // names an identity without an account and must be taken over by exactly one).
      for (const round of [1, 2]) {
        await users().deleteMany({});
        if (round === 1) await h.db.collection('customBackendMeta').deleteMany({});
        const results = await Promise.all(racers.map(async (u, i) => {
          const body = { email: u.username, password: u.password };
          if (i % 2) {
            const r = await other.login(body);
            seen.push(r.token, r.refreshToken);
            return 200;
          }
          return remember(await login(body)).status;
        }));
        expect(results).toEqual(racers.map(() => 200));
        expect(await users().countDocuments({})).toBe(40);
        expect(await users().countDocuments({ role: 'ADMIN' })).toBe(1);
        expect(await users().countDocuments({ role: 'USER' })).toBe(39);
      }
      // A later user is USER, the first keeps ADMIN at its next login.
      const admin = await users().findOne({ role: 'ADMIN' });
      const u = racers.find((r) => r.id === admin.idOnTheSource);
      expect(remember(await login({ email: u.username, password: u.password })).body.user.role).toBe('ADMIN');
      expect(remember(await login(BOB)).body.user.role).toBe('USER');
    } finally {
      await other.close();
    }
  });

  test('#8.3 thirty parallel first logins of one new user, over two service instances, all succeed with one document', async () => {
    const other = h.makeService();
    try {
      // Several rounds, launched over a few milliseconds, so that some logins read the database
      // while another one's insert lands between their reads.
      for (let round = 0; round < 5; round++) {
        await users().deleteMany({});
        const results = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
          await sleep(round % 2 ? i / 3 : 0);
          if (i % 2) {
            try {
              const r = await other.login(ALICE);
              seen.push(r.token, r.refreshToken);
              return { status: 200, id: String(r.user._id) };
            } catch (err) {
              return { status: err.status, id: null };
            }
          }
          const res = remember(await login(ALICE));
          return { status: res.status, id: res.body.user?._id ?? null };
        }));
        expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
        expect(new Set(results.map((r) => r.id)).size).toBe(1);
        expect(await users().countDocuments({ idOnTheSource: 'u-1001' })).toBe(1);
      }
    } finally {
      await other.close();
    }
  });

  describe('#8.4 Unicode case folding of emails', () => {
    const KELVIN = '\u212A'; // KELVIN SIGN: lower-cases to an ASCII "k" in full Unicode folding
    const kelvin = { id: 'u-kelvin', username: 'kelvin', password: 'kelvin-password-1', email: `${KELVIN}arol@example.com`, name: 'Kelvin' };
    const karol = { id: 'u-karol', username: 'karol', password: 'karol-password-1', email: 'karol@example.com', name: 'Karol' };
    beforeEach(() => {
      for (const u of [kelvin, karol]) {
        h.mock.addUser(u);
        h.secrets.add(u.password);
      }
    });

    test('#8.4a with BACKEND_LINK_EXISTING=email a KELVIN SIGN address does not take over the local ASCII account', async () => {
      await h.reconfigure({ BACKEND_LINK_EXISTING: 'email' });
      const localId = await h.lc.methods.createUser({ provider: 'local', email: 'karol@example.com', username: 'karol-local', name: 'Local Karol', emailVerified: true });
      const before = await users().findOne({ _id: localId });
      const res = remember(await login({ email: 'kelvin', password: kelvin.password }));
      expect(res.status).toBe(200);
      expect(res.body.user._id).not.toBe(String(localId));
      expect(await users().findOne({ _id: localId })).toEqual(before);
      const stored = await users().findOne({ idOnTheSource: 'u-kelvin' });
      expect(stored.email).toBe(`${KELVIN}arol@example.com`);
      // The real owner of the address still links the local account.
      const owner = remember(await login({ email: 'karol', password: karol.password }));
      expect(owner.status).toBe(200);
      expect(owner.body.user._id).toBe(String(localId));
    });

    test('#8.4b a KELVIN SIGN address does not squat the ASCII address of another backend user', async () => {
      expect(remember(await login({ email: 'kelvin', password: kelvin.password })).status).toBe(200);
      const res = remember(await login({ email: 'karol', password: karol.password }));
      expect(res.status).toBe(200);
      expect(res.body.user.email).toBe('karol@example.com');
      expect(await users().countDocuments({})).toBe(2);
    });

    test('#8.4c the domain allow-list applies to the stored domain: mal@\u212Aorp.com is not korp.com', async () => {
      await h.reconfigure({ BACKEND_ALLOWED_EMAIL_DOMAINS: 'korp.com' });
      h.mock.addUser({ id: 'u-mal', username: 'mal', password: 'mal-password-1', email: `mal@${KELVIN}orp.com` });
      h.mock.addUser({ id: 'u-ok', username: 'okay', password: 'okay-password-1', email: 'Okay@KORP.com' });
      h.secrets.add('mal-password-1');
      h.secrets.add('okay-password-1');
      const res = remember(await login({ email: 'mal', password: 'mal-password-1' }));
      expect([res.status, res.body.code]).toEqual([404, 'ACCESS_DENIED']);
      expect(await h.counts()).toEqual({ users: 0, sessions: 0, balances: 0 });
      const ok = remember(await login({ email: 'okay', password: 'okay-password-1' }));
      expect(ok.status).toBe(200);
      expect(ok.body.user.email).toBe('okay@korp.com');
    });
  });

  test('#8.8 without LibreChat\'s indexes, thirty parallel logins of one user make one document; our index exists and doctor sees it', async () => {
    const uri = mongoUri('harden-login-noidx');
    const svc = h.makeService({ MONGO_URI: uri });
    const client = await MongoClient.connect(uri);
    try {
      const db = client.db();
      await db.dropDatabase();
      await db.createCollection('users'); // as a new database, without any index
      // doctor checks as production without NODE_ENV (#10.6); the mock backend speaks http://.
      const vars = { ...h.vars, BACKEND_ALLOW_INSECURE_HTTP: 'true', MONGO_URI: uri };
      const finding = async () => (await native.CustomBackendAuthService.doctor(vars)).findings
        .filter((f) => f.check === 'users' && /idOnTheSource/.test(f.detail) && /provider/.test(f.detail));
      const before = await finding();

      const results = await Promise.allSettled(Array.from({ length: 30 }, () => svc.login(ALICE)));
      for (const r of results) if (r.status === 'fulfilled') seen.push(r.value.token, r.value.refreshToken);
      expect(results.map((r) => r.status)).toEqual(results.map(() => 'fulfilled'));
      expect(await db.collection('users').countDocuments({ idOnTheSource: 'u-1001' })).toBe(1);

      const ours = (await db.collection('users').indexes()).find((ix) => ix.name === 'customBackend_provider_idOnTheSource_tenantId');
      expect(ours).toMatchObject({ key: { provider: 1, idOnTheSource: 1, tenantId: 1 }, unique: true, partialFilterExpression: { provider: 'custom-backend' } });
      // The database itself refuses a second account of the identity.
      await expect(db.collection('users').insertOne({ provider: 'custom-backend', idOnTheSource: 'u-1001', email: 'x@y.z' }))
        .rejects.toMatchObject({ code: 11000 });
      // doctor: "not created yet" (info) before the first login, OK after.
      expect(before.map((f) => f.level)).toEqual(['info']);
      expect((await finding()).map((f) => f.level)).toEqual(['ok']);
    } finally {
      await svc.close();
      await client.close();
    }
  });

  test('#8.8 doctor reports backend identities with two accounts, which keep our index from being created', async () => {
    const uri = mongoUri('harden-login-dups');
    const client = await MongoClient.connect(uri);
    try {
      const db = client.db();
      await db.dropDatabase();
      await db.collection('users').insertMany([
        { provider: 'custom-backend', idOnTheSource: 'u-1', email: 'a@x.io' },
        { provider: 'custom-backend', idOnTheSource: 'u-1', email: 'b@x.io' },
      ]);
      const { findings } = await native.CustomBackendAuthService.doctor({ ...h.vars, BACKEND_ALLOW_INSECURE_HTTP: 'true', MONGO_URI: uri });
      const dup = findings.filter((f) => f.level === 'problem' && /more than one account/.test(f.detail));
      expect(dup).toHaveLength(1);
      expect(dup[0].detail).toMatch(/^1 backend identities/);
    } finally {
      await client.close();
    }
  });

  // No replica set can run here: a wire-protocol server that answers as a primary in failover (support/failoverMongo.js)
  // stands in for the database's answer; what is checked is the addon's mapping of that answer.
  test('#8.12 failover answers from the server (no primary, stepping down, shutting down) give 503, not 500', async () => {
    const cases = [
      [10107, 'NotWritablePrimary'],
      [189, 'PrimarySteppedDown'],
      [91, 'ShutdownInProgress'],
      [11602, 'InterruptedDueToReplStateChange'],
      [13436, 'NotPrimaryOrSecondary'],
      [112, 'WriteConflict', ['TransientTransactionError']],
    ];
    for (const [code, codeName, errorLabels] of cases) {
      const fm = await startFailoverMongo({ code, codeName, errorLabels });
      try {
        await h.reconfigure({ MONGO_URI: fm.uri, MONGO_TIMEOUT_MS: '3000' });
        const res = remember(await login(ALICE));
        expect(fm.commands.length).toBeGreaterThan(0);
        // At login every transient failure answers 500 (#10.4); the code tells them apart.
        expect([codeName, res.status, res.body.code]).toEqual([codeName, 500, 'DB_UNAVAILABLE']);
        expect(res.body.message).toMatch(/database is unavailable/);
      } finally {
        await h.reconfigure({});
        await fm.close();
      }
    }
  });

  test('#8.13a a start balance whose write failed is written by the next login, and only once', async () => {
    await h.reconfigure({ CHECK_BALANCE: 'true', START_BALANCE: '20000' });
    const balances = h.db.collection('balances');
    // The fault: a unique index that refuses any second balance of 20000 credits.
    await balances.insertOne({ user: new ObjectId(), tokenCredits: 20000 });
    await balances.createIndex({ tokenCredits: 1 }, { unique: true, name: 'test-fault' });
    try {
      const failed = remember(await login(ALICE));
      expect(failed.status).toBe(500);
      expect(failed.headers['set-cookie']).toBeUndefined();
    } finally {
      await balances.dropIndex('test-fault');
      await balances.deleteMany({});
    }
    const user = await users().findOne({ idOnTheSource: 'u-1001' });
    expect(await balances.countDocuments({ user: user._id })).toBe(0);

    const res = remember(await login(ALICE));
    expect(res.status).toBe(200);
    expect(await balances.findOne({ user: user._id })).toMatchObject({ tokenCredits: 20000, refillIntervalUnit: 'days', __v: 0 });
    // Later logins, parallel ones included, neither credit again nor make a second document.
    await balances.updateOne({ user: user._id }, { $set: { tokenCredits: 123 } });
    (await Promise.all(Array.from({ length: 5 }, () => login(ALICE)))).forEach(remember);
    expect(await balances.countDocuments({ user: user._id })).toBe(1);
    expect((await balances.findOne({ user: user._id })).tokenCredits).toBe(123);
  });

  test('#8.13a (guard) parallel first logins with a start balance make one balance document', async () => {
    await h.reconfigure({ CHECK_BALANCE: 'true', START_BALANCE: '500' });
    const results = await Promise.all(Array.from({ length: 20 }, () => login(ALICE)));
    results.forEach(remember);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    const user = await users().findOne({ idOnTheSource: 'u-1001' });
    expect(await h.db.collection('balances').countDocuments({ user: user._id })).toBe(1);
    expect((await h.db.collection('balances').findOne({ user: user._id })).tokenCredits).toBe(500);
  });

  describe('#8.15 the login body is checked in JS before anything crosses into Rust', () => {
    test('#8.15 a 1.8 MB array and a million-node array get 400 and never reach the backend', async () => {
      const big = new Array(450000).fill('a'); // '"a",' x 450k = 1.8 MB of JSON
      let res = await login({ email: big, password: 'x' });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/must be a string/);
      res = await login({ email: 'alice', password: new Array(1000000).fill(0) });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/must be a string/);
      expect(h.mock.calls.login).toBe(0);
    });

    test('#8.15 deeply nested objects and arrays get 400 and never reach the backend', async () => {
      const deepObject = `${'{"a":'.repeat(20000)}{}${'}'.repeat(20000)}`;
      const deepArray = `${'['.repeat(100000)}${']'.repeat(100000)}`;
      const bodies = [
        `{"email":${deepObject},"password":"x"}`,
        `{"email":"alice","password":${deepObject}}`,
        `{"username":${deepArray},"password":"x"}`,
        `{"email":"alice","password":${deepArray}}`,
      ];
      for (const body of bodies) {
        const res = await request(h.app).post('/api/auth/login').set('Content-Type', 'application/json').send(body);
        expect(res.status).toBe(400);
        expect(res.body.message).toMatch(/must be a string/);
      }
      expect(h.mock.calls.login).toBe(0);
    });

    test('#8.15 (guard) wrong types and lengths get 400; the bounds are 256 and 1024 characters', async () => {
      const cases = [
        { email: 42, password: 'x' },
        { email: true, password: 'x' },
        { email: 'alice', password: 12345678 },
        { email: 'alice', password: { a: 1 } },
        { email: 'a'.repeat(257), password: 'x' },
        { email: 'alice', password: 'p'.repeat(1025) },
        { email: '\u{1F600}'.repeat(257), password: 'x' },
        { password: 'x' },
        { email: 'alice' },
      ];
      for (const body of cases) expect((await login(body)).status).toBe(400);
      expect(h.mock.calls.login).toBe(0);
      // At the bounds the backend is asked (and says no).
      expect((await login({ email: '\u{1F600}'.repeat(256), password: 'p'.repeat(1024) })).status).toBe(404);
      expect((await login({ email: null, username: 'Alice', password: 'alice-password-1' })).status).toBe(200);
      expect(h.mock.calls.login).toBe(2);
    });
  });

  describe('#8.21 a login that fails after the backend issued tokens ends the backend session', () => {
    const loggedOut = () => h.mock.requests.filter((r) => r.name === 'logout');
    /** The backend refresh token of the last login, revoked by a logout call. */
    const assertEnded = async () => {
      await eventually(() => loggedOut().length === 1);
      const [call] = loggedOut();
      expect(typeof call.body.refreshToken).toBe('string');
      expect(h.mock.tokenInfo(call.body.refreshToken)).toMatchObject({ revoked: true });
      expect(call.headers.authorization).toMatch(/^Bearer at_/);
    };

    test('#8.21 refused by the configuration (ACCESS_DENIED): the backend is told', async () => {
      await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout, BACKEND_ALLOWED_EMAIL_DOMAINS: 'elsewhere.org' });
      expect(remember(await login(ALICE)).body.code).toBe('ACCESS_DENIED');
      await assertEnded();
    });

    test('#8.21 the database is down (DB_UNAVAILABLE): the backend is told', async () => {
      await h.reconfigure({
        BACKEND_LOGOUT_URL: h.mock.urls.logout,
        MONGO_URI: `mongodb://127.0.0.1:${await closedPort()}/down`,
        MONGO_TIMEOUT_MS: '300',
      });
      expect(remember(await login(ALICE)).body.code).toBe('DB_UNAVAILABLE');
      await assertEnded();
    });

    test('#8.21 the session insert fails (500): the backend is told', async () => {
      await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
      const sessions = h.db.collection('sessions');
      await sessions.insertOne({ user: new ObjectId(), refreshTokenHash: 'x', expiration: new Date(Date.now() + 60000), __v: 0 });
      await sessions.createIndex({ __v: 1 }, { unique: true, name: 'test-fault' });
      try {
        expect(remember(await login(ALICE)).status).toBe(500);
      } finally {
        await sessions.dropIndex('test-fault');
      }
      await assertEnded();
    });

    test('#8.21 an account conflict (409): the backend is told; a successful login is not', async () => {
      await h.reconfigure({ BACKEND_LOGOUT_URL: h.mock.urls.logout });
      await h.lc.methods.createUser({ provider: 'local', email: 'alice@example.com', username: 'alice-local', name: 'A', emailVerified: true });
      expect(remember(await login(ALICE)).status).toBe(409);
      await assertEnded();
      expect(remember(await login(BOB)).status).toBe(200);
      await sleep(300);
      expect(loggedOut()).toHaveLength(1);
    });
  });

  test('#8.22b a backend id with surrounding whitespace or a control character is refused (BACKEND_BAD_RESPONSE), never trimmed', async () => {
    expect(remember(await login(ALICE)).status).toBe(200);
    for (const bad of [' u-1001 ', 'u-1001 ', 'u-1001\n', 'u-\u00001001']) {
      h.mock.set({ userFields: (u) => ({ ...u, id: bad }) });
      const res = remember(await login(ALICE));
      expect([res.status, res.body.code]).toEqual([500, 'BACKEND_BAD_RESPONSE']);
      expect(res.body.message).toMatch(/no usable id/);
    }
    expect(await users().countDocuments({})).toBe(1);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
  });

  test('#8.22c only absolute http(s) avatar URLs are stored', async () => {
    h.mock.set({ userFields: (u) => ({ ...u, avatar: 'javascript:alert(document.cookie)' }) });
    let res = remember(await login(ALICE));
    expect(res.status).toBe(200);
    expect(res.body.user.avatar).toBeUndefined();
    expect(await users().findOne({ idOnTheSource: 'u-1001' })).not.toHaveProperty('avatar');

    h.mock.set({ userFields: (u) => ({ ...u, avatar: 'https://cdn.example.com/alice.png' }) });
    res = remember(await login(ALICE));
    expect(res.body.user.avatar).toBe('https://cdn.example.com/alice.png');

    for (const bad of ['data:image/png;base64,AAAA', '/images/alice.png', 'JAVASCRIPT:alert(1)', 'vbscript:x']) {
      h.mock.set({ userFields: (u) => ({ ...u, avatar: bad }) });
      res = remember(await login(ALICE));
      expect(res.status).toBe(200);
      expect(res.body.user.avatar).toBe('https://cdn.example.com/alice.png');
    }
    expect((await users().findOne({ idOnTheSource: 'u-1001' })).avatar).toBe('https://cdn.example.com/alice.png');
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
  const login = () => postLogin(h.app, ALICE);

  harnessHooks({ db: 'review-chain', appConfig: { balance: BALANCE } }, (made) => (h = made), { each: clearWorld });

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
