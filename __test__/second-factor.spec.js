'use strict';

// #27: the backend's own second factor through LibreChat's 2FA screen. The mock backend has an MFA
// user (Dora, code 246810, backup codes) whose login it answers {mfaRequired, challengeId}; the
// code LibreChat's page posts to /api/auth/2fa/verify-temp goes to the backend's verify endpoint.

const request = require('supertest');
const jwt = require('jsonwebtoken');
const { ObjectId } = require('bson');
const { startHarness, parseSetCookies } = require('./support/harness');
const { ALICE, postLogin, postRefresh, getWithBearer, rememberTokensIn } = require('./support/auth');

const DORA = { id: 'u-2001', username: 'dora', email: 'dora@example.com', name: 'Dora', password: 'dora-password-4', mfaCode: '246810', backupCodes: ['backup-one', 'backup-two'], roles: ['staff'] };
const DORA_LOGIN = { email: 'dora', password: DORA.password };
const verify = (app, body) => request(app).post('/api/auth/2fa/verify-temp').send(body);

describe('#27 the backend\'s second factor', () => {
  let h;
  const seen = [];
  const remember = rememberTokensIn(seen);
  const audits = (event) => h.logs.lines.filter((l) => l.includes('[customBackendAuth:audit]') && l.includes(`"event":"${event}"`));
  /** A login of Dora: the temp token of the backend's challenge. */
  const challenge = async () => {
    const res = await postLogin(h.app, DORA_LOGIN);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ twoFAPending: true, tempToken: expect.any(String) });
    seen.push(res.body.tempToken, h.mock.lastChallenge);
    return res.body.tempToken;
  };

  beforeAll(async () => {
    h = await startHarness({ db: 'second-factor', env: { BACKEND_MFA_MAX_ATTEMPTS: '3' } });
    await h.reconfigure({ BACKEND_MFA_VERIFY_URL: h.mock.urls.mfa });
  });
  beforeEach(async () => {
    await h.clear();
    h.mock.removeUser(DORA.id);
    h.mock.addUser(DORA);
    h.secrets.add(DORA.mfaCode);
    for (const b of DORA.backupCodes) h.secrets.add(b);
    await h.reconfigure({ BACKEND_MFA_VERIFY_URL: h.mock.urls.mfa });
  });
  afterAll(async () => {
    h.assertNoSecretsLogged(seen);
    await h.close();
  });

  test('the challenge: LibreChat\'s {twoFAPending, tempToken}, the challenge sealed on the server, no user or session yet', async () => {
    const tempToken = await challenge();
    const payload = jwt.verify(tempToken, h.vars.JWT_SECRET);
    expect(payload).toMatchObject({ twoFAPending: true, cbaChallenge: expect.any(String) });
    expect(payload.exp - payload.iat).toBeLessThanOrEqual(300);
    expect(tempToken).not.toContain(h.mock.lastChallenge);
    const record = await h.db.collection('customBackendMfaChallenges').findOne({});
    expect(JSON.stringify(record)).not.toContain(h.mock.lastChallenge);
    expect(record.attempts).toBe(0);
    expect(await h.db.collection('users').countDocuments({})).toBe(0);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
    expect(audits('second_factor.challenged').length).toBeGreaterThanOrEqual(1);
  });

  test('the right code starts the session as a login does: user, cookies, token; the temp token is then spent', async () => {
    const tempToken = await challenge();
    const res = remember(await verify(h.app, { tempToken, token: DORA.mfaCode }));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ email: 'dora@example.com', idOnTheSource: 'u-2001', provider: 'custom-backend' });
    expect(h.mock.lastMfa).toEqual({ challengeId: h.mock.lastChallenge, code: DORA.mfaCode });
    const cookies = parseSetCookies(res);
    expect(cookies.refreshToken.attrs.httponly).toBe(true);
    expect((await getWithBearer(h.app, res.body.token)).status).toBe(200);
    expect(remember(await postRefresh(h.app, `refreshToken=${cookies.refreshToken.value}`)).status).toBe(200);
    expect(audits('second_factor.passed').length).toBe(1);
    // Replayed: nothing.
    const replay = await verify(h.app, { tempToken, token: DORA.mfaCode });
    expect(replay.status).toBe(401);
    expect(replay.body.message).toBe('Invalid or expired temporary token');
  });

  test('a wrong code answers LibreChat\'s wrong-code message and the challenge stays usable; the attempts are bounded', async () => {
    const tempToken = await challenge();
    const wrong = await verify(h.app, { tempToken, token: '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ message: 'Invalid 2FA code or backup code' });
    expect(remember(await verify(h.app, { tempToken, token: DORA.mfaCode })).status).toBe(200);

    // BACKEND_MFA_MAX_ATTEMPTS=3: three wrong codes, then the challenge is void, the right code too.
    const again = await challenge();
    for (let i = 0; i < 3; i += 1) expect((await verify(h.app, { tempToken: again, token: `11111${i}` })).status).toBe(401);
    const fourth = await verify(h.app, { tempToken: again, token: DORA.mfaCode });
    expect(fourth.status).toBe(401);
    expect(fourth.body.message).toMatch(/Too many attempts/);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
    expect(audits('second_factor.exhausted').length).toBe(1);
    expect(audits('second_factor.failed').length).toBeGreaterThanOrEqual(4);
  });

  test('an expired challenge, a forged temp token, and a challenge the backend says is used up', async () => {
    const past = Math.floor(Date.now() / 1000) - 10;
    const expired = jwt.sign({ twoFAPending: true, cbaChallenge: new ObjectId().toHexString(), iat: past - 60, exp: past }, h.vars.JWT_SECRET);
    expect((await verify(h.app, { tempToken: expired, token: DORA.mfaCode })).body.message).toBe('Invalid or expired temporary token');
    // Not signed with JWT_SECRET: not ours, so LibreChat's own controller answers (the stand-in's 418).
    const forged = jwt.sign({ twoFAPending: true, cbaChallenge: new ObjectId().toHexString() }, 'not-the-secret');
    expect((await verify(h.app, { tempToken: forged, token: DORA.mfaCode })).status).toBe(418);
    // The backend forgot the challenge (404): void here too, without a second call.
    const tempToken = await challenge();
    h.mock.set({ mfa: { status: 404 } });
    expect((await verify(h.app, { tempToken, token: DORA.mfaCode })).body.message).toBe('Invalid or expired temporary token');
    h.mock.set({ mfa: null });
    const calls = h.mock.calls.mfa;
    expect((await verify(h.app, { tempToken, token: DORA.mfaCode })).status).toBe(401);
    expect(h.mock.calls.mfa).toBe(calls);
  });

  test('an outage mid-challenge answers as at login, costs no attempt, and the challenge is still good after', async () => {
    const tempToken = await challenge();
    h.mock.set({ mfa: { status: 503 } });
    const down = await verify(h.app, { tempToken, token: DORA.mfaCode });
    expect(down.status).toBe(500);
    expect(down.body.code).toBe('BACKEND_UNAVAILABLE');
    h.mock.set({ mfa: null });
    const record = await h.db.collection('customBackendMfaChallenges').findOne({});
    expect(record.attempts).toBe(0);
    expect(remember(await verify(h.app, { tempToken, token: DORA.mfaCode })).status).toBe(200);
  });

  test('backup codes go to the backend marked as such only when BACKEND_MFA_BACKUP_CODES=true', async () => {
    const tempToken = await challenge();
    const calls = h.mock.calls.mfa;
    expect((await verify(h.app, { tempToken, backupCode: 'backup-one' })).body.message).toBe('Invalid 2FA code or backup code');
    expect(h.mock.calls.mfa).toBe(calls);
    await h.reconfigure({ BACKEND_MFA_VERIFY_URL: h.mock.urls.mfa, BACKEND_MFA_BACKUP_CODES: 'true' });
    const ok = remember(await verify(h.app, { tempToken: await challenge(), backupCode: 'backup-one' }));
    expect(ok.status).toBe(200);
    expect(h.mock.lastMfa).toEqual({ challengeId: h.mock.lastChallenge, code: 'backup-one', backup: true });
  });

  test('a backend answering the challenge with 403 (BACKEND_MFA_STATUS) is read too; a plain 403 stays a refusal', async () => {
    await h.reconfigure({ BACKEND_MFA_VERIFY_URL: h.mock.urls.mfa, BACKEND_MFA_STATUS: '403' });
    h.mock.set({ login: { mfaStatus: 403 } });
    const tempToken = await challenge();
    expect(remember(await verify(h.app, { tempToken, token: DORA.mfaCode })).status).toBe(200);
    h.mock.set({ login: { mfaStatus: null } });
    const wrongPassword = await postLogin(h.app, { email: 'alice', password: 'nope' });
    expect(wrongPassword.status).toBe(404);
    // A 403 whose body is not JSON (a text page) is a refusal too, not a bad answer.
    h.mock.set({ login: { status: 403, body: 'Forbidden' } });
    const text = await postLogin(h.app, { email: 'alice', password: 'nope' });
    expect(text.status).toBe(404);
    expect(text.body.code).toBe('INVALID_CREDENTIALS');
    h.mock.set({ login: { status: null, body: null } });
  });

  test('LibreChat\'s own 2FA is untouched: its temp tokens go to its controller; users without a backend challenge log in as before', async () => {
    const lcTemp = jwt.sign({ userId: new ObjectId().toHexString(), twoFAPending: true }, h.vars.JWT_SECRET, { expiresIn: '5m' });
    const res = await verify(h.app, { tempToken: lcTemp, token: '123456' });
    expect(res.status).toBe(418);
    expect(res.body.message).toBe('LibreChat verify2FAWithTempToken');
    expect((await verify(h.app, {})).status).toBe(418);
    expect(remember(await postLogin(h.app, ALICE)).status).toBe(200);
  });

  test('a user with LibreChat 2FA too: the backend\'s second factor counts as the second step (no second code)', async () => {
    const first = remember(await verify(h.app, { tempToken: await challenge(), token: DORA.mfaCode }));
    await h.db.collection('users').updateOne({ _id: new ObjectId(first.body.user._id) }, { $set: { twoFactorEnabled: true } });
    const res = remember(await verify(h.app, { tempToken: await challenge(), token: DORA.mfaCode }));
    expect(res.status).toBe(200);
    expect(res.body.token).toEqual(expect.any(String));
  });

  test('without BACKEND_MFA_VERIFY_URL a challenge answer is a bad answer, not a session', async () => {
    await h.reconfigure({ BACKEND_MFA_VERIFY_URL: '' });
    const res = await postLogin(h.app, DORA_LOGIN);
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('BACKEND_BAD_RESPONSE');
  });
});
