'use strict';

/**
 * Junk tokens against real users' new backend tokens (#21.8): how many real requests the user-info
 * budget refuses while one address sends never-seen tokens faster than the budget refills.
 *
 *   npm run bench:junk       (BENCH_JUNK_RATE=59, BENCH_SECONDS=20, BENCH_REAL_RATE=4)
 *
 * The default budget (BACKEND_USERINFO_RATE 50, _BURST 100, _MAX_CONCURRENT 32). Three real users,
 * each at an address of their own from which they used a backend token before; each real request
 * carries a token the backend has just issued (never seen by the server). Prints one JSON line:
 * real requests by status, junk requests by status, user-info calls. Not a speed figure: a jest
 * file (the harness and the test database), outside the test suite.
 */

const crypto = require('crypto');
const request = require('supertest');
const { startHarness } = require('../__test__/support/harness');

const JUNK_RATE = Number(process.env.BENCH_JUNK_RATE ?? 59);
const REAL_RATE = Number(process.env.BENCH_REAL_RATE ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);

test('junk tokens against real users\' new tokens', async () => {
  const h = await startHarness({ db: 'junk-flood' });
  try {
    h.app.set('trust proxy', 1); // LibreChat's default (TRUST_PROXY)
    await h.clear();
    const users = h.mock.users.slice(0, 3);
    const from = (ip, token) => request(h.app).get('/api/user').set('X-Forwarded-For', ip).set('Authorization', `Bearer ${token}`);
    for (const [i, u] of users.entries()) {
      await request(h.app).post('/api/auth/login').send({ email: u.email, password: u.password }).expect(200);
      expect((await from(`10.0.0.${i + 1}`, h.mock.issueAccessToken(u.id))).status).toBe(200);
    }
    const count = (tally, status) => { tally[status] = (tally[status] ?? 0) + 1; };
    const real = {};
    const junk = {};
    const calls = h.mock.calls.userinfo;
    const pending = [];
    const every = (rate, fn) => setInterval(() => pending.push(fn()), 1000 / rate);
    let n = 0;
    const timers = [
      every(JUNK_RATE, async () => count(junk, (await from('10.9.9.9', `tok_${crypto.randomBytes(16).toString('hex')}`)).status)),
      every(REAL_RATE, async () => {
        const i = n++ % users.length;
        count(real, (await from(`10.0.0.${i + 1}`, h.mock.issueAccessToken(users[i].id))).status);
      }),
    ];
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    timers.forEach(clearInterval);
    await Promise.all(pending);
    const figures = { junkPerSecond: JUNK_RATE, seconds: SECONDS, real, junk, userinfoCalls: h.mock.calls.userinfo - calls };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    expect(Object.keys(real).every((s) => s === '200' || s === '503')).toBe(true);
  } finally {
    await h.close();
  }
}, 120000);
