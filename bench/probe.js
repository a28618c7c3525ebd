'use strict';

/**
 * One-shot measurements in a process of their own (bench/run.js starts it pinned to the server's
 * core, with `--expose-gc`, and reads the result over IPC):
 *
 *   BENCH_PROBE=memory  RSS and heap per cached user and per cached backend-token verdict at each
 *                       size of BENCH_MEMORY_SIZES (default 10000,100000), and RSS before and after
 *                       a flood of BENCH_FLOOD (100000) distinct bogus backend tokens at the default
 *                       AUTH_CACHE_MAX_ENTRIES (10000): is it bounded?
 *   BENCH_PROBE=cold    time from require() of the package to the first authenticated answer
 *                       (service construction, Express app, first database connection, user load)
 *
 * Memory: BENCH_MEMORY_PHASE=users|verdicts|flood, one phase per process (memory an earlier phase
 * freed would be reused by the next and hide its growth); read after two forced garbage collections. RSS includes the addon's native caches, the
 * heap only the shim's objects (its memo of parsed users). The users are written straight into the
 * database (a copy of the bench user's LibreChat document, new _id/email/username each), the tokens
 * are EdDSA JWTs signed here with the mock backend's published key (BENCH_PROBE_FILE).
 */

const fs = require('fs');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const { insertUserCopies } = require('./users');

const t0 = performance.now();
// Calls in flight while filling a cache (BENCH_MEMORY_WIDTH).
const WIDTH = Number(process.env.BENCH_MEMORY_WIDTH) || 32;
const quiet = { info() {}, debug() {}, warn() {}, error() {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function snapshot() {
  for (let i = 0; i < 2; i++) {
    global.gc?.();
    await sleep(50);
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

const delta = (a, b, n) => ({
  rssBytesPerEntry: (b.rss - a.rss) / n,
  heapBytesPerEntry: (b.heapUsed - a.heapUsed) / n,
  rssMB: b.rss / 2 ** 20,
  heapMB: b.heapUsed / 2 ** 20,
});

/** Runs fn(i) for i in [from, to) with `width` in flight. */
async function pool(from, to, width, fn) {
  let i = from;
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < to) {
      const k = i;
      i += 1;
      await fn(k);
    }
  }));
}

function signer(spec) {
  const key = crypto.createPrivateKey(spec.key.privateKeyPem);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = b64({ alg: 'EdDSA', typ: 'JWT', kid: spec.key.kid });
  const iat = Math.floor(Date.now() / 1000);
  const claims = (jti) => ({
    sub: spec.sub, iss: spec.issuer, aud: spec.audience, email: spec.email, name: spec.name,
    preferred_username: spec.username, roles: spec.roles, iat, exp: iat + 3600, jti,
  });
  return {
    good(i) {
      const data = `${header}.${b64(claims(`mem-${i}`))}`;
      return `${data}.${crypto.sign(null, Buffer.from(data), key).toString('base64url')}`;
    },
    bogus(i) {
      // JWT-shaped, the right kid, a signature that cannot verify: each reaches the verify.
      return `${header}.${b64(claims(`bogus-${i}`))}.${crypto.randomBytes(64).toString('base64url')}`;
    },
  };
}

async function insertUsers(spec, n) {
  const { MongoClient, ObjectId } = require('mongodb');
  const client = new MongoClient(process.env.MONGO_URI);
  await client.connect();
  try {
    const users = client.db().collection('users');
    const template = await users.findOne({ _id: new ObjectId(spec.userId) });
    if (!template) throw new Error('the bench user is not in the database');
    return await insertUserCopies(users, template, n);
  } finally {
    await client.close();
  }
}

