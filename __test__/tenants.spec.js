'use strict';

// #25: multi-tenant LibreChat (TRUST_TENANT_HEADER=true, LibreChat's preAuthTenant and tenant
// context in the app): every user, session, revocation and event inside its tenant. What the addon
// writes is diffed against what LibreChat's own published methods write for a tenant user, and read
// back through LibreChat's tenant-isolation plugin.

const request = require('supertest');
const { ObjectId } = require('bson');
const { tenantStorage } = require('@librechat/data-schemas');
const { startHarness, parseSetCookies, shape } = require('./support/harness');
const { EVENTS_SECRET, backendEvent, postEvent } = require('./support/events');
const { ALICE, BOB, postLogin, postRefresh, getWithBearer, rememberTokensIn } = require('./support/auth');

const ACME = { 'X-Tenant-Id': 'acme' };
const GLOBEX = { 'X-Tenant-Id': 'globex' };
const inTenant = (tenantId, fn) => tenantStorage.run({ tenantId }, async () => fn());

describe('#25 tenants', () => {
  let h;
  const seen = [];
  const remember = rememberTokensIn(seen);
  /** Logs in with the tenant header and expects 200: `{token, cookie, user}`. */
  const login = async (creds, headers) => {
    const res = remember(await postLogin(h.app, creds, headers));
    expect(res.status).toBe(200);
    const c = parseSetCookies(res);
    return { token: res.body.token, cookie: `refreshToken=${c.refreshToken.value}`, user: res.body.user };
  };
  const userDoc = (id) => h.db.collection('users').findOne({ _id: new ObjectId(id) });

  beforeAll(async () => {
    h = await startHarness({
      db: 'tenants',
      env: { TRUST_TENANT_HEADER: 'true', BACKEND_EVENTS_SECRET: EVENTS_SECRET, REVOCATION_POLL_MS: '100' },
    });
  });
  beforeEach(async () => {
    await h.clear();
    await h.reconfigure();
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seen);
    await h.close();
  });

  test('the same email and backend id in two tenants are two users, each as LibreChat writes a tenant user', async () => {
    const a = await login(ALICE, ACME);
    const g = await login(ALICE, GLOBEX);
    expect(a.user.id).not.toBe(g.user.id);
    expect([a.user.tenantId, g.user.tenantId]).toEqual(['acme', 'globex']);
    expect(await h.db.collection('users').countDocuments({ idOnTheSource: 'u-1001', email: 'alice@example.com' })).toBe(2);
    // The same login again finds each tenant's own account.
    expect((await login(ALICE, ACME)).user.id).toBe(a.user.id);

    // LibreChat's own User.create in a tenant: the same fields, types and order.
    const ours = await userDoc(a.user.id);
    const ref = await inTenant('acme', () =>
      h.lc.models.User.create({ provider: 'custom-backend', email: 'ref@example.com', username: 'ref', name: 'Ref', emailVerified: true, role: 'USER', idOnTheSource: 'ref-1' }),
    );
    const refRaw = await h.db.collection('users').findOne({ _id: ref._id });
    expect(refRaw.tenantId).toBe('acme');
    expect(shape(ours)).toEqual(shape(refRaw));
    expect(Object.keys(ours)).toEqual(Object.keys(refRaw));

    // LibreChat's own reads, scoped by its tenant plugin, find each tenant's account only.
    const found = async (tenant) => (await inTenant(tenant, () => h.lc.methods.findUser({ email: 'alice@example.com' })))?._id.toString();
    expect(await found('acme')).toBe(a.user.id);
    expect(await found('globex')).toBe(g.user.id);
    expect(await found('initech')).toBeUndefined();
  });

  test('the session is the one LibreChat\'s createSession writes in the tenant, and LibreChat finds it there', async () => {
    const a = await login(ALICE, ACME);
    const ours = await h.db.collection('sessions').findOne({ user: new ObjectId(a.user.id) });
    expect(ours.tenantId).toBe('acme');
    const { session } = await inTenant('acme', () => h.lc.methods.createSession(a.user.id));
    const refRaw = await h.db.collection('sessions').findOne({ _id: session._id });
    expect(refRaw.tenantId).toBe('acme');
    const { customBackend, ...lcFields } = ours; // eslint-disable-line no-unused-vars
    expect(shape(lcFields)).toEqual(shape(refRaw));
    const keys = Object.keys(ours);
    expect(keys.indexOf('tenantId')).toBe(keys.indexOf('__v') - 1);
    const refreshToken = a.cookie.slice('refreshToken='.length);
    const inAcme = await inTenant('acme', () => h.lc.methods.findSession({ refreshToken }));
    expect(inAcme?._id.toString()).toBe(ours._id.toString());
    expect(await inTenant('globex', () => h.lc.methods.findSession({ refreshToken }))).toBeNull();
  });

  test('the start balance is LibreChat\'s createUser balance in the tenant', async () => {
    await h.reconfigure({ CHECK_BALANCE: 'true', START_BALANCE: '5000' });
    const a = await login(ALICE, ACME);
    const ours = await h.db.collection('balances').findOne({ user: new ObjectId(a.user.id) });
    expect(ours).toMatchObject({ tenantId: 'acme', tokenCredits: 5000 });
    const refId = await inTenant('acme', () =>
      h.lc.methods.createUser({ provider: 'local', email: 'ref-balance@example.com', username: 'ref', name: 'Ref', emailVerified: true }, { enabled: true, startBalance: 5000 }),
    );
    const ref = await h.db.collection('balances').findOne({ user: refId });
    expect(shape(ours)).toEqual(shape(ref));
  });

  test('a deployment without tenants sees no change: no tenantId anywhere', async () => {
    await h.reconfigure({ CHECK_BALANCE: 'true', START_BALANCE: '5000' });
    const a = await login(ALICE);
    for (const c of ['users', 'sessions', 'balances']) {
      const docs = await h.db.collection(c).find({}).toArray();
      expect(docs.length).toBe(1);
      expect(docs[0]).not.toHaveProperty('tenantId');
    }
    expect((await getWithBearer(h.app, a.token)).status).toBe(200);
    // The header means nothing without TRUST_TENANT_HEADER (LibreChat's preAuthTenant reads it too).
    process.env.TRUST_TENANT_HEADER = 'false';
    try {
      await h.reconfigure({ TRUST_TENANT_HEADER: 'false' });
      const again = remember(await postLogin(h.app, ALICE, ACME));
      expect(again.body.user.id).toBe(a.user.id);
      expect((await getWithBearer(h.app, a.token).set(GLOBEX)).status).toBe(200);
    } finally {
      process.env.TRUST_TENANT_HEADER = 'true';
    }
  });

  test('a token of one tenant is refused on a request of another; refresh too, leaving the session alone', async () => {
    const a = await login(ALICE, ACME);
    await login(ALICE, GLOBEX);
    const api = (token, headers) => getWithBearer(h.app, token).set(headers ?? {});
    const own = await api(a.token, ACME);
    expect(own.status).toBe(200);
    // LibreChat's tenant middleware sees the same req.user.tenantId as after its own login.
    expect(own.body).toMatchObject({ id: a.user.id, tenantId: 'acme' });
    expect((await api(a.token, GLOBEX)).status).toBe(401);
    // With the user cached and without: the same answer.
    h.service.evictUser(a.user.id);
    expect((await api(a.token, GLOBEX)).status).toBe(401);
    expect((await api(a.token, ACME)).status).toBe(200);
    // A request naming no tenant is the user's, as in LibreChat.
    expect((await api(a.token)).status).toBe(200);

    const wrong = await postRefresh(h.app, a.cookie).set(GLOBEX);
    expect(wrong.status).toBe(403);
    expect(wrong.body.message).toMatch(/another tenant/);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const right = remember(await postRefresh(h.app, a.cookie).set(ACME));
    expect(right.status).toBe(200);
    expect(right.body.user.id).toBe(a.user.id);
  });

  test('the system tenant and malformed tenant ids are refused, never used', async () => {
    for (const bad of ['__SYSTEM__', 'a b', 'x'.repeat(129), 'acme/../x']) {
      const res = await postLogin(h.app, ALICE, { 'X-Tenant-Id': bad });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('BAD_REQUEST');
    }
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
    const a = await login(ALICE, ACME);
    expect((await getWithBearer(h.app, a.token).set('X-Tenant-Id', '__SYSTEM__')).status).toBe(401);
  });

  test('first admin: only outside tenants, as LibreChat; a tenant\'s admins come from the role mapping', async () => {
    // In a tenant, the first user is not an admin by order (LibreChat v0.8.5+ does the same).
    expect((await login(BOB, ACME)).user.role).toBe('USER');
    expect((await login(ALICE, GLOBEX)).user.role).toBe('USER');
    // The role mapping makes admins per tenant: Bob (backend role admin) in acme only.
    await h.reconfigure({ BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' });
    expect((await login(BOB, ACME)).user.role).toBe('ADMIN');
    expect((await userDoc((await login(ALICE, GLOBEX)).user.id)).role).toBe('USER');
    // A deployment without tenants keeps the first-user rule.
    await h.clear();
    await h.reconfigure();
    expect((await login(BOB)).user.role).toBe('ADMIN');
    expect((await login(ALICE)).user.role).toBe('USER');
  });

  describe('BACKEND_TENANT_FIELD', () => {
    beforeEach(async () => {
      await h.reconfigure({ BACKEND_TENANT_FIELD: 'tenant' });
      h.mock.updateUser('u-1001', { tenant: 'acme' });
    });

    test('the backend\'s tenant places the user when the request names none, and must agree when it does', async () => {
      const placed = await login(ALICE);
      expect(placed.user.tenantId).toBe('acme');
      expect((await login(ALICE, ACME)).user.id).toBe(placed.user.id);
      const refused = await postLogin(h.app, ALICE, GLOBEX);
      expect(refused.status).toBe(404);
      expect(refused.body.code).toBe('TENANT_MISMATCH');
      expect(await h.db.collection('users').countDocuments({ tenantId: 'globex' })).toBe(0);
    });

    test('a backend tenant that is not a tenant id is a bad answer', async () => {
      h.mock.updateUser('u-1001', { tenant: '__SYSTEM__' });
      const res = await postLogin(h.app, ALICE);
      expect(res.status).toBe(500);
      expect(res.body.code).toBe('BACKEND_BAD_RESPONSE');
    });

    test('a refresh after the backend moved the user to another tenant ends the session', async () => {
      const a = await login(ALICE, ACME);
      h.mock.updateUser('u-1001', { tenant: 'globex' });
      const res = await postRefresh(h.app, a.cookie).set(ACME);
      expect(res.status).toBe(401);
      expect(await h.db.collection('sessions').countDocuments({ user: new ObjectId(a.user.id) })).toBe(0);
    });
  });

  test('a backend token resolves to the user of the request\'s tenant', async () => {
    const a = await login(ALICE, ACME);
    const g = await login(ALICE, GLOBEX);
    const backendToken = h.mock.issuedTokens().find((t) => t.startsWith('at_'));
    seen.push(...h.mock.issuedTokens());
    const as = async (headers) => (await getWithBearer(h.app, backendToken).set(headers)).body.id;
    expect(await as(ACME)).toBe(a.user.id);
    expect(await as(GLOBEX)).toBe(g.user.id);
    // Cached now: the same answers from memory.
    expect(await as(GLOBEX)).toBe(g.user.id);
    expect(await as(ACME)).toBe(a.user.id);
    // No account in a third tenant (and no provisioning): refused.
    expect((await getWithBearer(h.app, backendToken).set('X-Tenant-Id', 'initech')).status).toBe(401);
  });

  test('log out everywhere stays inside its tenant', async () => {
    const a = await login(ALICE, ACME);
    const g = await login(ALICE, GLOBEX);
    const res = await request(h.app).post('/api/auth/logout/all').set('Authorization', `Bearer ${a.token}`).set(ACME);
    expect(res.status).toBe(200);
    expect(res.body.sessions).toBe(1);
    expect((await postRefresh(h.app, a.cookie).set(ACME)).status).toBe(401);
    const other = remember(await postRefresh(h.app, g.cookie).set(GLOBEX));
    expect(other.status).toBe(200);
    expect((await getWithBearer(h.app, g.token).set(GLOBEX)).status).toBe(200);
  });

  test('a backend event applies in every tenant, or only in the tenant it names', async () => {
    const a = await login(ALICE, ACME);
    const g = await login(ALICE, GLOBEX);
    const only = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001', { tenantId: 'acme' }));
    expect(only.status).toBe(200);
    expect(only.body).toMatchObject({ status: 'applied', sessionsEnded: 1 });
    expect((await postRefresh(h.app, a.cookie).set(ACME)).status).toBe(401);
    const g2 = remember(await postRefresh(h.app, g.cookie).set(GLOBEX));
    expect(g2.status).toBe(200);

    const a2 = await login(ALICE, ACME);
    const all = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001'));
    expect(all.body).toMatchObject({ status: 'applied', sessionsEnded: 2 });
    const left = await h.db.collection('sessions').countDocuments({ user: { $in: [new ObjectId(a2.user.id), new ObjectId(g.user.id)] } });
    expect(left).toBe(0);
    const audited = h.logs.lines.filter((l) => l.includes('backend_event.applied'));
    expect(audited.length).toBeGreaterThanOrEqual(3); // one per account: acme, then acme and globex

    const bad = await postEvent(request, h.app, backendEvent('user.disabled', 'u-1001', { tenantId: '__SYSTEM__' }));
    expect(bad.status).toBe(400);
  });

  test('the package\'s unique index includes the tenant and replaces the one without it', async () => {
    const users = h.db.collection('users');
    await users.dropIndexes().catch(() => {});
    await users.createIndex({ provider: 1, idOnTheSource: 1 }, { unique: true, partialFilterExpression: { provider: 'custom-backend' }, name: 'customBackend_provider_idOnTheSource' });
    // A fresh service (its index is created once per process) creates ours and drops the old one.
    const svc = h.makeService({});
    const acme = await svc.login(ALICE, 'acme');
    const globex = await svc.login(ALICE, 'globex');
    seen.push(acme.token, acme.refreshToken, globex.token, globex.refreshToken);
    await svc.close();
    const names = (await users.indexes()).map((ix) => ix.name);
    expect(names).toContain('customBackend_provider_idOnTheSource_tenantId');
    expect(names).not.toContain('customBackend_provider_idOnTheSource');
    const ix = (await users.indexes()).find((i) => i.name === 'customBackend_provider_idOnTheSource_tenantId');
    expect(ix).toMatchObject({ key: { provider: 1, idOnTheSource: 1, tenantId: 1 }, unique: true });
  });
});
