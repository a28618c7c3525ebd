'use strict';

// Mapping, roles and start-up checks: any backend fits by configuration alone.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const { execFileSync } = require('child_process');
const request = require('supertest');
const { harnessHooks, freshService, parseSetCookies, TEST_ENV } = require('./support/harness');
const { ALICE, BOB, CAROL, postLogin, rememberTokensIn } = require('./support/auth');
const { CustomBackendAuthService } = require('..');

describe('mapping and roles', () => {
  let h;
  const seen = [];
  const login = (creds) => postLogin(h.app, creds).then(rememberTokensIn(seen));
  const ROLES = { BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' };

  harnessHooks({ db: 'mapping' }, (made) => (h = made), { each: freshService, seen });

  test('a backend with nested, renamed fields and snake_case tokens logs in', async () => {
    await h.reconfigure({
      BACKEND_LOGIN_USERNAME_FIELD: 'login',
      BACKEND_USER_ID_FIELD: 'uid',
      BACKEND_USER_EMAIL_FIELD: 'profile.mail',
      BACKEND_USER_USERNAME_FIELD: 'account.login',
      BACKEND_USER_NAME_FIELD: 'profile.displayName',
      BACKEND_USER_AVATAR_FIELD: 'profile.picture',
    });
    h.mock.set({
      loginUsernameField: 'login',
      fieldStyle: 'snake',
      userFields: (u) => ({
        uid: Number(u.id.slice(2)),
        profile: { mail: u.email, displayName: u.name, picture: `https://img.example/${u.id}.png` },
        account: { login: u.username },
      }),
    });
    const res = await login(ALICE);
    expect(res.status).toBe(200);
    expect(h.mock.requests[0].body).toEqual({ login: 'Alice', password: 'alice-password-1' });
    expect(res.body.user).toMatchObject({
      idOnTheSource: '1001',
      email: 'alice@example.com',
      username: 'alice',
      name: 'Alice Liddell',
      avatar: 'https://img.example/u-1001.png',
    });
    // The same through user info (bare) rather than the login answer.
    h.mock.set({ noUserInLogin: true, userShape: 'bare' });
    const again = await login(ALICE);
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(res.body.user.id);
    expect(h.mock.calls.userinfo).toBe(1);
  });

  test('missing optional fields fall back as LibreChat does', async () => {
    h.mock.set({ userFields: ({ id, email }) => ({ id, email }) });
    const res = await login(ALICE);
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ username: 'alice', name: 'Alice' });
  });

  test('admin roles promote and demote at every login; the first-user rule is off', async () => {
    await h.reconfigure(ROLES);
    expect((await login(ALICE)).body.user.role).toBe('USER'); // first user, but roles are mapped
    expect((await login(BOB)).body.user.role).toBe('ADMIN');
    h.mock.updateUser('u-1001', { roles: ['staff', 'admin'] });
    expect((await login(ALICE)).body.user.role).toBe('ADMIN');
    h.mock.updateUser('u-1001', { roles: ['staff'] });
    expect((await login(ALICE)).body.user.role).toBe('USER');
    expect((await h.db.collection('users').findOne({ idOnTheSource: 'u-1001' })).role).toBe('USER');
  });

  test('a refresh applies a role change too', async () => {
    await h.reconfigure(ROLES);
    const res = await login(ALICE);
    const cookie = `refreshToken=${parseSetCookies(res).refreshToken.value}`;
    h.mock.updateUser('u-1001', { roles: ['admin'] });
    const r = await request(h.app).post('/api/auth/refresh').set('Cookie', cookie);
    expect(r.status).toBe(200);
    seen.push(r.body.token, parseSetCookies(r).refreshToken?.value);
    expect(r.body.user.role).toBe('ADMIN');
  });

  test('required roles: a user without one is refused (ACCESS_DENIED, nothing written)', async () => {
    await h.reconfigure({ BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff, ops' });
    const res = await login(CAROL);
    expect([res.status, res.body.code]).toEqual([404, 'ACCESS_DENIED']);
    expect(res.body.message).toMatch(/role/);
    expect(await h.counts()).toEqual({ users: 0, sessions: 0, balances: 0 });
    expect((await login(ALICE)).status).toBe(200);
  });

  test('required roles: an existing session ends at its next refresh when the role is gone', async () => {
    await h.reconfigure({ BACKEND_ROLES_FIELD: 'roles', BACKEND_REQUIRED_ROLES: 'staff' });
    const res = await login(ALICE);
    const cookie = `refreshToken=${parseSetCookies(res).refreshToken.value}`;
    h.mock.updateUser('u-1001', { roles: [] });
    const r = await request(h.app).post('/api/auth/refresh').set('Cookie', cookie);
    expect(r.status).toBe(401);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
  });

  test('allowed email domains, as LibreChat\'s own allow-list', async () => {
    await h.reconfigure({ BACKEND_ALLOWED_EMAIL_DOMAINS: 'example.com, @corp.example' });
    const res = await login(CAROL); // carol@example.org
    expect([res.status, res.body.code]).toEqual([404, 'ACCESS_DENIED']);
    expect(await h.counts()).toEqual({ users: 0, sessions: 0, balances: 0 });
    expect((await login(ALICE)).status).toBe(200);
  });

  test('BACKEND_LINK_EXISTING=email links a local account on first login', async () => {
    const localId = await h.lc.methods.createUser({ provider: 'local', email: 'carol@example.org', username: 'carol-local', name: 'Local Carol', emailVerified: true });
    expect((await login(CAROL)).status).toBe(409);
    await h.reconfigure({ BACKEND_LINK_EXISTING: 'email' });
    const res = await login(CAROL);
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: localId.toString(), provider: 'custom-backend', idOnTheSource: 'u-1003', emailVerified: true, name: 'Carol' });
    expect(await h.db.collection('users').countDocuments({})).toBe(1);
    // Later logins find it by the backend id.
    expect((await login(CAROL)).body.user.id).toBe(localId.toString());
  });
});