async function memory() {
  const pkg = require('..');
  const spec = JSON.parse(fs.readFileSync(process.env.BENCH_PROBE_FILE, 'utf8'));
  const sizes = (process.env.BENCH_MEMORY_SIZES || '10000,100000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  const floodN = Number(process.env.BENCH_FLOOD ?? 100000);
  const max = sizes[sizes.length - 1];
  const sign = signer(spec);
  const phase = process.env.BENCH_MEMORY_PHASE || 'users';
  const out = { phase, sizes };
  const started = performance.now();
  if (phase === 'verdicts') return verdicts(pkg, spec, sizes, max, sign, out, started);
  if (phase === 'flood') return flood(pkg, sign, floodN, out, started);

  // Users: loadUser of `max` distinct users, measured at each size.
  out.users = [];
  // run.js writes them beforehand into a database of their own (BENCH_MEMORY_IDS_FILE, MONGO_URI).
  const ids = process.env.BENCH_MEMORY_IDS_FILE
    ? JSON.parse(fs.readFileSync(process.env.BENCH_MEMORY_IDS_FILE, 'utf8'))
    : await insertUsers(spec, max);
  if (ids.length < max) throw new Error(`${ids.length} memory users prepared, ${max} needed`);
  if (!process.env.BENCH_MEMORY_IDS_FILE) out.insertSec = (performance.now() - started) / 1000;
  const service = new pkg.CustomBackendAuthService({
    AUTH_CACHE_MAX_ENTRIES: String(max + 1000), USER_CACHE_TTL: '3600', logger: quiet,
  });
  await service.loadUser(spec.userId);
  const base = await snapshot();
  let done = 0;
  for (const size of sizes) {
    await pool(done, size, 32, async (i) => {
      if (!(await service.loadUser(ids[i]))) throw new Error(`user ${ids[i]} not found`);
    });
    done = size;
    out.users.push({ entries: size, ...delta(base, await snapshot(), size) });
  }
  await service.close();
  out.elapsedSec = (performance.now() - started) / 1000;
  return out;
}

/** `max` distinct backend JWTs of one user (JWKS, EdDSA), each verified once and cached. */
async function verdicts(pkg, spec, sizes, max, sign, out, started) {
  out.verdicts = [];
  const service = new pkg.CustomBackendAuthService({
    BACKEND_BEARER_TOKENS: 'jwks', AUTH_CACHE_MAX_ENTRIES: String(max + 1000), BACKEND_TOKEN_CACHE_TTL: '3600',
    // The user stays cached for the whole fill: with the default 5 s it expired every 5 s, and all
    // WIDTH calls in flight then looked the user up by backend id at once (one lookup since the
    // package shares it; before, 32 collection scans on secantusdb: the 100k fill took 140-300 s).
    USER_CACHE_TTL: '3600',
    logger: quiet,
  });
  await service.authenticateBackendToken(sign.good(-1));
  const base = await snapshot();
  let done = 0;
  for (const size of sizes) {
    await pool(done, size, WIDTH, async (i) => {
      await service.authenticateBackendToken(sign.good(i));
    });
    done = size;
    out.verdicts.push({ entries: size, ...delta(base, await snapshot(), size) });
  }
  await service.close();
  out.elapsedSec = (performance.now() - started) / 1000;
  return out;
}

/** Distinct bogus tokens at the default cache bound, through the strategy's two calls. */
async function flood(pkg, sign, floodN, out, started) {
  const service = new pkg.CustomBackendAuthService({
    BACKEND_BEARER_TOKENS: 'jwks', AUTH_CACHE_MAX_ENTRIES: process.env.BENCH_FLOOD_CACHE_MAX || '10000', logger: quiet,
  });
  await service.authenticateBackendToken(sign.good(-2));
  const before = await snapshot();
  let refused = 0;
  const wave = (from) => pool(from, from + floodN, 32, async (i) => {
    const t = sign.bogus(i);
    const { kind } = service.checkBearer(t);
    // Refused by the check itself (a known key's bad signature), or by the async call.
    if (kind === 'invalid') refused += 1;
    else if (kind === 'backend') await service.authenticateBackendToken(t).then(() => {}, () => { refused += 1; });
  });
  // Several floods of as many other tokens each: a bounded cache stops adding after the first.
  const waves = Math.max(1, Number(process.env.BENCH_FLOOD_WAVES) || 3);
  const rssAfterMB = [];
  const heapAfterMB = [];
  for (let w = 0; w < waves; w++) {
    await wave(w * floodN);
    const m = await snapshot();
    rssAfterMB.push(m.rss / 2 ** 20);
    heapAfterMB.push(m.heapUsed / 2 ** 20);
  }
  out.flood = {
    tokens: floodN, waves, refused, cacheMaxEntries: Number(process.env.BENCH_FLOOD_CACHE_MAX || 10000),
    rssBeforeMB: before.rss / 2 ** 20, rssAfterMB, heapBeforeMB: before.heapUsed / 2 ** 20, heapAfterMB,
  };
  await service.close();
  out.elapsedSec = (performance.now() - started) / 1000;
  return out;
}

async function cold() {
  const tRequire = performance.now();
  const pkg = require('..');
  const tLoaded = performance.now();
  const service = pkg.configureCustomBackendAuth({ logger: quiet });
  const tService = performance.now();
  const express = require('express');
  const passport = require('passport');
  const app = express();
  app.use(passport.initialize());
  passport.use('jwt', pkg.customJwtStrategy({ service }));
  app.get('/api/user', passport.authenticate('jwt', { session: false }), (req, res) => res.json({ id: req.user.id }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const tListen = performance.now();
  const url = `http://127.0.0.1:${server.address().port}/api/user`;
  const get = () => fetch(url, { headers: { authorization: `Bearer ${process.env.BENCH_TOKEN}` } });
  const r = await get();
  const body = await r.json().catch(() => ({}));
  const tFirst = performance.now();
  if (r.status !== 200 || body.id !== process.env.BENCH_USER_ID) {
    throw new Error(`first request answered ${r.status} ${JSON.stringify(body).slice(0, 100)}`);
  }
  const t2 = performance.now();
  await get();
  const tSecond = performance.now();
  server.close();
  await service.close();
  return {
    nodeStartMs: t0, // process start to this script's first line (Node itself)
    requireMs: tLoaded - tRequire,
    serviceMs: tService - tLoaded,
    appAndListenMs: tListen - tService,
    firstAnswerMs: tFirst - tListen,
    fromRequireToFirstAnswerMs: tFirst - tRequire,
    secondAnswerMs: tSecond - t2,
  };
}

const probes = { memory, cold };
const probe = probes[process.env.BENCH_PROBE];
(probe ? probe() : Promise.reject(new Error(`unknown BENCH_PROBE ${process.env.BENCH_PROBE}`))).then(
  (result) => (process.send ? process.send({ type: 'probe', result }, () => process.exit(0)) : (console.log(JSON.stringify(result, null, 2)), process.exit(0))),
  (err) => (process.send ? process.send({ type: 'probe', error: err.message }, () => process.exit(1)) : (console.error(err), process.exit(1))),
);
