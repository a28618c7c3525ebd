'use strict';

// The wiring of docs/install.md, as the LibreChat-shaped test app carries it: the doc's diffs are
// the shipped patches, the app's files hold exactly their added lines, and what the wiring changes
// beyond login, refresh and logout (the login page's startup config, the admin panel's login, the
// switch) behaves as the doc says. The other suites run through the same wiring.

const fs = require('fs');
const path = require('path');
const request = require('supertest');
const { startHarness } = require('./support/harness');

const REPO = path.join(__dirname, '..');
const APP = path.join(__dirname, 'support', 'librechat');
const read = (...p) => fs.readFileSync(path.join(...p), 'utf8');

/** The test app's file for a LibreChat file of a given wiring patch. */
const APP_FILE = {
  'api/server/index.js': 'server/index.js',
  'api/server/routes/auth.js': 'server/routes/auth.js',
  'api/server/routes/config.js': 'server/routes/config.js',
  'api/server/routes/admin/auth.js': 'server/routes/admin/auth.js',
};
const PATCHES = {
  'wiring-v0.8.patch': APP_FILE,
  'wiring-v0.7.9.patch': { ...APP_FILE, 'api/server/routes/auth.js': 'server/routes/auth-v0.7.9.js' },
};

/** A patch's added lines per file, trimmed, blank lines dropped. */
function addedLines(patch) {
  const files = {};
  let current = null;
  for (const line of patch.split('\n')) {
    const file = /^\+\+\+ b\/(.+)$/.exec(line);
    if (file) files[(current = file[1])] = [];
    else if (current && line.startsWith('+') && line.slice(1).trim()) files[current].push(line.slice(1).trim());
  }
  return files;
}

describe('the wiring of docs/install.md', () => {
  const doc = read(REPO, 'docs', 'install.md');

  test.each(Object.keys(PATCHES))('docs/install.md shows %s whole, as the package ships it', (name) => {
    const patch = read(REPO, 'librechat', name);
    const diff = patch.slice(patch.indexOf('diff --git'));
    const block = new RegExp(`<!-- wiring: ${name.replace(/\./g, '\\.')} -->\\n\`\`\`diff\\n([\\s\\S]*?)\`\`\`\\n`).exec(doc);
    expect(block).not.toBeNull();
    expect(block[1]).toBe(diff);
  });

  test.each(Object.entries(PATCHES))('the test app carries every line %s adds, in order, in the same files', (name, files) => {
    const added = addedLines(read(REPO, 'librechat', name));
    expect(Object.keys(added).sort()).toEqual(Object.keys(files).filter((f) => added[f]).sort());
    for (const [file, lines] of Object.entries(added)) {
      const appLines = read(APP, files[file]).split('\n').map((l) => l.trim());
      let at = 0;
      for (const line of lines) {
        const found = appLines.indexOf(line, at);
        if (found < 0) throw new Error(`${files[file]} lacks (after line ${at}) the line ${name} adds to ${file}: ${line}`);
        at = found + 1;
      }
    }
  });
});

const ALICE = { email: 'Alice', password: 'alice-password-1' }; // backend roles: staff
const BOB = { email: 'bob', password: 'bob-password-2' }; // backend roles: admin, staff
const ROLES = { BACKEND_ROLES_FIELD: 'roles', BACKEND_ADMIN_ROLES: 'admin' };