describe('#21.4 linking by email', () => {
  let h;
  const seen = [];
  harnessHooks({ db: 'mapping-link' }, (made) => (h = made), { each: freshService, seen });
  const login = (creds) => postLogin(h.app, creds).then(rememberTokensIn(seen));
  const users = () => h.db.collection('users');
  const SECRETS = { password: '$2a$10$abcdefghijklmnopqrstuv', totpSecret: 'sealed-totp', backupCodes: [{ codeHash: 'x', used: false }], twoFactorEnabled: true };
  const local = async (email, emailVerified) => {
    const id = await h.lc.methods.createUser({ provider: 'local', email, username: `${email.split('@')[0]}-local`, name: 'Local', emailVerified });
    await users().updateOne({ _id: id }, { $set: SECRETS });
    return id;
  };

  test('#21.4 an account whose email was never verified is not linked: 409, and it stays as it was', async () => {
    await h.reconfigure({ BACKEND_LINK_EXISTING: 'email' });
    const id = await local('carol@example.org', false);
    const before = await users().findOne({ _id: id });
    const res = await login(CAROL);
    expect([res.status, res.body.code]).toEqual([409, 'ACCOUNT_CONFLICT']);
    expect(await users().findOne({ _id: id })).toEqual(before);
    expect(await h.db.collection('sessions').countDocuments({})).toBe(0);
  });

  test('#21.4 linking drops the local password and LibreChat 2FA; BACKEND_LINK_KEEP_LOCAL_SECRETS=true keeps them', async () => {
    await h.reconfigure({ BACKEND_LINK_EXISTING: 'email' });
    const carol = await local('carol@example.org', true);
    const res = await login(CAROL);
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(carol.toString());
    const linked = await users().findOne({ _id: carol });
    expect(linked).toMatchObject({ provider: 'custom-backend', idOnTheSource: 'u-1003', twoFactorEnabled: false });
    for (const k of ['password', 'totpSecret', 'backupCodes']) expect([k, linked[k]]).toEqual([k, undefined]);
    // The linked user is a session's like any other: no 2FA step is asked.
    expect(res.body.twoFAPending).toBeUndefined();

    await h.reconfigure({ BACKEND_LINK_EXISTING: 'email', BACKEND_LINK_KEEP_LOCAL_SECRETS: 'true' });
    const kept = await local('bob@example.com', true);
    expect((await login(BOB)).body.twoFAPending).toBe(true);
    expect(await users().findOne({ _id: kept })).toMatchObject({ provider: 'custom-backend', ...SECRETS });
  });
});

