'use strict';

// Issue 14.18: AUTH_CACHE_MAX_ENTRIES end to end. The eviction order itself (expired first, then the
// tenth closest to expiry) is unit-tested in src/shared/cache.rs; here the bound is seen from outside, over
// the wiring of docs/install.md: a user the full cache dropped is read again from the database.

const { startHarness } = require('./support/harness');
const { ALICE, BOB_BY_EMAIL, CAROL, loginSession, getWithBearer } = require('./support/auth');

// Each with the name the backend gives.
const USERS = [
  { ...ALICE, name: 'Alice Liddell' },
  { ...BOB_BY_EMAIL, name: 'Bob Builder' },
  { ...CAROL, name: 'Carol' },
];

describe('issue 14.18: AUTH_CACHE_MAX_ENTRIES', () => {
  let h;
  beforeAll(async () => {
    // A user cache of two entries, whose entries would otherwise live ten minutes.
    h = await startHarness({ db: 'cache-max-entries', env: { AUTH_CACHE_MAX_ENTRIES: '2', USER_CACHE_TTL: '600' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const login = async ({ email, password }) => (await loginSession(h.app, { email, password })).token;
  const nameSeen = async (token) => {
    const res = await getWithBearer(h.app, token);
    expect(res.status).toBe(200);
    return res.body.name;
  };

  test('#14.18 with AUTH_CACHE_MAX_ENTRIES=2 a third user evicts the one closest to expiry, which is then read from the database', async () => {
    const [alice, bob, carol] = USERS;
    const a = await login(alice); // cached first: closest to expiry
    const b = await login(bob);
    // Changed in the database behind the service's back (as an administrator's script would):
    // a cached user does not see it, a user read from the database does.
    const changed = await h.db.collection('users').updateMany({}, { $set: { name: 'Renamed in the database' } });
    expect(changed.modifiedCount).toBe(2);
    expect(await nameSeen(a)).toBe(alice.name);
    expect(await nameSeen(b)).toBe(bob.name);
    expect(h.service.checkBearer(a).kind).toBe('user');

    // The cache is full of live entries: Carol's login drops 2 / 10 + 1 = 1 entry, Alice's.
    const c = await login(carol);
    expect(h.service.checkBearer(a).kind).toBe('load');
    expect(h.service.checkBearer(b).kind).toBe('user');
    expect(await nameSeen(b)).toBe(bob.name);
    // Alice is read again from the database (and cached, which now drops Bob, closest to expiry).
    expect(await nameSeen(a)).toBe('Renamed in the database');
    expect(h.service.checkBearer(b).kind).toBe('load');
    expect(await nameSeen(b)).toBe('Renamed in the database');
    expect(await nameSeen(c)).toBe(carol.name);
  });
});