describe('#10.1 the login page: GET /api/config through the wiring', () => {
  let h;
  const config = async () => (await request(h.app).get('/api/config')).body;
  beforeAll(async () => {
    h = await startHarness({ db: 'wiring-config', env: { ALLOW_REGISTRATION: 'true', ALLOW_PASSWORD_RESET: 'true' } });
  });
  afterAll(() => h.close());

  test('#10.1 BACKEND_LOGIN_USES_USERNAME=true announces user-name login (the form shows "Username", no email check)', async () => {
    await h.reconfigure({ BACKEND_LOGIN_USES_USERNAME: 'true' });
    expect((await config()).ldap).toEqual({ enabled: false, username: true });
  });

  test('#10.1 without it the form stays the email form', async () => {
    await h.reconfigure({ BACKEND_LOGIN_USES_USERNAME: 'false' });
    expect((await config()).ldap).toEqual({ enabled: false });
  });

  test('#10.1 while the feature is on, no registration and no password reset are offered, and any password length may be sent', async () => {
    const body = await config();
    expect(body).toMatchObject({ registrationEnabled: false, passwordResetEnabled: false, minPasswordLength: 1, emailLoginEnabled: true });
  });

  test('#10.1 a user name typed into the form logs in as typed', async () => {
    await h.reconfigure({ BACKEND_LOGIN_USES_USERNAME: 'true' });
    const res = await request(h.app).post('/api/auth/login').send({ email: ' carol ', password: 'carol-password-3' });
    expect(res.status).toBe(200);
    expect(h.mock.requests.at(-1).body).toEqual({ username: 'carol', password: 'carol-password-3' });
  });

  test.each([
    ['/api/auth/register', { email: 'new@example.com', password: 'a-password-1', name: 'New', username: 'new' }],
    ['/api/auth/requestPasswordReset', { email: 'alice@example.com' }],
    ['/api/auth/resetPassword', { userId: '000000000000000000000001', token: 'x', password: 'a-password-1' }],
  ])('#22.5 POST %s is closed while the switch is on, even with ALLOW_REGISTRATION and ALLOW_PASSWORD_RESET true: LibreChat\'s own "not allowed" answer', async (route, body) => {
    const res = await request(h.app).post(route).send(body);
    expect(res.status).toBe(403);
    if (route.endsWith('/register')) expect(res.body).toEqual({ message: 'Registration is not allowed.' });
    else expect(res.text).toBe('Password reset is not allowed.');
    expect(await h.db.collection('users').countDocuments({ email: 'new@example.com' })).toBe(0);
  });

  test('#10.1 BACKEND_LOGIN_USES_USERNAME must be true or false: anything else stops start-up', () => {
    expect(() => h.makeService({ BACKEND_LOGIN_USES_USERNAME: 'yes' })).toThrow(/BACKEND_LOGIN_USES_USERNAME/);
  });
});

