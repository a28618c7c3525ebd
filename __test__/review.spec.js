'use strict';

// Issue 14 ("tests an auth reviewer would trust"): checks of the test harness itself, and the items
// that have no better home. Each was seen failing against deliberately broken code.

const request = require('supertest');
const { startHarness } = require('./support/harness');

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