describe('start-up checks', () => {
  const base = {
    ...TEST_ENV,
    BACKEND_AUTH_URL: 'https://idp.example/login',
    BACKEND_USER_INFO_URL: 'https://idp.example/userinfo',
    BACKEND_REFRESH_URL: 'https://idp.example/refresh',
    MONGO_URI: 'mongodb://127.0.0.1:1/x',
  };
  // Every service built here is closed after its test (#14.20), whether the test passed or not.
  const built = [];
  const build = (extra) => {
    const svc = new CustomBackendAuthService({ ...base, ...extra });
    built.push(svc);
    return svc;
  };
  afterEach(async () => {
    await Promise.all(built.splice(0).map((svc) => svc.close()));
  });

  test.each([
    ['an http:// backend in production', { NODE_ENV: 'production', BACKEND_REFRESH_URL: 'http://idp.example/refresh' }, 'BACKEND_REFRESH_URL'],
    ['a malformed URL', { BACKEND_USER_INFO_URL: 'idp.example/userinfo' }, 'BACKEND_USER_INFO_URL'],
    ['an unknown value', { BACKEND_SESSION_MODE: 'cookies' }, 'BACKEND_SESSION_MODE'],
    ['an unknown bearer mode', { BACKEND_BEARER_TOKENS: 'maybe' }, 'BACKEND_BEARER_TOKENS'],
    ['a flag that is not true/false', { BACKEND_PROVISION_ON_BEARER: 'yes' }, 'BACKEND_PROVISION_ON_BEARER'],
    ['equal JWT secrets', { JWT_REFRESH_SECRET: TEST_ENV.JWT_SECRET }, 'JWT_REFRESH_SECRET'],
    ['an encryption key of the wrong size', { BACKEND_TOKEN_ENCRYPTION_KEY: 'ab'.repeat(16) }, 'BACKEND_TOKEN_ENCRYPTION_KEY'],
    ['admin roles without a roles field', { BACKEND_ADMIN_ROLES: 'admin' }, 'BACKEND_ROLES_FIELD'],
    ['jwks without a JWKS URL', { BACKEND_BEARER_TOKENS: 'jwks' }, 'BACKEND_JWKS_URL'],
    ['a CA bundle that does not exist', { BACKEND_CA_CERT_PATH: '/nonexistent/ca.pem' }, 'BACKEND_CA_CERT_PATH'],
    ['a CA file without certificates', { BACKEND_CA_CERT_PATH: __filename }, 'BACKEND_CA_CERT_PATH'],
  ])('%s: CONFIG_INVALID naming the variable and what is expected', (_name, extra, variable) => {
    let error;
    try {
      build(extra);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', status: 500 });
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
    expect(error.message.length).toBeGreaterThan(variable.length + 10);
  });

  test('http:// is accepted in production only with BACKEND_ALLOW_INSECURE_HTTP=true', () => {
    expect(() => build({ NODE_ENV: 'production', BACKEND_AUTH_URL: 'http://idp.internal/login', BACKEND_ALLOW_INSECURE_HTTP: 'true' })).not.toThrow();
  });

  describe('TLS and redirects', () => {
    let dir;
    let server;
    let plain;
    let calls;
    const ok = JSON.stringify({ token: 'tls-access-token-1', refreshToken: 'tls-refresh-token-1', user: { id: 't-1', email: 'tls@example.com' } });

    beforeAll(async () => {
      // A private CA and a server certificate for 127.0.0.1, made with openssl.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-tls-'));
      const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Test CA');
      run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
      fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
      run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
      calls = { tls: 0, redirectTarget: 0 };
      server = https.createServer({ key: fs.readFileSync(path.join(dir, 'srv.key')), cert: fs.readFileSync(path.join(dir, 'srv.pem')) }, (req, res) => {
        calls.tls++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(ok);
      });
      plain = http.createServer((req, res) => {
        if (req.url === '/target') {
          calls.redirectTarget++;
          return res.writeHead(200, { 'content-type': 'application/json' }).end(ok);
        }
        return res.writeHead(307, { location: '/target' }).end();
      });
      await Promise.all([server, plain].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
    });
    afterAll(async () => {
      await Promise.all([server, plain].map((s) => new Promise((r) => s.close(r))));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('an internal backend with a private CA: refused without BACKEND_CA_CERT_PATH, accepted with it', async () => {
      const url = `https://127.0.0.1:${server.address().port}/login`;
      const strict = build({ BACKEND_AUTH_URL: url, BACKEND_TIMEOUT_MS: '2000' });
      await expect(strict.login({ email: 'tls', password: 'tls-password' })).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      expect(calls.tls).toBe(0); // TLS refused before any request reached the handler
      const trusting = build({ BACKEND_AUTH_URL: url, BACKEND_CA_CERT_PATH: path.join(dir, 'ca.pem'), MONGO_TIMEOUT_MS: '300' });
      // The backend call succeeds (the database of `base` is unreachable, so the login stops there).
      await expect(trusting.login({ email: 'tls', password: 'tls-password' })).rejects.toMatchObject({ code: 'DB_UNAVAILABLE' });
      expect(calls.tls).toBe(1);
    });

    test('redirects from the backend are not followed', async () => {
      const svc = build({ BACKEND_AUTH_URL: `http://127.0.0.1:${plain.address().port}/login` });
      await expect(svc.login({ email: 'x', password: 'y-password' })).rejects.toMatchObject({ code: 'BACKEND_BAD_RESPONSE', status: 502 });
      expect(calls.redirectTarget).toBe(0);
    });
  });
});