describe('#10.3 the admin panel: POST /api/admin/login/local through the wiring', () => {
  let h;
  const adminLogin = (body) => request(h.app).post('/api/admin/login/local').send(body);
  beforeAll(async () => {
    h = await startHarness({ db: 'wiring-admin', env: ROLES });
  });
  beforeEach(() => h.clear());
  afterAll(() => h.close());

  test('#10.3 a backend user holding an admin role logs in through the backend; LibreChat\'s admin check passes', async () => {
    const res = await adminLogin(BOB);
    expect(res.status).toBe(200);
    expect(h.mock.calls.login).toBe(1);
    expect(res.body.user).toMatchObject({ role: 'ADMIN', provider: 'custom-backend', username: 'bob' });
    const verify = await request(h.app).get('/api/admin/verify').set('Authorization', `Bearer ${res.body.token}`);
    expect(verify.status).toBe(200);
    expect(verify.body.user.id).toBe(res.body.user.id);
  });

  test('#10.3 a backend user without an admin role is refused by LibreChat\'s admin check: 403, no token', async () => {
    const res = await adminLogin(ALICE);
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ message: 'Forbidden' });
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  test('#21.10 a login the admin check refuses leaves no session and no live backend session behind', async () => {
    await h.reconfigure({ ...ROLES, BACKEND_LOGOUT_URL: h.mock.urls.logout });
    const until = async (check) => {
      for (let i = 0; i < 200 && !(await check()); i += 1) await new Promise((r) => setTimeout(r, 25));
      return check();
    };
    for (let i = 0; i < 6; i += 1) expect((await adminLogin(ALICE)).status).toBe(403);
    expect(await until(async () => (await h.db.collection('sessions').countDocuments({})) === 0)).toBe(true);
    expect(await until(async () => h.mock.calls.logout === 6)).toBe(true);
    // The same for a user with LibreChat 2FA: the pending login and its backend session end.
    const alice = await h.db.collection('users').findOneAndUpdate({ username: 'alice' }, { $set: { twoFactorEnabled: true } });
    expect(alice).toBeTruthy();
    const pending = await adminLogin(ALICE);
    expect(pending.status).toBe(403);
    expect(await until(async () => (await h.db.collection('customBackendPending2fa').countDocuments({})) === 0)).toBe(true);
    expect(await until(async () => h.mock.calls.logout === 7)).toBe(true);
    // A login the admin check lets through keeps its session.
    const bob = await adminLogin(BOB);
    expect(bob.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(await h.db.collection('sessions').countDocuments({})).toBe(1);
    expect(h.mock.calls.logout).toBe(7);
    await h.reconfigure(ROLES);
  });

  test('#10.3 the local password path is closed: a LibreChat local account is asked of the backend, which does not know it', async () => {
    await h.lc.methods.createUser({ provider: 'local', email: 'root@example.com', username: 'root', name: 'Root', role: 'ADMIN', emailVerified: true });
    const res = await adminLogin({ email: 'root@example.com', password: 'whatever-it-was' });
    expect(res.status).toBe(404);
    expect(h.mock.calls.login).toBe(1);
  });

  test('#10.3 a wrong password at the admin login is the main login\'s 404', async () => {
    const res = await adminLogin({ ...BOB, password: 'not-it' });
    expect(res.status).toBe(404);
  });
});

describe('USE_CUSTOM_BACKEND_AUTH=false: the same wiring gives back LibreChat\'s own login', () => {
  let h;
  beforeAll(async () => {
    h = await startHarness({ db: 'wiring-off', env: { USE_CUSTOM_BACKEND_AUTH: 'false', ALLOW_REGISTRATION: 'true', ALLOW_PASSWORD_RESET: 'true' } });
  });
  afterAll(async () => {
    await h.close();
    process.env.USE_CUSTOM_BACKEND_AUTH = 'true';
  });

  test.each([
    ['/api/auth/login', 'requireLocalAuth'],
    ['/api/auth/refresh', 'refreshController'],
    ['/api/auth/register', 'registrationController'],
    ['/api/auth/requestPasswordReset', 'resetPasswordRequestController'],
    ['/api/auth/resetPassword', 'resetPasswordController'],
    ['/api/admin/login/local', 'requireLocalAuth'],
  ])('POST %s runs LibreChat\'s %s, never the backend', async (route, stock) => {
    const res = await request(h.app).post(route).send(ALICE);
    expect(res.status).toBe(418);
    expect(res.body.message).toBe(`LibreChat ${stock}`);
    expect(h.mock.calls.login + h.mock.calls.refresh).toBe(0);
  });

  test('the jwt strategy is LibreChat\'s: it accepts LibreChat access tokens and nothing of the backend', async () => {
    const userId = await h.lc.methods.createUser({ provider: 'local', email: 'dora@example.com', username: 'dora', name: 'Dora', emailVerified: true });
    const token = await h.lc.methods.generateToken({ _id: userId, username: 'dora', provider: 'local', email: 'dora@example.com' });
    const user = await request(h.app).get('/api/user').set('Authorization', `Bearer ${token}`);
    expect(user.status).toBe(200);
    expect(user.body.username).toBe('dora');
    expect(require('passport')._strategy('custom-backend')).toBeUndefined();
    const logout = await request(h.app).post('/api/auth/logout').set('Authorization', `Bearer ${token}`);
    expect(logout.body.message).toBe('LibreChat logoutController');
  });

  test('the login page is LibreChat\'s: registration as configured, no user-name switch', async () => {
    const body = (await request(h.app).get('/api/config')).body;
    expect(body).toMatchObject({ registrationEnabled: true, ldap: { enabled: false } });
    expect(body.minPasswordLength).toBeUndefined();
  });
});
