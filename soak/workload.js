'use strict';

/**
 * The simulated people and programs: users with one or two browsers, each browser several tabs
 * sharing its cookie jar (a refresh cookie, rotated by whichever tab refreshes; Set-Cookie applied
 * in the order answers arrive, as a browser does); API clients holding backend JWTs (jwks mode);
 * the backend sending events (profile changes, disables and re-enables); a thief replaying copied
 * refresh cookies. Each keeps the facts the invariants are judged on.
 */

const crypto = require('crypto');
const { ObjectId } = require('bson');
const { signEvent } = require('../__test__/support/events');

const EVENTS_PATH = '/api/auth/custom-backend/events';
const CLIENT_ABORT_MS = 90_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const claimsOf = (jwt) => {
  try {
    return b64json(String(jwt).split('.')[1]);
  } catch {
    return null;
  }
};
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

/** A seeded PRNG (mulberry32), so a run's choices repeat with --seed (timing still varies). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseCookies(setCookies) {
  const out = {};
  for (const h of setCookies) {
    const [pair, ...attrs] = h.split(';').map((x) => x.trim());
    const i = pair.indexOf('=');
    const name = pair.slice(0, i);
    const value = decodeURIComponent(pair.slice(i + 1));
    const expired = attrs.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()) ||
      attrs.some((a) => /^max-age=0$/i.test(a));
    out[name] = expired || value === '' ? null : value;
  }
  return out;
}

class World {
  constructor(ctx) {
    this.ctx = ctx; // { cfg, books, mock, edges, dbClient, secrets, rand, running(), grace, eventsSecret }
    this.users = [];
    this.apiClients = [];
    this.tasks = [];
    this.revocationBoundMs = ctx.cfg.revocationBoundMs;
  }

  pick(arr) {
    return arr[Math.floor(this.ctx.rand() * arr.length)];
  }

  between(lo, hi) {
    return lo + this.ctx.rand() * (hi - lo);
  }

  /** One HTTP exchange through the load balancer's hop to a random (or given) server. */
  async http(kind, { method = 'GET', path, token, cookie, body, headers = {}, edge } = {}) {
    const { books, secrets } = this.ctx;
    const target = edge || this.pick(this.ctx.edges);
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (cookie) h.cookie = cookie;
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const t0 = Date.now();
    let status = 0;
    let text = '';
    let setCookies = [];
    let err = null;
    try {
      const res = await fetch(target.url + path, { method, headers: h, body: payload, redirect: 'manual', signal: AbortSignal.timeout(CLIENT_ABORT_MS) });
      status = res.status;
      setCookies = res.headers.getSetCookie();
      text = await res.text();
    } catch (e) {
      err = e;
      status = 0;
    }
    const t1 = Date.now();
    books.request(kind, t0, t1, status, err, target.name, path);
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* text answer */
    }
    const cookies = parseCookies(setCookies);
    if (json && typeof json.token === 'string') secrets.add(json.token);
    if (cookies.refreshToken) secrets.add(cookies.refreshToken);
    return { status: err ? 0 : status, json, text, cookies, err, t0, t1, edge: target };
  }

  /* ------------------------------------------------------------- people */

  makeUsers() {
    const { cfg, mock, secrets } = this.ctx;
    for (let i = 0; i < cfg.users; i++) {
      const id = `su-${String(i + 1).padStart(3, '0')}`;
      const password = `pw-${crypto.randomBytes(9).toString('hex')}`;
      secrets.add(password);
      mock.addUser({ id, username: `soak${i + 1}`, password, email: `soak${i + 1}@example.com`, name: `Soak User ${i + 1}`, roles: ['staff'] });
      const user = {
        id, login: `soak${i + 1}`, password, libreId: null, disabled: false, endAll: [], revocations: [],
        browsers: [], loginRefusedWhileEnabled: 0,
      };
      const nBrowsers = i % 4 === 0 ? 2 : 1;
      for (let b = 0; b < nBrowsers; b++) {
        const browser = { user, name: `${id}/b${b}`, jar: null, session: null, ended: new Set(), loggingIn: null, pausedUntil: 0, tabs: [] };
        for (let t = 0; t < cfg.tabs; t++) browser.tabs.push({ browser, name: `${browser.name}/t${t}`, token: null, tokenAt: 0 });
        user.browsers.push(browser);
      }
      this.users.push(user);
    }
    for (let i = 0; i < cfg.apiClients; i++) {
      const id = `api-${i + 1}`;
      mock.addUser({ id, username: `apiclient${i + 1}`, password: `pw-${crypto.randomBytes(9).toString('hex')}`, email: `apiclient${i + 1}@example.com`, name: `API client ${i + 1}`, roles: ['staff'] });
      this.apiClients.push({ id, disabled: false, revocations: [], endAll: [], token: null, tokenAt: 0, epoch: 0 });
    }
  }

  /**
   * Whether a 401 for `session` of `browser` is explained by an end someone asked for: this
   * browser's own logout of it, or an end of all the user's sessions (log out everywhere, a
   * disable) that had not finished when the session's login was sent (it may have ended it).
   */
  explained(browser, session) {
    if (!session) return true;
    if (browser.ended.has(session.id)) return true;
    return browser.user.endAll.some((e) => e.td === null || session.loginSentAt <= e.td);
  }

  applyJar(browser, cookies) {
    if (!('refreshToken' in cookies)) return;
    if (cookies.refreshToken) {
      const c = claimsOf(cookies.refreshToken);
      const sid = c && c.sessionId;
      browser.jar = { refreshToken: cookies.refreshToken, provider: cookies.token_provider || 'custom-backend', sessionId: sid };
      if (!browser.session || browser.session.id !== sid) {
        // A session this browser did not log into: only a refresh that answers with another
        // session's cookie would do that.
        browser.session = { id: sid, loginSentAt: Date.now(), loginAnsweredAt: Date.now(), adopted: true };
      }
    } else {
      browser.jar = null;
    }
  }

  cookieOf(browser) {
    return browser.jar ? `refreshToken=${encodeURIComponent(browser.jar.refreshToken)}; token_provider=${browser.jar.provider}` : undefined;
  }

  checkUser(who, user, answerUserId, what) {
    if (!answerUserId || !user.libreId) return;
    if (answerUserId !== user.libreId) {
      this.ctx.books.violation('wrongUser', `${what} for ${who} answered user ${answerUserId}, expected ${user.libreId}`);
    }
  }

  async login(browser) {
    if (browser.loggingIn) return browser.loggingIn;
    browser.loggingIn = (async () => {
      const { user } = browser;
      const sentAt = Date.now();
      const r = await this.http('login', { method: 'POST', path: '/api/auth/login', body: { email: user.login, password: user.password } });
      if (r.status === 200 && r.json && r.json.token) {
        if (user.libreId && r.json.user?.id && r.json.user.id !== user.libreId) this.checkUser(browser.name, user, r.json.user.id, 'login');
        user.libreId = user.libreId || r.json.user?.id || null;
        this.applyJar(browser, r.cookies);
        if (browser.jar) browser.session = { id: browser.jar.sessionId, loginSentAt: sentAt, loginAnsweredAt: r.t1 };
        const tab = browser.tabs[0];
        tab.token = r.json.token;
        tab.tokenAt = r.t1;
        tab.tokenFrom = r.edge.name;
        for (const t of browser.tabs.slice(1)) t.token = null; // the other tabs reload: a refresh each
      } else if (r.status === 401 || r.status === 403) {
        if (!user.disabled && !user.endAll.some((e) => e.disable && (e.td === null || r.t0 < e.reenabledAt + 2000))) {
          this.ctx.books.note('loginRefusedWhileEnabled', `${browser.name} ${r.status} at ${this.ctx.books.rel(r.t0)}: ${r.text.slice(0, 100)}`);
        }
        browser.pausedUntil = Date.now() + 2000;
      } else {
        browser.pausedUntil = Date.now() + 1000; // 5xx / no answer: try again soon
      }
    })().finally(() => {
      browser.loggingIn = null;
    });
    return browser.loggingIn;
  }

  async refresh(tab) {
    const { browser } = tab;
    const { user } = browser;
    const session = browser.session;
    const cookie = this.cookieOf(browser);
    if (!cookie) return;
    const r = await this.http('refresh', { method: 'POST', path: '/api/auth/refresh', cookie });
    if (r.status === 200 && r.json && r.json.token) {
      this.checkUser(tab.name, user, r.json.user?.id, 'refresh');
      this.applyJar(browser, r.cookies);
      tab.token = r.json.token;
      tab.tokenAt = r.t1;
      tab.tokenFrom = r.edge.name;
      if (!r.cookies.refreshToken) this.ctx.books.note('refreshOutageAnswer');
    } else if (r.status === 401 || (r.status === 200 && !(r.json && r.json.token))) {
      if (!this.explained(browser, session)) {
        this.ctx.books.violation('sessionLost', `${tab.name} session ${session?.id} refused at ${this.ctx.books.rel(r.t0)} on ${r.edge.name}: ${r.status} ${r.text.slice(0, 120)}`);
      }
      // The browser follows the answer's cookies (a 401 clears them), then logs in again.
      if (browser.jar && browser.jar.sessionId === session?.id) browser.jar = null;
      this.applyJar(browser, r.cookies);
      tab.token = null;
    } else {
      tab.retryAt = Date.now() + 1000; // 503 (outage) or no answer: the session stays, retry
    }
  }

  /** An API request: the revocation bound and the user are judged on every 200. */
  async api(who, user, tokenHolder, path = '/api/user') {
    const usedTokenAt = tokenHolder.tokenAt;
    const r = await this.http('api', { path, token: tokenHolder.token });
    if (r.status === 200) {
      if (path === '/api/user') this.checkUser(who, user, r.json?.id ?? r.json?._id, 'api');
      for (const rev of user.revocations) {
        if (rev.td === null || usedTokenAt >= rev.ts) continue;
        const deadline = this.revocationDeadline(rev);
        if (r.t0 > deadline) {
          const iat = claimsOf(tokenHolder.token)?.iat;
          this.ctx.books.violation('revokedAccepted', `${who} token issued by ${tokenHolder.tokenFrom || 'the backend'} at ${this.ctx.books.rel(usedTokenAt)} (iat ${iat ? this.ctx.books.rel(iat * 1000) : '?'}) accepted on ${r.edge.name} at ${this.ctx.books.rel(r.t0)}; ${rev.kind} answered at ${this.ctx.books.rel(rev.td)} (deadline ${this.ctx.books.rel(deadline)})`);
          break;
        }
      }
    } else if (r.status === 401) {
      if (user.revocations.some((rev) => rev.td !== null && usedTokenAt < rev.ts && r.t0 > rev.td)) this.ctx.books.note('revokedTokenRefused');
      tokenHolder.token = null;
    }
    return r;
  }

  /** td + bound, pushed past any database outage in between (no poll can read then). */
  revocationDeadline(rev) {
    let deadline = rev.td + this.revocationBoundMs;
    for (const w of this.ctx.books.windows) {
      if (!w.name.startsWith('db-')) continue;
      if (w.start <= deadline && (w.end === null || w.end + w.allowanceMs >= rev.ts)) {
        deadline = Math.max(deadline, (w.end ?? Infinity) + w.allowanceMs + this.revocationBoundMs);
      }
    }
    return deadline;
  }

  async backendFamiliesOf(query) {
    try {
      const docs = await this.ctx.dbClient.db().collection('sessions').find(query, { projection: { 'customBackend.sid': 1 } }).maxTimeMS(2000).toArray();
      return docs.map((d) => ({ id: String(d._id), sid: d.customBackend?.sid })).filter((d) => d.sid);
    } catch {
      return null; // database down: not checked
    }
  }

  /** After a logout that answered 200: each ended session's backend family must be revoked. */
  checkBackendEnded(families, t0, t1, who, backendFailures) {
    const { mock, books, familyBySidHash } = this.ctx;
    for (const { sid } of families) {
      const fam = familyBySidHash.get(sid);
      if (!fam) continue;
      books.note('backendSessionsChecked');
      const live = (this.ctx.refreshTokensOf.get(fam) || []).some((tok) => {
        const rec = mock.tokenInfo(tok);
        return rec && rec.family === fam && !rec.revoked && !rec.rotated && rec.exp > Date.now();
      });
      if (!live) continue;
      const backendFault = books.windowsMeeting(t0, t1, (w) => w.name.startsWith('backend-') || w.name === 'edge-drop').length > 0;
      if (backendFault || backendFailures) books.note('backendLogoutFailedInFault', `${who} at ${books.rel(t0)}`);
      else books.violation('backendSessionAlive', `${who}: backend session of a logout answered 200 at ${books.rel(t1)} is still alive`);
    }
  }

  async logout(tab) {
    const { browser } = tab;
    const session = browser.session;
    if (!browser.jar || !tab.token) return;
    browser.ended.add(browser.jar.sessionId);
    if (session) browser.ended.add(session.id);
    const families = session ? await this.backendFamiliesOf({ _id: new ObjectId(browser.jar.sessionId) }) : null;
    for (let attempt = 0; attempt < 4; attempt++) {
      const r = await this.http('logout', { method: 'POST', path: '/api/auth/logout', token: tab.token, cookie: this.cookieOf(browser) });
      if (r.status === 200) {
        if (families) {
          await sleep(300);
          this.checkBackendEnded(families, r.t0, r.t1, tab.name, 0);
        }
        break;
      }
      if (r.status === 401) break; // the token was revoked meanwhile: the session is gone or will be
      await sleep(1000);
    }
    browser.jar = null;
    for (const t of browser.tabs) t.token = null;
    browser.pausedUntil = Date.now() + this.between(2000, 6000);
  }

  async logoutAll(tab) {
    const { browser } = tab;
    const { user } = browser;
    if (!tab.token || !user.libreId) return;
    const families = await this.backendFamiliesOf({ user: new ObjectId(user.libreId) });
    const e = { ts: Date.now(), td: null, kind: 'logout everywhere' };
    user.endAll.push(e);
    user.revocations.push(e);
    let r;
    for (let attempt = 0; attempt < 4; attempt++) {
      r = await this.http('logoutAll', { method: 'POST', path: '/api/auth/logout/all', token: tab.token, cookie: this.cookieOf(browser) });
      if (r.status === 200 || r.status === 401) break;
      await sleep(1000);
    }
    e.td = r.t1;
    if (r.status === 200 && families) {
      await sleep(300);
      this.checkBackendEnded(families, e.ts, r.t1, `${tab.name} (everywhere)`, r.json?.backendFailures || 0);
    }
    if (r.status !== 200) {
      // Not done (or not known to be): no bound to hold it to.
      user.revocations.splice(user.revocations.indexOf(e), 1);
    }
    browser.jar = null;
    for (const t of browser.tabs) t.token = null;
    browser.pausedUntil = Date.now() + this.between(2000, 6000);
  }

  async tabLoop(tab) {
    const { browser } = tab;
    const { cfg } = this.ctx;
    await sleep(this.between(0, 3000));
    while (this.ctx.running()) {
      await sleep(this.between(cfg.thinkMinMs, cfg.thinkMaxMs));
      if (!this.ctx.running()) break;
      if (Date.now() < browser.pausedUntil || Date.now() < (tab.retryAt || 0)) continue;
      if (!browser.jar) {
        if (browser.user.disabled) {
          // The person sits on the login page; a tab still holding a token keeps calling the API.
          if (tab.token) await this.api(tab.name, browser.user, tab);
          continue;
        }
        await this.login(browser);
        continue;
      }
      if (!tab.token) {
        await this.refresh(tab);
        continue;
      }
      const x = this.ctx.rand();
      if (x < cfg.pLogoutAll) await this.logoutAll(tab);
      else if (x < cfg.pLogoutAll + cfg.pLogout) await this.logout(tab);
      else if (x < cfg.pLogoutAll + cfg.pLogout + cfg.pRefresh) await this.refresh(tab);
      else if (x < cfg.pLogoutAll + cfg.pLogout + cfg.pRefresh + 0.03) await this.api(tab.name, browser.user, tab, '/api/auth/sessions');
      else await this.api(tab.name, browser.user, tab);
    }
  }

  /* ------------------------------------------------------------- API clients (backend JWTs) */

  async apiClientLoop(c) {
    const { mock, cfg } = this.ctx;
    await sleep(this.between(0, 2000));
    while (this.ctx.running()) {
      await sleep(this.between(cfg.thinkMinMs, cfg.thinkMaxMs));
      if (!this.ctx.running()) break;
      if (c.disabled && !c.token) continue;
      const stale = !c.token || Date.now() - c.tokenAt > 20_000 || c.epoch !== this.ctx.keyEpoch;
      if (stale && !c.disabled) {
        c.token = mock.issueAccessToken(c.id, { ttlSec: 120 });
        this.ctx.secrets.add(c.token);
        c.tokenAt = Date.now();
        c.epoch = this.ctx.keyEpoch;
        c.fresh = true;
      }
      const fresh = c.fresh;
      c.fresh = false;
      const held = { token: c.token, tokenAt: c.tokenAt };
      const r = await this.api(c.id, { ...c, libreId: null }, held);
      if (r.status === 401) {
        if (fresh && !c.disabled && !c.revocations.some((rev) => rev.td === null || r.t0 < rev.td + 5000)) {
          const jwksWindow = this.ctx.books.windowsMeeting(r.t0, r.t1, (w) => w.name === 'jwks-rotate').length > 0;
          this.ctx.books.note(jwksWindow ? 'freshBackendTokenRefusedInJwksWindow' : 'freshBackendTokenRefused', `${c.id} at ${this.ctx.books.rel(r.t0)} on ${r.edge.name}: ${r.text.slice(0, 100)}`);
        }
        c.token = null;
      }
    }
  }

  /* ------------------------------------------------------------- the backend's events */

  async sendEvent(event) {
    const signed = signEvent(this.ctx.eventsSecret, event);
    for (let attempt = 0; attempt < 30 && this.ctx.running(); attempt++) {
      const r = await this.http('event', {
        method: 'POST', path: EVENTS_PATH, body: signed.body, headers: { 'X-Custom-Backend-Signature': signed.signature },
      });
      if (r.status === 200) return r;
      if (r.status === 401 || r.status === 400) {
        // A fresh signature (the time moves on) for the retry.
        Object.assign(signed, signEvent(this.ctx.eventsSecret, event));
      }
      await sleep(1000);
    }
    return null;
  }

  async eventsLoop() {
    const { cfg, mock, books } = this.ctx;
    let n = 0;
    await sleep(cfg.warmupMs);
    while (this.ctx.running()) {
      await sleep(this.between(cfg.eventEveryMs * 0.5, cfg.eventEveryMs * 1.5));
      if (!this.ctx.running()) break;
      n += 1;
      const pool = [...this.users.filter((u) => !u.disabled && u.libreId), ...this.apiClients.filter((c) => !c.disabled)];
      if (!pool.length) continue;
      const who = this.pick(pool);
      const evId = `soak-evt-${process.pid}-${n}`;
      if (this.ctx.rand() < 0.55) {
        const u = mock.updateUser(who.id, { name: `Renamed ${who.id} ${n}` });
        const { password, ...pub } = u; // eslint-disable-line no-unused-vars
        const r = await this.sendEvent({ id: evId, type: 'user.changed', time: Date.now() / 1000, userId: who.id, user: pub });
        if (r && r.json?.sessionsEnded) books.note('userChangedEndedSessions', `${who.id}: ${r.json.sessionsEnded}`);
        continue;
      }
      // user.disabled: the backend refuses the user first, then tells LibreChat.
      const keep = mock.users.find((u) => u.id === who.id).password;
      who.disabled = true;
      mock.updateUser(who.id, { password: `disabled-${crypto.randomBytes(6).toString('hex')}` });
      mock.revokeUser(who.id);
      const e = { ts: Date.now(), td: null, kind: 'user.disabled', disable: true, reenabledAt: Infinity };
      who.endAll.push(e);
      who.revocations.push(e);
      const r = await this.sendEvent({ id: evId, type: 'user.disabled', time: Date.now() / 1000, userId: who.id });
      e.td = r ? r.t1 : Date.now();
      if (!r) who.revocations.splice(who.revocations.indexOf(e), 1);
      books.note('usersDisabled');
      // Re-enabled a while later (the person's account is back).
      const back = setTimeout(() => {
        mock.updateUser(who.id, { password: keep });
        who.disabled = false;
        e.reenabledAt = Date.now();
      }, this.between(8000, 15000));
      this.ctx.timers.add(back);
    }
  }

  /* ------------------------------------------------------------- the thief */

  /**
   * A refresh cookie copied by a thief. Variant A: the victim refreshes, then (after the grace) the
   * thief replays the superseded cookie: reuse, the session must end. Variant B: the thief uses the
   * current cookie first, the victim's own (now superseded, never-used successor) is honoured once
   * as a lost answer; after that only one of them may hold the session. Two of them refreshing
   * successfully at the end is two live sessions from one refresh token.
   */
  async theftLoop() {
    const { cfg, mock, books, secrets } = this.ctx;
    let n = 0;
    await sleep(cfg.warmupMs + 2000);
    while (this.ctx.running()) {
      n += 1;
      const id = `victim-${n}`;
      const password = `pw-${crypto.randomBytes(9).toString('hex')}`;
      secrets.add(password);
      mock.addUser({ id, username: `victim${n}`, password, email: `victim${n}@example.com`, name: `Victim ${n}`, roles: ['staff'] });
      const out = await this.theftOnce(`victim${n}`, password, n % 2 === 0 ? 'B' : 'A');
      books.note(`theft${out}`);
      await sleep(this.between(3000, 8000));
    }
  }

  async theftOnce(login, password, variant) {
    const { books } = this.ctx;
    // More than the grace after the step before, as every server counts it: a supersession stamped
    // by a server whose clock is ahead counts as within the grace for that much longer
    // (src/store/refresh_rules.rs, within_grace).
    const gap = this.ctx.cfg.graceMs + this.ctx.cfg.clockOffsetSec * 1000 + 1500;
    const jarOf = (r) => (r.cookies.refreshToken ? `refreshToken=${encodeURIComponent(r.cookies.refreshToken)}; token_provider=custom-backend` : null);
    const ok = (r) => r.status === 200 && r.json && r.json.token;
    const refused = (r) => r.status === 401;
    const wait = async (ms) => {
      const until = Date.now() + ms;
      while (Date.now() < until && this.ctx.running()) await sleep(200);
      return this.ctx.running();
    };
    let l;
    for (let attempt = 0; attempt < 15 && this.ctx.running(); attempt++) {
      l = await this.http('login', { method: 'POST', path: '/api/auth/login', body: { email: login, password } });
      if (ok(l)) break;
      await sleep(1000);
    }
    if (!ok(l) || !jarOf(l)) return 'Inconclusive';
    const stolen = jarOf(l);
    const trail = [];
    let victim = stolen;
    let thief = stolen;
    // A step that met an outage (5xx, no answer, the outage answer) is tried again, as a client would: a 503 did
    // nothing, and a lost answer is the lost-answer case the rules are for.
    const step = async (cookie) => {
      let r;
      for (let attempt = 0; attempt < 15 && this.ctx.running(); attempt++) {
        r = await this.http('refresh', { method: 'POST', path: '/api/auth/refresh', cookie });
        trail.push(`${r.edge.name}:${r.status}`);
        const outageAnswer = r.status === 200 && !r.cookies.refreshToken; // backend down: no rotation
        if (r.status !== 0 && r.status < 500 && !outageAnswer) break;
        await sleep(1000);
      }
      return r;
    };
    if (variant === 'A') {
      // The victim refreshes; the thief replays the cookie it copied. That cookie is the last one
      // used and its successor was never used, so the server cannot tell it from a victim whose
      // answer was lost: it is honoured once (the lost-answer rule), and the victim's successor
      // is marked skipped. The victim's next refresh is then reuse: the session ends for both.
      const v1 = await step(victim);
      if (!ok(v1) || !jarOf(v1)) return 'Inconclusive';
      victim = jarOf(v1);
      if (!(await wait(gap))) return 'Inconclusive';
      const t1 = await step(thief);
      if (ok(t1) && jarOf(t1)) thief = jarOf(t1);
      else if (!refused(t1)) return 'Inconclusive';
      if (!(await wait(gap))) return 'Inconclusive';
      const v2 = await step(victim);
      if (!ok(v2) && !refused(v2)) return 'Inconclusive';
      if (ok(v2)) {
        books.violation('reuseUndetected', `variant A: ${ok(t1) ? 'thief and victim both refreshed one session\'s copied cookie' : 'the session lived on after reuse was detected'} (${login}; refreshes ${trail.join(' ')})`);
        return 'Undetected';
      }
      if (ok(t1)) {
        // The thief's lineage must be dead too (the session was deleted).
        if (!(await wait(1000))) return 'Inconclusive';
        const t2 = await step(thief);
        if (ok(t2)) {
          books.violation('reuseUndetected', `variant A: the thief's lineage lived on after the victim's reuse was detected (${login}; refreshes ${trail.join(' ')})`);
          return 'Undetected';
        }
      }
      return 'Detected';
    }
    // Variant B: every step more than the grace after the one before.
    const t1 = await step(thief);
    if (!ok(t1) || !jarOf(t1)) return 'Inconclusive';
    thief = jarOf(t1);
    if (!(await wait(gap))) return 'Inconclusive';
    const v1 = await step(victim); // the victim's cookie: superseded, its successor never used
    if (ok(v1) && jarOf(v1)) victim = jarOf(v1);
    else if (!refused(v1)) return 'Inconclusive';
    if (!(await wait(gap))) return 'Inconclusive';
    const t2 = await step(thief); // the successor the victim's refresh skipped: reuse
    if (!(await wait(gap))) return 'Inconclusive';
    const v2 = ok(v1) ? await step(victim) : v1;
    if ([t2, v2].some((r) => !ok(r) && !refused(r))) return 'Inconclusive';
    if (ok(t2) && ok(v2)) {
      books.violation('reuseUndetected', `variant B: thief and victim both refreshed one session's copied cookie, each more than the grace after the other (${login}; refreshes ${trail.join(' ')})`);
      return 'Undetected';
    }
    return 'Detected';
  }

  start() {
    for (const u of this.users) for (const b of u.browsers) for (const t of b.tabs) this.tasks.push(this.tabLoop(t));
    for (const c of this.apiClients) this.tasks.push(this.apiClientLoop(c));
    this.tasks.push(this.eventsLoop());
    if (this.ctx.cfg.theft) this.tasks.push(this.theftLoop());
  }

  /** Disables of API clients reach their `revocations` as for users (shared eventsLoop). */
  async done() {
    await Promise.allSettled(this.tasks);
  }
}

module.exports = { World, claimsOf, sha256, rng, parseCookies, sleep };
