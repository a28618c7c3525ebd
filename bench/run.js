#!/usr/bin/env node
'use strict';

/**
 * `npm run bench`: per-request authentication throughput of LibreChat's stock stack, the seed's
 * design and ours, in one run on this machine, plus a micro-benchmark of the verify export.
 * See bench/README.md for what is measured and how to read it.
 *
 * Layout (2 cores): the server under test runs alone on core 0 (bench/server.js, one process per
 * stack); the load generator (bench/load.js, autocannon), the mock backend (this process) and the
 * database server (when started here) share core 1.
 *
 * Environment:
 *   BENCH_DURATION     measured seconds per stack (default 3)
 *   BENCH_NEW_DURATION measured seconds of the JWKS and login rows (default 2: all rows fit in five minutes)
 *   BENCH_WARMUP       warm-up seconds per stack (default 1)
 *   BENCH_REFRESHES    refreshes per refresh row and round (default 150), each with its own session
 *   BENCH_FLOW_LATENCY_MS  the mock backend's login and refresh latency (default 20)
 *   BENCH_JWKS_TOKENS  distinct backend JWTs per algorithm for the micro-benchmark (default 500)
 *   BENCH_PROBES       one-shot rows (default singleflight,dbops,cold,memory); BENCH_MEMORY_SIZES (default
 *                      10000,100000), BENCH_FLOOD (default 100000, per
 *                      wave), BENCH_FLOOD_WAVES (default 3), BENCH_COLD_RUNS (default 3)
 *   BENCH_PROFILE      stacks whose server runs under --cpu-prof (see bench/profile.js)
 *   BENCH_TIMING=1     our servers time checkBearer and cachedUser per call and print it (stderr)
 *   BENCH_CONNECTIONS  concurrent connections (default 50)
 *   BENCH_ROUNDS       rounds over all stacks, in ABBA order (default 2); figures are their means
 *   BENCH_LATENCY_MS   mock backend latency in ms (default 5)
 *   BENCH_STACKS       comma list of stacks to run (default: all of STACKS below)
 *   BENCH_USERS        users of the many-users rows bN and dN, each with its own token (default 10000)
 *   BENCH_REVOKED      revocations of other users in force (default 1000): every server of ours
 *                      loads them, so each request's revocation check looks its user up (0: none)
 *   BENCH_MICRO=0      skip the micro-benchmark; BENCH_MICRO_MS / BENCH_MICRO_ITERS: see micro.js
 *   BENCH_PIN=0        do not pin processes to cores
 *   MONGO_URI          use this server instead of starting secantusdb (a fresh database is created
 *                      in it and dropped at the end)
 */

const os = require('os');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawn, spawnSync, execFileSync } = require('child_process');

const REPO = path.resolve(__dirname, '..');
const { startMockBackend, DEFAULT_USERS } = require('../__test__/support/mockBackend');
const { formatMicro, formatJwks } = require('./micro');
const { insertUserCopies } = require('./users');

const DURATION = Number(process.env.BENCH_DURATION) || 3;
const NEW_DURATION = Number(process.env.BENCH_NEW_DURATION ?? process.env.BENCH_DURATION) || 2;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS) || 50;
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 2);
const PROFILE = (process.env.BENCH_PROFILE || '').split(',').map((x) => x.trim()).filter(Boolean);
const PROFILE_DIR = path.join(__dirname, 'results', 'profiles');
const MANY_USERS = Math.max(2, Number(process.env.BENCH_USERS) || 10000);
const REVOKED = Math.max(0, Number(process.env.BENCH_REVOKED ?? 1000) || 0);

// Login and refresh rows: the backend answers login and refresh after FLOW_LATENCY_MS.
const FLOW_LATENCY_MS = Number(process.env.BENCH_FLOW_LATENCY_MS ?? 20);
const FLOW_DURATION = NEW_DURATION;
// 150 refreshes (each its own session, prepared beforehand) take 4-8 s per row and round here.
const REFRESHES = Number(process.env.BENCH_REFRESHES) || 150;
const REFRESH_WARMUP = 20;
const FLOW_WARMUP_CONNECTIONS = 5;
const LOW_LOAD_SEC = Number(process.env.BENCH_LOW_LOAD_SEC) || 1.5;
const LOW_LOAD_REFRESHES = 20;
const SINGLE_FLIGHT_TABS = [1, 5, 20, 50];
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS) || 3;
const MEMORY_SIZES = (process.env.BENCH_MEMORY_SIZES || '10000,100000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
// The whole-bench target is judged on a run with the default settings only.
const FULL_RUN = ['BENCH_STACKS', 'BENCH_ROUNDS', 'BENCH_MICRO', 'BENCH_PROBES', 'BENCH_DURATION', 'BENCH_NEW_DURATION',
  'BENCH_WARMUP', 'BENCH_USERS', 'BENCH_REFRESHES', 'BENCH_MEMORY_SIZES', 'BENCH_FLOOD', 'BENCH_FLOOD_WAVES', 'BENCH_PROFILE',
  'BENCH_CONNECTIONS', 'BENCH_LOW_LOAD_SEC', 'BENCH_JWKS_TOKENS', 'BENCH_MICRO_MS', 'BENCH_MICRO_ITERS', 'BENCH_COLD_RUNS']
  .every((k) => process.env[k] === undefined);
// Only a full run replaces latest.json (the figures docs/operations.md quotes); a partial one (a profile, a
// few stacks) goes to partial.json, which git ignores.
const RESULTS_FILE = process.env.BENCH_RESULTS_FILE
  || path.join(__dirname, 'results', FULL_RUN ? 'latest.json' : 'partial.json');
// One-shot rows, all by default: BENCH_PROBES=singleflight,dbops,cold,memory (or none: BENCH_PROBES=).
const PROBES = (process.env.BENCH_PROBES ?? 'singleflight,dbops,cold,memory').split(',').map((x) => x.trim()).filter(Boolean);
const JWT_ALGS = ['RS256', 'ES256', 'EdDSA'];
const STACKS = [
  { key: 'a', label: '(a) no authentication (the limit)', token: 'librechat' },
  // The floor of any passport strategy: what requireJwtAuth costs before a strategy does any work.
  { key: 'p', label: '(p) passport alone: requireJwtAuth with a strategy that succeeds at once with a constant user', token: 'librechat' },
  { key: 'b', label: '(b) LibreChat stock: passport-jwt + jsonwebtoken, string JWT_SECRET, getUserById', token: 'librechat' },
  { key: 'c', label: '(c) same as (b), secret as a KeyObject', token: 'librechat' },
  { key: 'd', label: '(d) ours, LibreChat token (user cache: default USER_CACHE_TTL)', token: 'librechat', ours: true },
  { key: 'd0', label: '(d0) ours, LibreChat token, USER_CACHE_TTL=0 (no user cache)', token: 'librechat', ours: true, env: { USER_CACHE_TTL: '0' } },
  // #28 item 2: the same with JWT_FAST_PATH (lib/fastPath.js): cached answers skip passport's strategy machinery.
  { key: 'dx', label: '(dx) as (d), JWT_FAST_PATH=true', token: 'librechat', ours: true, server: 'd', env: { JWT_FAST_PATH: 'true' } },
  { key: 'e', label: `(e) seed design: backend userinfo on every request (${LATENCY_MS} ms backend), findUser`, token: 'backend' },
  { key: 'f', label: '(f) ours, backend token, BACKEND_BEARER_TOKENS=userinfo', token: 'backend', ours: true, env: { BACKEND_BEARER_TOKENS: 'userinfo' } },
  { key: 'fx', label: '(fx) as (f), JWT_FAST_PATH=true', token: 'backend', ours: true, server: 'f', env: { BACKEND_BEARER_TOKENS: 'userinfo', JWT_FAST_PATH: 'true' } },
  // Backend JWTs verified locally against the mock's JWKS, one row per algorithm, the same token on
  // every request (its verdict cached after the first).
  ...JWT_ALGS.map((alg) => ({
    key: `g${alg}`, label: `(g${alg}) ours, backend JWT (${alg}), BACKEND_BEARER_TOKENS=jwks`, token: `jwks:${alg}`, ours: true, server: 'g',
    env: { BACKEND_BEARER_TOKENS: 'jwks' }, jwks: true,
  })),
  // Login and refresh, ours (backend answering after FLOW_LATENCY_MS) against LibreChat's own.
  { key: 'login', label: `(login) ours: POST /api/auth/login, backend login answering after ${FLOW_LATENCY_MS} ms`, flow: 'login', server: 'L', ours: true },
  { key: 'loginLC', label: "(loginLC) LibreChat's local login: passport-local, bcryptjs (cost 10), data-schemas, loginController", flow: 'login', server: 'Llc' },
  { key: 'refresh', label: `(refresh) ours: POST /api/auth/refresh, backend refresh answering after ${FLOW_LATENCY_MS} ms, then user info (${LATENCY_MS} ms)`, flow: 'refresh', server: 'L', ours: true },
  { key: 'refreshLC', label: "(refreshLC) LibreChat's refreshController: verify, getUserById, findSession, rotate", flow: 'refresh', server: 'Llc' },
  // #26: the page load of a signed-in user with single sign-on on: the refresh of (refresh), and the
  // portal cookie of the same user on every request (checked as a backend token, cached after the first).
  { key: 'refreshSSO', label: '(refreshSSO) as (refresh), single sign-on on (BACKEND_SSO_COOKIE) and the same user\'s portal cookie on each page load', flow: 'refresh', server: 'L', ours: true, sso: true, env: { BACKEND_SSO_COOKIE: 'portal_session' } },
  // Cache-unfriendly: every request another user and token, round-robin over MANY_USERS.
  { key: 'bN', label: `(bN) as (b), ${MANY_USERS} users round-robin, a token each`, token: 'many', server: 'b' },
  { key: 'dN', label: `(dN) as (d), ${MANY_USERS} users round-robin, a token each`, token: 'many', server: 'd', ours: true },
];

// Targets are closeness to the limit (a): d/b can never exceed a/b, so it is shown, not a target.
const RATIOS = [
  { name: 'd/a', num: 'd', den: 'a', target: 0.95, what: 'ours (LibreChat token, cached user) vs no authentication' },
  { name: 'f/a', num: 'f', den: 'a', target: 0.95, what: 'ours (cached backend token, userinfo) vs no authentication' },
  ...JWT_ALGS.map((alg) => ({ name: `g${alg}/a`, num: `g${alg}`, den: 'a', target: null, what: `ours (backend JWT ${alg}, JWKS, cached) vs no authentication` })),
  { name: 'p/a', num: 'p', den: 'a', target: null, what: 'passport alone vs no authentication: the ceiling of d/a and f/a' },
  { name: 'd/p', num: 'd', den: 'p', target: null, what: "ours vs passport alone: our strategy's own cost" },
  { name: 'f/p', num: 'f', den: 'p', target: null, what: 'ours (cached backend token) vs passport alone' },
  { name: 'dx/a', num: 'dx', den: 'a', target: null, what: 'ours with JWT_FAST_PATH vs no authentication' },
  { name: 'fx/a', num: 'fx', den: 'a', target: null, what: 'ours (cached backend token) with JWT_FAST_PATH vs no authentication' },
  { name: 'dx/d', num: 'dx', den: 'd', target: null, what: 'what JWT_FAST_PATH gains with a LibreChat token' },
  { name: 'fx/f', num: 'fx', den: 'f', target: null, what: 'what JWT_FAST_PATH gains with a cached backend token' },
  { name: 'a/b', num: 'a', den: 'b', target: null, what: 'the ceiling of d/b on this machine' },
  { name: 'd/b', num: 'd', den: 'b', target: null, what: 'ours vs LibreChat stock' },
  { name: 'd/c', num: 'd', den: 'c', target: null, what: 'ours vs stock with a KeyObject secret' },
  { name: 'd0/c', num: 'd0', den: 'c', target: null, what: 'ours without user cache vs stock with KeyObject' },
  { name: 'f/e', num: 'f', den: 'e', target: null, what: 'ours (backend tokens) vs the seed design' },
  { name: 'dN/bN', num: 'dN', den: 'bN', target: null, what: `ours vs LibreChat stock, ${MANY_USERS} users round-robin` },
];
const VERIFY_TARGET_US = 2;
const WHOLE_BENCH_TARGET_SEC = 300;
const JWKS_RS256_TARGET_US = 30;
// Distinct backend JWTs per algorithm for the first-sight rows of the micro-benchmark.
const JWKS_TOKENS = Number(process.env.BENCH_JWKS_TOKENS ?? 500);

const silent = { info() {}, debug() {}, warn() {}, error() {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const since = (t) => (Date.now() - t) / 1000;
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

/* ------------------------------------------------------------------------------------------------
 * Cores
 * ---------------------------------------------------------------------------------------------- */
const HAS_TASKSET = process.env.BENCH_PIN !== '0' && os.cpus().length >= 2 &&
  spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const SERVER_CORE = 0;
const OTHER_CORE = 1;

function pinPid(pid, core) {
  if (!HAS_TASKSET) return false;
  return spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' }).status === 0;
}

/** Spawns `node script` with IPC, pinned to `core` when possible. */
function spawnNode(script, { core, env, nodeArgs: extra = [] }) {
  const nodeArgs = [...extra, script];
  const [cmd, args] = HAS_TASKSET
    ? ['taskset', ['-c', String(core), process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { cwd: REPO, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('error', (err) => log(`${path.basename(script)}: ${err.message}`));
  return child;
}

/** Waits for the first message matching `pred`, failing when the child exits first or on timeout. */
function nextMessage(child, pred, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (pred(m)) {
        done();
        resolve(m);
      }
    };
    const onExit = (code, signal) => {
      done();
      reject(new Error(`child exited (${code ?? signal}) before answering`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    function done() {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    }
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  if (child.connected) {
    child.send({ type: 'stop' }, () => {}); // errors (channel closing) go to the callback
  }
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** CPU time (user+system, us) of a process from /proc, all threads; null when unreadable. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
function procCpuUs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // utime, stime
  } catch {
    return null;
  }
}

/** Busy CPU time of the whole machine, all cores (us, includes steal), from /proc/stat; or null. */
function machineBusyUs() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return ((user + nice + system + irq + softirq + (steal || 0)) * 1e6) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Percent of one core that the machine spent busy during `ms` (before the run: is it idle?). */
async function machineBusyPct(ms) {
  const a = machineBusyUs();
  await sleep(ms);
  const b = machineBusyUs();
  return a == null || b == null ? null : ((b - a) / (ms * 1000)) * 100;
}

/* ------------------------------------------------------------------------------------------------
 * Database
 * ---------------------------------------------------------------------------------------------- */
function withDbName(uri, dbName) {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/([^?]*))?(\?.*)?$/.exec(uri);
  if (!m) throw new Error('MONGO_URI does not look like a MongoDB URI');
  return `${m[1]}/${dbName}${m[3] ?? ''}`;
}

async function describeServer(uri) {
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const admin = client.db('admin');
    const build = await admin.command({ buildInfo: 1 });
    const hello = await admin.command({ hello: 1 }).catch(() => ({}));
    const extra = Object.entries(build)
      .filter(([k, v]) => /version$/i.test(k) && !['version', 'gitVersion'].includes(k) && typeof v === 'string')
      .map(([k, v]) => ({ k, v }));
    let product = 'MongoDB-compatible server';
    const secantus = extra.find((x) => /secantus/i.test(x.k));
    const ferret = extra.find((x) => /ferret/i.test(x.k));
    if (secantus) product = `secantusdb ${secantus.v}`;
    else if (ferret) product = `FerretDB ${ferret.v}`;
    else if (build.modules !== undefined || build.openssl) product = `MongoDB ${build.version}`;
    return {
      product,
      buildInfoVersion: build.version,
      buildInfoExtra: Object.fromEntries(extra.map((x) => [x.k, x.v])),
      maxWireVersion: hello.maxWireVersion,
      setName: hello.setName,
    };
  } finally {
    await client.close().catch(() => {});
  }
}

/** Revocations of `n` other users (docs/logout-events-revocation.md, "Revocation"), as the package records them. */
async function plantRevocations(uri, n) {
  const { MongoClient, ObjectId } = require('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const now = Date.now();
    const docs = Array.from({ length: n }, () => ({
      _id: new ObjectId(),
      user: new ObjectId(),
      notBefore: new Date(now),
      reason: 'bench',
      at: new Date(now),
      expiresAt: new Date(now + 86_400_000),
    }));
    await client.db().collection('customBackendRevocations').insertMany(docs);
  } finally {
    await client.close().catch(() => {});
  }
}

async function dropDatabase(uri) {
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    await client.db().dropDatabase();
  } finally {
    await client.close().catch(() => {});
  }
}

/* ------------------------------------------------------------------------------------------------
 * The user and its tokens
 * ---------------------------------------------------------------------------------------------- */
async function prepareUser(pkg, vars, mock) {
  const alice = DEFAULT_USERS[0];
  const out = { backendUserId: alice.id, email: alice.email, password: alice.password, notes: [] };
  let service;
  try {
    service = pkg.configureCustomBackendAuth({ ...vars, logger: silent });
    const r = await service.login({ email: alice.email, password: alice.password });
    if (!r?.token) throw new Error('login answered without a token');
    out.librechatToken = r.token;
    out.userId = String(r.user?._id ?? r.user?.id);
    out.via = 'service.login (our package, through the mock backend)';
  } catch (err) {
    // Fallback so that the stock stacks can still be measured while our package is in flux: a
    // user written by LibreChat's own createUser and a token shaped like LibreChat's generateToken.
    out.notes.push(`service.login failed (${err.code ?? ''} ${err.message}); used the fallback user and token`);
    const { Mongoose } = require('mongoose');
    const { createModels, createMethods } = require('@librechat/data-schemas');
    const mongoose = new Mongoose();
    createModels(mongoose);
    const methods = createMethods(mongoose);
    await mongoose.connect(vars.MONGO_URI);
    try {
      const email = alice.email.toLowerCase();
      let user = await methods.findUser({ email });
      if (!user) {
        const id = await methods.createUser({
          provider: 'custom-backend', idOnTheSource: alice.id, email, username: alice.username.toLowerCase(),
          name: alice.name, emailVerified: true, role: 'USER',
        });
        user = await methods.getUserById(id);
      }
      out.userId = user._id.toString();
      const jsonwebtoken = require('jsonwebtoken');
      out.librechatToken = jsonwebtoken.sign(
        { id: out.userId, username: user.username, provider: user.provider, email: user.email },
        vars.JWT_SECRET,
        { expiresIn: '15m' },
      );
      out.via = 'fallback: @librechat/data-schemas createUser + jsonwebtoken.sign';
    } finally {
      await mongoose.disconnect();
    }
  } finally {
    await service?.close?.().catch(() => {});
  }
  out.backendToken = mock.issueAccessToken(alice.id, { ttlSec: 3600 });
  // One backend JWT per algorithm, signed by the mock's published keys (its JWKS holds them all).
  out.jwtTokens = {};
  for (const alg of JWT_ALGS) {
    mock.set({ jwtTokens: alg });
    out.jwtTokens[alg] = mock.issueAccessToken(alice.id, { ttlSec: 3600 });
  }
  mock.set({ jwtTokens: false });
  return out;
}

/**
 * MANY_USERS LibreChat users written with LibreChat's own User model (schema defaults applied), as
 * our login would leave them, and a LibreChat access token each (signed as LibreChat's
 * generateToken signs them): the many-users rows send them round-robin.
 */
async function prepareManyUsers(vars) {
  const { Mongoose } = require('mongoose');
  const { createModels } = require('@librechat/data-schemas');
  const jsonwebtoken = require('jsonwebtoken');
  const mongoose = new Mongoose();
  const { User } = createModels(mongoose);
  await mongoose.connect(vars.MONGO_URI);
  try {
    const docs = Array.from({ length: MANY_USERS }, (_, i) => ({
      provider: 'custom-backend', idOnTheSource: `bench-${i}`, email: `bench-${i}@example.com`,
      username: `bench-${i}`, name: `Bench ${i}`, emailVerified: true, role: 'USER',
    }));
    const ids = [];
    for (let i = 0; i < docs.length; i += 1000) {
      const written = await User.insertMany(docs.slice(i, i + 1000), { lean: false });
      ids.push(...written.map((u) => u._id.toString()));
    }
    const tokens = ids.map((id, i) => jsonwebtoken.sign(
      { id, username: docs[i].username, provider: 'custom-backend', email: docs[i].email },
      vars.JWT_SECRET,
      { expiresIn: '1h' },
    ));
    return { ids, tokens };
  } finally {
    await mongoose.disconnect();
  }
}

/**
 * The login and refresh rows' accounts: a LibreChat local user (password hashed as LibreChat's
 * registerUser hashes it: bcryptjs, genSaltSync(10)) and refresh tokens of sessions, each good for one
 * rotation: ours from logins through our package, LibreChat's from its createSession.
 *
 * All in a database of their own (`flowVars.MONGO_URI`, same server), holding only these users: our
 * login and refresh find the user by `{provider, idOnTheSource}`, which real MongoDB serves from the
 * package's partial unique index, but secantusdb's planner ignores partial indexes and scans the
 * collection: about 107 ms per lookup with the many-users rows' 10,000 users beside it (an `_id` or
 * e-mail lookup: about 1 ms), so logins and refreshes got no answers within autocannon's timeout and
 * preparing 373 sessions took 118 s. The rows measure the flow, not the test database's planner.
 */
async function prepareFlows(pkg, flowVars, user, needed) {
  const vars = flowVars;
  const bcrypt = require('bcryptjs');
  const { Mongoose } = require('mongoose');
  const { createModels, createMethods } = require('@librechat/data-schemas');
  const mongoose = new Mongoose();
  createModels(mongoose);
  const methods = createMethods(mongoose);
  await mongoose.connect(vars.MONGO_URI);
  const saved = { JWT_SECRET: process.env.JWT_SECRET, JWT_REFRESH_SECRET: process.env.JWT_REFRESH_SECRET };
  Object.assign(process.env, { JWT_SECRET: vars.JWT_SECRET, JWT_REFRESH_SECRET: vars.JWT_REFRESH_SECRET });
  const pools = { ours: [], lc: [] };
  const ours = { userId: null };
  let service;
  try {
    const lc = { email: 'lc-local@example.com', password: 'lc-local-password-1' };
    // (needed: { ours, lc } sessions)
    const id = await methods.createUser({
      provider: 'local', email: lc.email, username: 'lc-local', name: 'LibreChat Local', emailVerified: true,
      role: 'USER', password: bcrypt.hashSync(lc.password, bcrypt.genSaltSync(10)),
    });
    lc.userId = String(id?._id ?? id);
    const parallel = async (n, fn) => {
      let i = 0;
      await Promise.all(Array.from({ length: 20 }, async () => {
        while (i < n) {
          i += 1;
          await fn();
        }
      }));
    };
    // Both pools at once: the database is the bound (the sessions' writes).
    service = pkg.configureCustomBackendAuth({ ...vars, logger: silent });
    await Promise.all([
      parallel(needed.lc, async () => {
        const { refreshToken } = await methods.createSession(lc.userId, { expiresIn: 7 * 24 * 3600 * 1000 });
        pools.lc.push(refreshToken);
      }),
      parallel(needed.ours, async () => {
        const r = await service.login({ email: user.email, password: user.password });
        pools.ours.push(r.refreshToken);
        ours.userId = String(r.user?._id ?? r.user?.id);
      }),
    ]);
    return { lc, pools, ours };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await service?.close?.().catch(() => {});
    await mongoose.disconnect();
  }
}

/* ------------------------------------------------------------------------------------------------
 * One stack
 * ---------------------------------------------------------------------------------------------- */
let loadSeq = 0;
async function load(loadChild, url, token, duration, extra = {}) {
  const id = ++loadSeq;
  // A flow (login, refresh) brings its own request: { method, body, headers, tokens, tokenIn, amount }.
  const request = token && typeof token === 'object' && !Array.isArray(token) ? token
    : Array.isArray(token) ? { tokens: token } : { headers: token ? { authorization: `Bearer ${token}` } : {} };
  loadChild.send({ type: 'run', id, url, connections: CONNECTIONS, duration, ...request, ...extra });
  const m = await nextMessage(loadChild, (x) => x?.type === 'result' && x.id === id, (duration + 120) * 1000);
  if (m.error) throw new Error(`autocannon: ${m.error}`);
  return m.result;
}

async function serverCpu(server) {
  server.send({ type: 'cpu' });
  const m = await nextMessage(server, (x) => x?.type === 'cpu', 10_000);
  return { us: m.usage.user + m.usage.system, rss: m.rss };
}

async function runStack(stack, ctx) {
  const res = { key: stack.key, label: stack.label, env: stack.env ?? {} };
  if (stack.ours && typeof ctx.pkg.customJwtStrategy !== 'function') {
    res.status = 'unavailable';
    res.reason = 'customJwtStrategy is not exported by the package yet';
    return res;
  }
  const many = stack.token === 'many';
  const token = stack.flow ? null : many ? ctx.many.tokens[0]
    : stack.token === 'backend' ? ctx.user.backendToken
      : stack.token.startsWith('jwks:') ? ctx.user.jwtTokens[stack.token.slice(5)]
        : ctx.user.librechatToken;
  const expectedId = stack.flow === 'login' && stack.server === 'Llc' ? ctx.lc.userId : many ? ctx.many.ids[0] : ctx.user.userId;
  const loadWith = many ? ctx.many.tokens : token;
  const env = {
    ...process.env,
    ...ctx.vars,
    ...(stack.env ?? {}),
    BENCH_STACK: stack.server ?? stack.key,
    BENCH_USER_ID: ctx.user.userId,
    // Login and refresh: their own database (prepareFlows says why).
    ...(stack.flow ? { MONGO_URI: ctx.flowVars.MONGO_URI } : {}),
  };
  // BENCH_PROFILE=d,f: that stack's server runs under `node --cpu-prof` (a profile per round in
  // bench/results/profiles/, summarised by `node bench/profile.js <file>`).
  const profiled = PROFILE.includes(stack.key);
  const nodeArgs = profiled ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${stack.key}-${Date.now()}.cpuprofile`] : [];
  const server = spawnNode(path.join(__dirname, 'server.js'), { core: SERVER_CORE, env, nodeArgs });
  try {
    const ready = await nextMessage(server, (m) => m?.type === 'ready' || m?.type === 'failed', 60_000);
    if (ready.type === 'failed') {
      res.status = 'failed';
      res.reason = `server did not start: ${ready.message}`;
      return res;
    }
    res.express = ready.express;
    const base = `http://127.0.0.1:${ready.port}`;
    if (stack.flow) {
      // Login and refresh: smoke-checked, warmed up and loaded by runFlow; the rest is shared.
      return await measure(res, stack, ctx, server, await runFlow(stack, ctx, base, res, server));
    }
    const url = `${base}/api/user`;

    // Smoke check: 200 with the expected user, else the figures would mean nothing.
    const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const body = await r.text();
    let id;
    try {
      id = JSON.parse(body).id;
    } catch {
      id = undefined;
    }
    if (r.status !== 200 || id !== expectedId) {
      res.status = 'failed';
      res.reason = `smoke check: GET /api/user answered ${r.status} ${body.slice(0, 120)}`;
      return res;
    }

    if (WARMUP > 0) await load(ctx.loadChild, url, loadWith, WARMUP);
    return await measure(res, stack, ctx, server, { url, loadWith, duration: stack.jwks ? NEW_DURATION : DURATION });
  } catch (err) {
    res.status = 'failed';
    res.reason = err.message;
    return res;
  } finally {
    await stopChild(server);
  }
}

/**
 * Waits until the server's CPU use falls quiet (at most 20 s): after a load stops, a slow flow (a
 * bcrypt compare per login) still has up to CONNECTIONS requests in hand, whose work would
 * otherwise land in the next measured run.
 */
async function settle(server) {
  const deadline = Date.now() + 20_000;
  let last = (await serverCpu(server)).us;
  while (Date.now() < deadline) {
    await sleep(200);
    const now = (await serverCpu(server)).us;
    if (now - last < 20_000) return; // under 10 % of a core over 200 ms
    last = now;
  }
}

/** Pops `n` unused refresh tokens of a pool (each is good for one rotation). */
function takeTokens(pool, n) {
  if (pool.length < n) throw new Error(`refresh token pool exhausted (${pool.length} left, ${n} needed): raise BENCH_REFRESHES`);
  return pool.splice(0, n);
}

/**
 * Login and refresh rows: smoke check (200, a token, the expected user), warm-up, then the plan of
 * the measured run: logins for BENCH_FLOW_DURATION seconds, or BENCH_REFRESHES refreshes, each with a
 * refresh token of its own (rotation spends it). After it, a run at low load (one connection) gives
 * p50: for ours, minus the backend's latency, the flow's own cost.
 */
async function runFlow(stack, ctx, base, res, server) {
  const lc = stack.server === 'Llc';
  const url = `${base}/api/auth/${stack.flow}`;
  const json = { 'content-type': 'application/json' };
  let request;
  let smoke;
  const pool = stack.flow === 'refresh' ? ctx.refreshPools[lc ? 'lc' : 'ours'] : null;
  if (stack.flow === 'login') {
    const creds = lc ? { email: ctx.lc.email, password: ctx.lc.password } : { email: ctx.user.email, password: ctx.user.password };
    request = { method: 'POST', headers: json, body: JSON.stringify(creds) };
    smoke = () => fetch(url, { method: 'POST', headers: json, body: request.body });
  } else {
    // refreshSSO: the portal cookie is the flow user's backend access token (BACKEND_SSO_COOKIE
    // without a URL: checked as a bearer token).
    const portal = stack.sso ? `portal_session=${ctx.user.backendToken}` : null;
    const headers = portal ? { cookie: portal } : undefined;
    request = (n) => ({ method: 'POST', headers, tokens: takeTokens(pool, n), tokenIn: 'cookie' });
    smoke = () => fetch(url, { method: 'POST', headers: { cookie: [portal, `refreshToken=${takeTokens(pool, 1)[0]}`].filter(Boolean).join('; ') } });
  }
  const r = await smoke();
  const text = await r.text();
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    // reported below
  }
  const userId = String(body.user?.id ?? body.user?._id ?? '');
  const expected = lc ? ctx.lc.userId : ctx.flowUserId;
  if (r.status !== 200 || typeof body.token !== 'string' || userId !== expected || !/refreshToken=/.test(r.headers.get('set-cookie') ?? '')) {
    res.status = 'failed';
    res.reason = `smoke check: POST /api/auth/${stack.flow} answered ${r.status} ${text.slice(0, 160)}`;
    return {};
  }
  const lowLoad = async (out) => {
    await settle(server);
    const n = stack.flow === 'refresh' ? LOW_LOAD_REFRESHES : undefined;
    const low = await load(ctx.loadChild, url, stack.flow === 'refresh' ? request(n) : request, LOW_LOAD_SEC,
      { connections: 1, ...(n ? { amount: n } : {}) });
    // Ours waits for the backend: the login call, or the refresh call and then user info
    // (docs/sessions-and-tokens.md, "Refresh"), one after the other.
    const backendMs = stack.server !== 'L' ? 0 : stack.flow === 'login' ? FLOW_LATENCY_MS : FLOW_LATENCY_MS + LATENCY_MS;
    out.lowLoad = {
      p50: low.latency.p50, p99: low.latency.p99, perSec: low.total / low.duration,
      ownCostMs: low.latency.p50 - backendMs, backendMs,
    };
  };
  if (stack.flow === 'login') {
    // A few connections warm the code up as well as 50, and leave few logins in hand to wait for
    // (LibreChat's: a bcrypt compare each, 50 of them were seconds of settle per round).
    if (WARMUP > 0) await load(ctx.loadChild, url, request, WARMUP, { connections: Math.min(CONNECTIONS, FLOW_WARMUP_CONNECTIONS) });
    await settle(server);
    // LibreChat's logins spend about 70 ms of CPU each in bcryptjs, which interleaves them: 50 at
    // once all finish after about 3.5 s, past a 2 s window, which then counted none (or only the few
    // that started first). So each of its connections sends one login, and the rate is the logins
    // over the time they took, with the latencies of 50 users logging in at once.
    const loadWith = lc ? { ...request, amount: CONNECTIONS } : request;
    return { url, loadWith, duration: FLOW_DURATION, after: lowLoad };
  }
  if (WARMUP > 0) {
    await load(ctx.loadChild, url, request(REFRESH_WARMUP), WARMUP, { amount: REFRESH_WARMUP, connections: Math.min(CONNECTIONS, REFRESH_WARMUP) });
  }
  await settle(server);
  return { url, loadWith: { ...request(REFRESHES), amount: REFRESHES }, duration: FLOW_DURATION, after: lowLoad };
}

/** The measured run of a stack (or flow) whose server is up, smoke-checked and warmed up. */
async function measure(res, stack, ctx, server, plan) {
  if (res.status === 'failed') return res;
  const { url, loadWith, duration } = plan;
  {
    const before = {
      cpu: await serverCpu(server),
      db: ctx.dbPid ? procCpuUs(ctx.dbPid) : null,
      mock: process.cpuUsage(),
      calls: { ...ctx.mock.calls },
      machine: machineBusyUs(),
      wall: process.hrtime.bigint(),
    };
    const run = await load(ctx.loadChild, url, loadWith, duration);
    const after = {
      cpu: await serverCpu(server),
      db: ctx.dbPid ? procCpuUs(ctx.dbPid) : null,
      mock: process.cpuUsage(before.mock),
      calls: { ...ctx.mock.calls },
      machine: machineBusyUs(),
      wall: process.hrtime.bigint(),
    };

    const n = Math.max(run.total, 1);
    Object.assign(res, {
      status: 'ok',
      // An amount-bound run (refresh) has few per-second samples: its rate is total over time.
      rps: run.amount ? run.total / run.duration : run.rps,
      total: run.total,
      durationSec: run.duration,
      latencyMs: run.latency,
      ok2xx: run.ok2xx,
      non2xx: run.non2xx,
      statusCodes: run.statusCodes,
      errors: run.errors,
      timeouts: run.timeouts,
      serverCpuUsPerReq: (after.cpu.us - before.cpu.us) / n,
      serverRssMB: after.cpu.rss / 2 ** 20,
      dbCpuUsPerReq: before.db != null && after.db != null ? (after.db - before.db) / n : null,
      mockProcessCpuUsPerReq: (after.mock.user + after.mock.system) / n,
      backendCalls: {
        userinfo: after.calls.userinfo - before.calls.userinfo,
        login: after.calls.login - before.calls.login,
        refresh: after.calls.refresh - before.calls.refresh,
        jwks: after.calls.jwks - before.calls.jwks,
      },
    });
    res.backendCallsPerReq = res.backendCalls.userinfo / n;
    // How busy the other core was (load generator + mock backend + database when ours): near 100 %
    // means the client side, not the server under test, limited the figure.
    const otherUs = run.loadGeneratorCpuUs + res.mockProcessCpuUsPerReq * n +
      (res.dbCpuUsPerReq != null ? res.dbCpuUsPerReq * n : 0);
    res.otherCoreBusyPct = HAS_TASKSET ? (100 * otherUs) / (run.duration * 1e6) : null;
    res.serverCoreBusyPct = (100 * res.serverCpuUsPerReq * n) / (run.duration * 1e6);
    // CPU that none of the bench's processes used during the measured run (other work on the
    // machine, or steal in a VM), in percent of one core: it makes the figures low and noisy.
    if (before.machine != null && after.machine != null) {
      const wallUs = Number(after.wall - before.wall) / 1000;
      const oursUs = res.serverCpuUsPerReq * n + otherUs;
      res.foreignCpuPct = Math.max(0, (100 * (after.machine - before.machine - oursUs)) / wallUs);
    }
    const problems = [];
    if (run.non2xx) problems.push(`${run.non2xx} non-2xx (${JSON.stringify(run.statusCodes)})`);
    if (run.errors) problems.push(`${run.errors} connection errors`);
    if (run.timeouts) problems.push(`${run.timeouts} timeouts`);
    if (res.otherCoreBusyPct != null && res.otherCoreBusyPct > 90 && res.serverCoreBusyPct < 90) {
      res.warning = `the load-generator core was ${res.otherCoreBusyPct.toFixed(0)} % busy and the server core ` +
        `${res.serverCoreBusyPct.toFixed(0)} %: the client side may have limited this figure`;
    }
    if (res.foreignCpuPct != null && res.foreignCpuPct > 15) {
      res.warning = [res.warning, `other processes used ${res.foreignCpuPct.toFixed(0)} % of a core during this run`]
        .filter(Boolean).join('; ');
    }
    if (stack.flow) {
      res.flowCallsPerOp = (stack.flow === 'login' ? res.backendCalls.login : res.backendCalls.refresh) / n;
    }
    if (stack.token === 'librechat' && res.backendCalls.userinfo > 0) {
      problems.push(`${res.backendCalls.userinfo} backend userinfo calls for a LibreChat token`);
    }
    if (problems.length) {
      res.status = 'flagged';
      res.reason = problems.join('; ');
    }
    if (plan.after) await plan.after(res);
    return res;
  }
}

/** One stack's figure over its rounds: means of rates, request-weighted means of per-request costs. */
function aggregate(stack, runs) {
  const bad = runs.find((r) => r.status === 'unavailable' || r.status === 'failed');
  if (bad) return bad;
  const total = runs.reduce((a, r) => a + r.total, 0);
  const n = Math.max(total, 1);
  const mean = (f) => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  const weighted = (f) => (runs.every((r) => f(r) != null) ? runs.reduce((a, r) => a + f(r) * r.total, 0) / n : null);
  const sum = (f) => runs.reduce((a, r) => a + (f(r) ?? 0), 0);
  const maxOf = (f) => (runs.some((r) => f(r) != null) ? Math.max(...runs.map((r) => f(r) ?? 0)) : null);
  const rpsRuns = runs.map((r) => r.rps);
  const rps = mean((r) => r.rps);
  const backendCalls = {};
  for (const k of Object.keys(runs[0].backendCalls)) backendCalls[k] = sum((r) => r.backendCalls[k]);
  const flagged = runs.filter((r) => r.status === 'flagged');
  const warnings = [...new Set(runs.flatMap((r) => (r.warning ?? '').split('; '))
    .filter((w) => w && !w.startsWith('other processes')))];
  const foreignMax = maxOf((r) => r.foreignCpuPct);
  if (foreignMax != null && foreignMax > 15) {
    warnings.push(`other processes used up to ${foreignMax.toFixed(0)} % of a core during its runs`);
  }
  return {
    key: stack.key,
    label: stack.label,
    env: stack.env ?? {},
    express: runs[0].express,
    status: flagged.length ? 'flagged' : 'ok',
    reason: flagged.length ? flagged.map((r) => r.reason).join(' | ') : undefined,
    warning: warnings.length ? warnings.join('; ') : undefined,
    rounds: runs.length,
    rps,
    rpsRuns,
    rpsSpreadPct: runs.length > 1 && rps > 0 ? (100 * (Math.max(...rpsRuns) - Math.min(...rpsRuns))) / rps : null,
    total,
    latencyMs: { p50: mean((r) => r.latencyMs.p50), p99: mean((r) => r.latencyMs.p99), max: Math.max(...runs.map((r) => r.latencyMs.max)) },
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    serverCpuUsPerReq: weighted((r) => r.serverCpuUsPerReq),
    dbCpuUsPerReq: weighted((r) => r.dbCpuUsPerReq),
    backendCalls,
    backendCallsPerReq: backendCalls.userinfo / n,
    serverCoreBusyPct: mean((r) => r.serverCoreBusyPct),
    otherCoreBusyPct: runs.every((r) => r.otherCoreBusyPct != null) ? mean((r) => r.otherCoreBusyPct) : null,
    foreignCpuPct: foreignMax,
    runs,
  };
}

/** Distinct backend JWTs of the bench user per algorithm, as the mock mints them, for micro.js. */
function mintJwksTokens(mock, backendUserId) {
  const alice = DEFAULT_USERS.find((u) => u.id === backendUserId);
  const tokens = {};
  for (const alg of JWT_ALGS) {
    const iat = Math.floor(Date.now() / 1000);
    tokens[alg] = Array.from({ length: JWKS_TOKENS }, () => mock.signJwt({
      sub: alice.id, iss: mock.issuer, aud: 'librechat', email: alice.email, name: alice.name,
      preferred_username: alice.username, roles: alice.roles ?? [], iat, exp: iat + 3600,
      jti: crypto.randomBytes(12).toString('hex'),
    }, { alg }));
  }
  const file = path.join(os.tmpdir(), `lcbench-jwks-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ issuer: mock.issuer, audience: 'librechat', sub: alice.id, tokens }));
  return file;
}

async function runMicroChild(ctx) {
  const jwksFile = JWKS_TOKENS > 51 ? mintJwksTokens(ctx.mock, ctx.user.backendUserId) : null;
  const env = {
    ...process.env,
    ...ctx.vars,
    BENCH_TOKEN: ctx.user.librechatToken,
    BENCH_USER_ID: ctx.user.userId,
    ...(jwksFile ? { BENCH_JWKS_FILE: jwksFile } : {}),
  };
  const nodeArgs = PROFILE.includes('micro') ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=micro-${Date.now()}.cpuprofile`] : [];
  const child = spawnNode(path.join(__dirname, 'micro.js'), { core: SERVER_CORE, env, nodeArgs });
  try {
    const m = await nextMessage(child, (x) => x?.type === 'micro', 300_000);
    if (m.error) throw new Error(m.error);
    return m.micro;
  } finally {
    await stopChild(child);
    if (jwksFile) fs.rmSync(jwksFile, { force: true });
  }
}

/* ------------------------------------------------------------------------------------------------
 * One-shot rows: single flight, cold start, memory
 * ---------------------------------------------------------------------------------------------- */
async function runProbe(name, ctx, env = {}, nodeArgs = [], core = SERVER_CORE) {
  const child = spawnNode(path.join(__dirname, 'probe.js'), {
    core,
    env: { ...process.env, ...ctx.vars, BENCH_PROBE: name, BENCH_TOKEN: ctx.user.librechatToken, BENCH_USER_ID: ctx.user.userId, ...env },
    nodeArgs,
  });
  try {
    const m = await nextMessage(child, (x) => x?.type === 'probe', 600_000);
    if (m.error) throw new Error(m.error);
    return m.result;
  } finally {
    await stopChild(child);
  }
}

/** Cold start, COLD_RUNS fresh processes: the median of each figure. */
async function coldStart(ctx) {
  const runs = [];
  for (let i = 0; i < COLD_RUNS; i++) runs.push(await runProbe('cold', ctx));
  const median = (k) => {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  return { runs: runs.length, ...Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(k)])) };
}

/**
 * The memory probe's users: the bench user's document and MEMORY_SIZES' largest count of copies (new
 * _id, e-mail, username, idOnTheSource each), written with the plain driver into a database of their
 * own that has no index but `_id`: the probe's loadUser reads by `_id` only, and each secondary index
 * triples secantusdb's insert time (about 0.065 ms a document without, 0.2 ms with three). The ids go
 * to a file for the probe.
 */
async function prepareMemoryUsers(memUri, mainUri, userId) {
  const { MongoClient, ObjectId } = require('mongodb');
  const n = Math.max(...MEMORY_SIZES);
  const main = new MongoClient(mainUri, { serverSelectionTimeoutMS: 5000 });
  const mem = new MongoClient(memUri, { serverSelectionTimeoutMS: 5000 });
  try {
    await Promise.all([main.connect(), mem.connect()]);
    const template = await main.db().collection('users').findOne({ _id: new ObjectId(userId) });
    if (!template) throw new Error('the bench user is not in the database');
    const users = mem.db().collection('users');
    await users.insertOne(template);
    const ids = await insertUserCopies(users, template, n);
    const file = path.join(os.tmpdir(), `lcbench-mem-ids-${process.pid}.json`);
    fs.writeFileSync(file, JSON.stringify(ids));
    return { file, n };
  } finally {
    await Promise.allSettled([main.close(), mem.close()]);
  }
}

/** The memory probe's description of the bench user and the mock's EdDSA key, for probe.js. */
function writeProbeSpec(ctx, name) {
  const alice = DEFAULT_USERS.find((u) => u.id === ctx.user.backendUserId);
  const file = path.join(os.tmpdir(), `lcbench-probe-${name}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({
    key: ctx.mock.signingKey('EdDSA'), issuer: ctx.mock.issuer, audience: 'librechat', sub: alice.id,
    email: alice.email, name: alice.name, username: alice.username, roles: alice.roles ?? [], userId: ctx.user.userId,
  }));
  return file;
}

/**
 * The memory probe's users phase, started with the micro-benchmark (which has core 0 to itself):
 * the users' writes, then the phase's process pinned to core 1 beside the database. Its work is
 * the database's (a lookup by `_id` per user); its figures are memory, not time, so the core does
 * not matter to them.
 */
async function memoryUsers(ctx) {
  const t = Date.now();
  const prepared = await prepareMemoryUsers(ctx.memUri, ctx.vars.MONGO_URI, ctx.user.userId);
  const insertSec = since(t);
  const file = writeProbeSpec(ctx, 'users');
  try {
    const r = await runProbe('memory', ctx, {
      BENCH_PROBE_FILE: file, BENCH_MEMORY_PHASE: 'users', BENCH_MEMORY_SIZES: MEMORY_SIZES.join(','),
      MONGO_URI: ctx.memUri, BENCH_MEMORY_IDS_FILE: prepared.file,
    }, ['--expose-gc'], OTHER_CORE);
    return { users: r.users, sizes: r.sizes, insertSec, phaseSec: r.elapsedSec, wallSec: since(t) };
  } finally {
    fs.rmSync(file, { force: true });
    fs.rmSync(prepared.file, { force: true });
  }
}

async function memoryProbe(ctx) {
  const file = writeProbeSpec(ctx, 'memory');
  try {
    // One process per phase: memory freed by one phase would be reused by the next. The users
    // phase runs beside these (memoryUsers, on core 1) when it was started early.
    const out = { phaseSec: {}, insertSec: null };
    for (const phase of ctx.memUsers ? ['verdicts', 'flood'] : ['users', 'verdicts', 'flood']) {
      const env = { BENCH_PROBE_FILE: file, BENCH_MEMORY_PHASE: phase, BENCH_MEMORY_SIZES: MEMORY_SIZES.join(',') };
      const r = await runProbe('memory', ctx, env, ['--expose-gc']);
      out[phase] = r[phase];
      out.sizes = r.sizes;
      out.phaseSec[phase] = r.elapsedSec;
      if (r.insertSec != null) out.insertSec = r.insertSec;
    }
    if (ctx.memUsers) {
      const early = await ctx.memUsers;
      if (early.error) throw new Error(`memory users: ${early.error}`);
      Object.assign(out, { users: early.users, insertSec: early.insertSec, usersOnCore1: true });
      out.phaseSec.users = early.phaseSec;
    }
    return out;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/**
 * N tabs refreshing at once: N concurrent POST /api/auth/refresh with the same refresh cookie, to a
 * fresh server of ours; how many backend refresh calls they cause, and what each tab got.
 */
async function singleFlight(ctx) {
  const env = { ...process.env, ...ctx.flowVars, BENCH_STACK: 'L', BENCH_USER_ID: ctx.flowUserId };
  const server = spawnNode(path.join(__dirname, 'server.js'), { core: SERVER_CORE, env });
  try {
    const ready = await nextMessage(server, (m) => m?.type === 'ready' || m?.type === 'failed', 60_000);
    if (ready.type === 'failed') throw new Error(`server did not start: ${ready.message}`);
    const url = `http://127.0.0.1:${ready.port}/api/auth/refresh`;
    const out = [];
    for (const n of SINGLE_FLIGHT_TABS) {
      const [token] = takeTokens(ctx.refreshPools.ours, 1);
      const before = ctx.mock.calls.refresh;
      const answers = await Promise.all(Array.from({ length: n }, () => fetch(url, {
        method: 'POST', headers: { cookie: `refreshToken=${token}` },
      }).then(async (r) => ({ status: r.status, token: (await r.json().catch(() => ({}))).token }))));
      const statuses = {};
      for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      out.push({
        tabs: n, backendCalls: ctx.mock.calls.refresh - before, statuses,
        distinctAccessTokens: new Set(answers.map((a) => a.token).filter(Boolean)).size,
      });
    }
    return out;
  } finally {
    await stopChild(server);
  }
}

/** The database operations of one login and refresh, ours and LibreChat's (bench/dbops.js). */
async function dbOps(ctx) {
  const { countFlows } = require('./dbops');
  const startServer = async (stack, mongoUri) => {
    const env = { ...process.env, ...ctx.flowVars, MONGO_URI: mongoUri, BENCH_STACK: stack, BENCH_USER_ID: ctx.flowUserId };
    const server = spawnNode(path.join(__dirname, 'server.js'), { core: SERVER_CORE, env });
    const ready = await nextMessage(server, (m) => m?.type === 'ready' || m?.type === 'failed', 60_000);
    if (ready.type === 'failed') {
      await stopChild(server);
      throw new Error(`server ${stack} did not start: ${ready.message}`);
    }
    return { url: `http://127.0.0.1:${ready.port}`, stop: () => stopChild(server) };
  };
  return countFlows({ mongoUri: ctx.flowVars.MONGO_URI, startServer, ours: ctx.user, lc: ctx.lc });
}

/* ------------------------------------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------------------------------- */
const fmt = (v, d = 0) => (v == null || Number.isNaN(v) ? '-' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));

function table(stacks) {
  const head = ['stack', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx/err', 'server CPU us/req', 'DB CPU us/req',
    'userinfo calls (per req)', 'CPU % server/client/foreign'];
  const rows = stacks.map((s) => {
    if (s.status === 'unavailable') return [s.key, 'not available yet', '', '', '', '', '', '', ''];
    if (s.status === 'failed') return [s.key, 'FAILED', '', '', '', '', '', '', ''];
    return [
      s.status === 'flagged' ? `${s.key} !` : s.key,
      `${fmt(s.rps)}${s.rpsSpreadPct != null ? ` ±${fmt(s.rpsSpreadPct / 2)}%` : ''}`,
      fmt(s.latencyMs.p50, 1),
      fmt(s.latencyMs.p99, 1),
      `${s.non2xx}/${s.errors + s.timeouts}`,
      fmt(s.serverCpuUsPerReq),
      fmt(s.dbCpuUsPerReq),
      `${s.backendCalls.userinfo} (${fmt(s.backendCallsPerReq, 3)})`,
      `${fmt(s.serverCoreBusyPct)} / ${fmt(s.otherCoreBusyPct)} / ${fmt(s.foreignCpuPct)}`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Login and refresh: ours against LibreChat's, per second and at low load. */
function flowSummary(stacks) {
  const by = Object.fromEntries(stacks.map((s) => [s.key, s]));
  const low = (s) => {
    const runs = (s?.runs ?? []).filter((r) => r.lowLoad);
    if (!runs.length) return null;
    const mean = (k) => runs.reduce((a, r) => a + r.lowLoad[k], 0) / runs.length;
    return { p50: mean('p50'), p99: mean('p99'), perSec: mean('perSec'), ownCostMs: mean('ownCostMs'), backendMs: runs[0].lowLoad.backendMs };
  };
  const out = {};
  for (const [flow, ours, lc] of [['login', 'login', 'loginLC'], ['refresh', 'refresh', 'refreshLC']]) {
    const o = by[ours];
    const l = by[lc];
    const ok = (s) => s && (s.status === 'ok' || s.status === 'flagged') && s.rps > 0;
    out[flow] = {
      ours: ok(o) ? { perSec: o.rps, p50: o.latencyMs.p50, p99: o.latencyMs.p99, serverCpuUs: o.serverCpuUsPerReq, lowLoad: low(o), backendCallsPerOp: o.backendCalls[flow] / Math.max(o.total, 1) } : null,
      librechat: ok(l) ? { perSec: l.rps, p50: l.latencyMs.p50, p99: l.latencyMs.p99, serverCpuUs: l.serverCpuUsPerReq, lowLoad: low(l) } : null,
    };
    out[flow].ratio = out[flow].ours && out[flow].librechat ? out[flow].ours.perSec / out[flow].librechat.perSec : null;
  }
  // #26: a refresh with single sign-on on against the same refresh without it, same run.
  const plain = out.refresh.ours;
  const s = by.refreshSSO;
  const sso = s && (s.status === 'ok' || s.status === 'flagged') && s.rps > 0
    ? { perSec: s.rps, p50: s.latencyMs.p50, p99: s.latencyMs.p99, serverCpuUs: s.serverCpuUsPerReq, lowLoad: low(s) } : null;
  out.refreshSSO = { sso, plain, ratio: sso && plain ? sso.perSec / plain.perSec : null };
  return out;
}

function formatFlows(f) {
  const lines = [];
  for (const [flow, v] of Object.entries(f)) {
    if (flow === 'refreshSSO') {
      if (!v.sso) continue;
      const x = v.sso;
      lines.push(`refresh with single sign-on on (the portal cookie too): ${fmt(x.perSec, 1)}/s, p50 ${fmt(x.p50)} ms, server CPU ${fmt(x.serverCpuUs)} us each` +
        (x.lowLoad ? `; one at a time: own ${fmt(x.lowLoad.ownCostMs)} ms` : ''));
      if (v.ratio != null) lines.push(`  with/without single sign-on ${v.ratio.toFixed(2)}`);
      continue;
    }
    if (!v.ours && !v.librechat) continue;
    const one = (x, name) => (!x ? `  ${name}: not run / failed` : `  ${name}: ${fmt(x.perSec, 1)}/s, p50 ${fmt(x.p50)} ms, p99 ${fmt(x.p99)} ms, ` +
      `server CPU ${fmt(x.serverCpuUs)} us each` + (x.lowLoad ? `; one at a time: p50 ${fmt(x.lowLoad.p50)} ms` +
        (x.lowLoad.backendMs ? ` = backend ${x.lowLoad.backendMs} ms + own ${fmt(x.lowLoad.ownCostMs)} ms` : '') : ''));
    lines.push(`${flow} (${CONNECTIONS} connections):`);
    lines.push(one(v.ours, 'ours     '));
    lines.push(one(v.librechat, 'LibreChat'));
    if (v.ratio != null) lines.push(`  ours/LibreChat ${v.ratio.toFixed(2)}`);
  }
  return lines.join('\n');
}

/** Where the run's time went, in seconds. */
function formatPhases(p) {
  const f = (v) => (v == null ? '-' : v.toFixed(1));
  const rows = Object.entries(p.rows).map(([k, v]) => `${k} ${f(v)}`).join(', ');
  const rowSum = Object.values(p.rows).reduce((a, v) => a + v, 0);
  const probes = Object.entries(p.probes).map(([k, v]) => `${k} ${f(v)}`).join(', ');
  return [
    `time (s): total ${f(p.totalSec)} = setup ${f(p.setupSec)} + rows ${f(rowSum)} + micro ${f(p.microSec)}` +
      ` + probes ${f(Object.values(p.probes).reduce((a, v) => a + v, 0))} (+ reporting)`,
    `  setup: database, bench user and load generator ${f(p.setup.databaseUserLoadGeneratorSec)}, many users ${f(p.setup.manyUsersSec)}, ` +
      `login/refresh accounts and sessions ${f(p.setup.flowsSec)}`,
    `  rows, all rounds (server start, smoke check, warm-up, measured run, low-load run): ${rows || '-'}`,
    `  probes: ${probes || '-'}${p.memoryUsersSec != null ? `; memory users (written, then the users phase) on core 1 from the micro-benchmark's start: ${f(p.memoryUsersSec)}` : ''}`,
  ].join('\n');
}

function formatProbes(p) {
  const lines = [];
  if (p.singleflight) {
    if (p.singleflight.error) lines.push(`single flight: FAILED: ${p.singleflight.error}`);
    else {
      lines.push('single flight (N tabs refresh one session at once: backend refresh calls, answers):');
      for (const r of p.singleflight) {
        lines.push(`  N=${String(r.tabs).padEnd(3)} backend calls ${r.backendCalls} (${(r.backendCalls / r.tabs).toFixed(2)} per tab), ` +
          `answers ${JSON.stringify(r.statuses)}, ${r.distinctAccessTokens} distinct access token(s)`);
      }
    }
  }
  if (p.dbops) {
    if (p.dbops.error) lines.push(`database operations: FAILED: ${p.dbops.error}`);
    else {
      lines.push('database operations per request (commands on the wire; driver traffic and revocation polls left out):');
      for (const [who, flows] of Object.entries(p.dbops)) {
        for (const [flow, r] of Object.entries(flows)) {
          lines.push(`  ${`${who} ${flow}`.padEnd(26)} ${String(r.count).padStart(2)}: ${r.ops.join(', ')}`);
        }
      }
    }
  }
  if (p.cold) {
    if (p.cold.error) lines.push(`cold start: FAILED: ${p.cold.error}`);
    else {
      const c = p.cold;
      lines.push(`cold start (median of ${c.runs}): require() to first authenticated answer ${fmt(c.fromRequireToFirstAnswerMs, 1)} ms ` +
        `(require ${fmt(c.requireMs, 1)}, service ${fmt(c.serviceMs, 1)}, Express + listen ${fmt(c.appAndListenMs, 1)}, ` +
        `first request incl. database connection and user load ${fmt(c.firstAnswerMs, 1)}; the second request ${fmt(c.secondAnswerMs, 1)} ms)`);
    }
  }
  if (p.memory) {
    if (p.memory.error) lines.push(`memory: FAILED: ${p.memory.error}`);
    else {
      const m = p.memory;
      lines.push('memory (after GC; RSS includes the native caches, heap the shim\'s memo):');
      for (const r of m.users) lines.push(`  users    ${String(r.entries).padStart(7)}: ${fmt(r.rssBytesPerEntry)} B RSS, ${fmt(r.heapBytesPerEntry)} B heap per cached user (RSS ${fmt(r.rssMB, 0)} MB)`);
      for (const r of m.verdicts) lines.push(`  verdicts ${String(r.entries).padStart(7)}: ${fmt(r.rssBytesPerEntry)} B RSS, ${fmt(r.heapBytesPerEntry)} B heap per cached backend-token verdict (RSS ${fmt(r.rssMB, 0)} MB)`);
      const f = m.flood;
      const mbs = (v) => v.map((x) => fmt(x, 1)).join(' -> ');
      lines.push(`  ${f.waves} floods of ${f.tokens} distinct bogus backend tokens each (AUTH_CACHE_MAX_ENTRIES ${f.cacheMaxEntries}, ${f.refused} refused): ` +
        `RSS ${fmt(f.rssBeforeMB, 1)} -> ${mbs(f.rssAfterMB)} MB, heap ${fmt(f.heapBeforeMB, 1)} -> ${mbs(f.heapAfterMB)} MB`);
    }
  }
  return lines.join('\n');
}

function computeRatios(stacks) {
  const by = Object.fromEntries(stacks.map((s) => [s.key, s]));
  return RATIOS.map((r) => {
    const a = by[r.num];
    const b = by[r.den];
    const usable = (s) => s && (s.status === 'ok' || s.status === 'flagged') && s.rps > 0;
    if (!usable(a) || !usable(b)) {
      const missing = [[r.num, a], [r.den, b]].filter(([, s]) => !usable(s))
        .map(([k, s]) => `${k} ${!s ? 'not run' : s.status === 'unavailable' ? 'not available yet' : 'failed'}`);
      return { ...r, value: null, met: null, note: missing.join(', ') };
    }
    const value = a.rps / b.rps;
    const flagged = a.status === 'flagged' || b.status === 'flagged';
    return {
      ...r,
      value,
      met: r.target == null ? null : value >= r.target && !flagged,
      note: flagged ? 'an operand had errors: not comparable' : undefined,
    };
  });
}

/* ------------------------------------------------------------------------------------------------
 * Main
 * ---------------------------------------------------------------------------------------------- */
async function main() {
  const started = Date.now();
  // Where the run's time goes (seconds): printed with the report, kept in the results file.
  const phases = { setupSec: null, setup: {}, rows: {}, microSec: null, probes: {}, totalSec: null };
  const loadBefore = os.loadavg();
  const selected = (process.env.BENCH_STACKS || STACKS.map((s) => s.key).join(','))
    .split(',').map((s) => s.trim()).filter(Boolean);
  const stacks = STACKS.filter((s) => selected.includes(s.key));

  if (HAS_TASKSET) pinPid(process.pid, OTHER_CORE);
  const busyBefore = await machineBusyPct(1000);
  if (busyBefore != null && busyBefore > 15) {
    log(`warning: the machine was ${busyBefore.toFixed(0)} % of a core busy before the run: something else is using the CPU`);
  }

  const cleanups = [];
  const cleanup = async () => {
    while (cleanups.length) await cleanups.pop()().catch((e) => log(`cleanup: ${e.message}`));
  };
  const onSignal = () => {
    log('interrupted; cleaning up');
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    /* Database server */
    let baseUri = process.env.MONGO_URI;
    let dbPid = null;
    let dbOrigin = 'MONGO_URI from the environment';
    if (!baseUri) {
      const { startTestDb } = require('../scripts/test-db');
      log('starting secantusdb (scripts/test-db.js)...');
      const db = await startTestDb({ log: (m) => log(m) });
      cleanups.push(() => db.stop());
      baseUri = db.uri;
      dbPid = db.pid;
      dbOrigin = 'started by the bench (scripts/test-db.js startTestDb)';
      if (HAS_TASKSET) pinPid(dbPid, OTHER_CORE);
    }
    const dbName = `lcbench_${Date.now().toString(36)}`;
    const mongoUri = withDbName(baseUri, dbName);
    const dbServer = { ...(await describeServer(mongoUri)), origin: dbOrigin, database: dbName };
    cleanups.push(() => dropDatabase(mongoUri));
    // The login and refresh rows' database and the memory probe's (prepareFlows and
    // prepareMemoryUsers say why), on the same server.
    const flowUri = withDbName(baseUri, `${dbName}_flows`);
    const memUri = withDbName(baseUri, `${dbName}_mem`);
    cleanups.push(() => dropDatabase(flowUri), () => dropDatabase(memUri));
    log(`database server: ${dbServer.product} (buildInfo.version ${dbServer.buildInfoVersion}), ${dbOrigin}`);

    /* Mock backend, in this process (core 1) */
    const mock = await startMockBackend({ latencyMs: LATENCY_MS });
    cleanups.push(() => mock.close());

    const vars = {
      USE_CUSTOM_BACKEND_AUTH: 'true',
      BACKEND_AUTH_URL: mock.urls.login,
      BACKEND_USER_INFO_URL: mock.urls.userinfo,
      BACKEND_REFRESH_URL: mock.urls.refresh,
      // Read only by the rows with BACKEND_BEARER_TOKENS=jwks.
      BACKEND_JWKS_URL: mock.urls.jwks,
      BACKEND_JWT_ISSUER: mock.issuer,
      BACKEND_JWT_AUDIENCE: 'librechat',
      JWT_SECRET: crypto.randomBytes(24).toString('base64url'),
      JWT_REFRESH_SECRET: crypto.randomBytes(24).toString('base64url'),
      BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
      MONGO_URI: mongoUri,
    };

    const pkg = require('..');
    const user = await prepareUser(pkg, vars, mock);
    for (const n of user.notes) log(`note: ${n}`);
    log(`user ${user.userId} (backend ${user.backendUserId}) via ${user.via}`);
    mock.reset();
    if (REVOKED > 0) {
      // In the login and refresh rows' database too: every server of ours loads them.
      await Promise.all([plantRevocations(mongoUri, REVOKED), plantRevocations(flowUri, REVOKED)]);
      log(`${REVOKED} revocations of other users in force (BENCH_REVOKED): the revocation check of every request looks its user up`);
    }

    /* Load generator on core 1 */
    const loadChild = spawnNode(path.join(__dirname, 'load.js'), { core: OTHER_CORE, env: process.env });
    cleanups.push(() => stopChild(loadChild));
    await nextMessage(loadChild, (m) => m?.type === 'ready');

    phases.setup.databaseUserLoadGeneratorSec = since(started);
    let t = Date.now();
    const many = stacks.some((s) => s.token === 'many') ? await prepareManyUsers(vars) : null;
    phases.setup.manyUsersSec = since(t);
    t = Date.now();
    if (many) log(`${many.ids.length} more users with a token each, for the many-users rows`);
    const flows = stacks.filter((s) => s.flow);
    let flowPrep = { lc: null, pools: { ours: [], lc: [] }, ours: { userId: null } };
    const flowVars = { ...vars, MONGO_URI: flowUri };
    if (flows.length || PROBES.includes('singleflight') || PROBES.includes('dbops')) {
      const perRound = 1 + (WARMUP > 0 ? REFRESH_WARMUP : 0) + REFRESHES + LOW_LOAD_REFRESHES;
      // Only what the selected rows spend: each refresh row's rounds, and one session per N of the
      // single-flight row (ours).
      const rows = (key) => (stacks.some((s) => s.key === key) ? perRound * ROUNDS : 0);
      const needed = {
        ours: rows('refresh') + rows('refreshSSO') + (PROBES.includes('singleflight') ? SINGLE_FLIGHT_TABS.length : 0) + 2,
        lc: rows('refreshLC') + 2,
      };
      log(`login/refresh rows: a LibreChat local user, ${needed.ours} sessions of ours and ${needed.lc} of LibreChat's...`);
      flowPrep = await prepareFlows(pkg, flowVars, user, needed);
      mock.reset();
    }
    // The login and refresh rows' backend latency (the per-request rows never call these endpoints).
    mock.set({ login: { latencyMs: FLOW_LATENCY_MS }, refresh: { latencyMs: FLOW_LATENCY_MS } });
    const ctx = {
      pkg, vars, flowVars, mock, user, many, loadChild, dbPid, lc: flowPrep.lc, refreshPools: flowPrep.pools,
      flowUserId: flowPrep.ours.userId, memUri,
    };
    phases.setup.flowsSec = since(t);
    phases.setupSec = since(started);
    // Rounds in ABBA order (a..f, then f..a, ...): drift of the machine's speed during the run hits
    // every stack alike instead of the last ones; each stack's figure is the mean of its rounds.
    const runsByKey = new Map(stacks.map((s) => [s.key, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? stacks : [...stacks].reverse();
      for (const stack of order) {
        const previous = runsByKey.get(stack.key);
        if (previous.some((r) => r.status === 'unavailable' || r.status === 'failed')) continue;
        log(`[round ${round + 1}/${ROUNDS}] ${stack.label}: ${WARMUP} s warm-up + ${stack.jwks || stack.flow ? NEW_DURATION : DURATION} s, ${CONNECTIONS} connections...`);
        const t = Date.now();
        const r = await runStack(stack, ctx);
        phases.rows[stack.key] = (phases.rows[stack.key] ?? 0) + since(t);
        if (r.status === 'ok' || r.status === 'flagged') {
          log(`  ${fmt(r.rps)} req/s, p99 ${fmt(r.latencyMs.p99, 1)} ms, server CPU ${fmt(r.serverCpuUsPerReq)} us/req` +
            (r.status === 'flagged' ? `  FLAGGED: ${r.reason}` : '') + (r.warning ? `  (${r.warning})` : ''));
        } else {
          log(`  ${r.status}: ${r.reason}`);
        }
        previous.push(r);
      }
    }
    const results = stacks.map((stack) => aggregate(stack, runsByKey.get(stack.key)));

    const probes = {};
    const probe = async (name, fn) => {
      if (!PROBES.includes(name)) return;
      log(`${name}...`);
      const t = Date.now();
      try {
        probes[name] = await fn(ctx);
      } catch (err) {
        probes[name] = { error: err.message };
        log(`  ${name} FAILED: ${err.message}`);
      }
      phases.probes[name] = since(t);
    };
    // Single flight and cold start first: both time database work (a refresh's lease wait, the
    // first connection), so the database must be idle.
    await probe('singleflight', singleFlight);
    await probe('dbops', dbOps);
    await probe('cold', coldStart);

    // From here core 1 would idle (the micro-benchmark and the memory probe's verdict and flood
    // phases run on core 0 alone): the memory probe's users are written and loaded there meanwhile,
    // in a process pinned to core 1 beside the database. Never during a per-request row.
    if (PROBES.includes('memory')) {
      ctx.memUsers = memoryUsers(ctx).catch((err) => ({ error: err.message }));
    }
    let micro = null;
    if (process.env.BENCH_MICRO !== '0') {
      log('micro-benchmark of verify...');
      const t = Date.now();
      try {
        micro = await runMicroChild(ctx);
      } catch (err) {
        micro = { error: err.message };
      }
      phases.microSec = since(t);
    }
    await probe('memory', memoryProbe);
    if (ctx.memUsers) phases.memoryUsersSec = (await ctx.memUsers).wallSec ?? null;
    phases.totalSec = since(started);

    /* Report */
    const ratios = computeRatios(results);
    const oursVerify = micro?.results?.find((r) => r.key === 'ours');
    const verifyUs = oursVerify?.nsPerCall != null ? oursVerify.nsPerCall / 1000 : null;
    const rs256 = micro?.jwks?.results?.find((r) => r.key === 'ours' && r.alg === 'RS256');
    const rs256Us = rs256?.firstSightUs ?? null;
    const ceiling = ratios.find((r) => r.name === 'p/a');
    const targets = [
      ...ratios.filter((r) => r.target != null).map((r) => ({
        name: `${r.name} >= ${r.target}`, value: r.value, met: r.met,
        // Where passport alone (p) already costs the budget, the target cannot be met by any strategy.
        note: r.note ?? (ceiling?.value != null && r.den === 'a' ? `ceiling p/a ${ceiling.value.toFixed(2)} (passport alone)` : undefined),
      })),
      {
        name: `verify export <= ${VERIFY_TARGET_US} us/call`,
        value: verifyUs,
        met: verifyUs == null ? null : verifyUs <= VERIFY_TARGET_US,
        note: verifyUs == null ? (oursVerify?.unavailable ?? oursVerify?.error ?? 'not measured') : undefined,
      },
      {
        name: `JWKS RS256 first sight <= ${JWKS_RS256_TARGET_US} us`,
        value: rs256Us,
        met: rs256Us == null ? null : rs256Us <= JWKS_RS256_TARGET_US,
        note: rs256Us == null ? (micro?.jwks?.error ?? rs256?.error ?? 'not measured') : undefined,
      },
      {
        // The whole run (issue 12: all rows in under five minutes), judged only on a full run.
        name: `whole bench <= ${WHOLE_BENCH_TARGET_SEC} s`,
        value: phases.totalSec,
        met: FULL_RUN ? phases.totalSec <= WHOLE_BENCH_TARGET_SEC : null,
        note: FULL_RUN ? undefined : 'not a full run (BENCH_STACKS, BENCH_ROUNDS, BENCH_MICRO, BENCH_PROBES or durations changed)',
      },
    ];
    const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
    const aRow = results.find((r) => r.key === 'a' && (r.status === 'ok' || r.status === 'flagged'));
    // The machine a target was judged on: the ratios travel, the speed (a's req/s) says which machine.
    const machineLine = `${os.cpus().length} x ${cpuModel}, a = ${aRow ? `${fmt(aRow.rps)} req/s` : 'not run'}` +
      `, busy before ${busyBefore == null ? '?' : `${busyBefore.toFixed(0)} %`}` +
      `, foreign max ${(() => {
        const f = results.map((r) => r.foreignCpuPct).filter((v) => v != null);
        return f.length ? `${Math.max(...f).toFixed(0)} %` : '?';
      })()}`;
    for (const t of targets) t.machine = machineLine;
    const expressVersion = results.find((r) => r.express)?.express ?? require('express/package.json').version;
    const report = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        speedReqPerSecA: aRow ? aRow.rps : null,
        summary: machineLine,
        node: process.version,
        express: expressVersion,
        pinned: HAS_TASKSET ? { server: SERVER_CORE, loadGeneratorMockAndDb: OTHER_CORE } : false,
        busyBeforePctOfOneCore: busyBefore,
        loadAverageBefore: loadBefore,
        loadAverageAfter: os.loadavg(),
      },
      settings: { rounds: ROUNDS, durationSec: DURATION, warmupSec: WARMUP, connections: CONNECTIONS, backendLatencyMs: LATENCY_MS },
      dbServer,
      user: { via: user.via, notes: user.notes },
      stacks: results,
      ratios,
      micro,
      flows: flowSummary(results),
      probes,
      targets,
      phases,
      elapsedSec: (Date.now() - started) / 1000,
    };
    fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
    fs.writeFileSync(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);

    const out = [];
    out.push('');
    out.push(`Authenticated GET /api/user through passport, Express ${expressVersion}, Node ${process.version}, ` +
      `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`);
    out.push(`database server: ${dbServer.product} (buildInfo.version ${dbServer.buildInfoVersion}` +
      `${dbServer.maxWireVersion != null ? `, maxWireVersion ${dbServer.maxWireVersion}` : ''}), ${dbServer.origin}`);
    out.push(`autocannon -c ${CONNECTIONS}, ${WARMUP} s warm-up + ${DURATION} s measured per stack and round, ` +
      `${ROUNDS} round${ROUNDS > 1 ? 's (ABBA order; req/s is the mean, ± half the spread)' : ''}; ` +
      (HAS_TASKSET ? `server pinned to core ${SERVER_CORE}; load generator, mock backend (${LATENCY_MS} ms) and database on core ${OTHER_CORE}`
        : 'no core pinning'));
    const foreign = results.map((r) => r.foreignCpuPct).filter((v) => v != null);
    out.push(`machine busy before the run: ${busyBefore == null ? '?' : `${busyBefore.toFixed(0)} % of a core`}; ` +
      `CPU used by other processes during the measured runs: ${foreign.length ? `max ${Math.max(...foreign).toFixed(0)} % of a core` : '?'}`);
    out.push('');
    out.push(table(results));
    out.push('');
    for (const s of results) {
      out.push(`  ${s.label}${s.status === 'ok' ? '' : `\n      ${s.status === 'unavailable' ? 'not available yet' : s.status.toUpperCase()}: ${s.reason}`}`);
      if (s.warning) out.push(`      note: ${s.warning}`);
    }
    if (results.some((s) => s.status === 'unavailable')) {
      const missing = results.filter((s) => s.status === 'unavailable').map((s) => `(${s.key})`).join('/');
      out.push(`  ${missing}: not available yet`);
    }
    out.push('');
    out.push(`ratios (req/s, one run; machine: ${machineLine}):`);
    for (const r of ratios) {
      const v = r.value == null ? `n/a (${r.note})` : `${r.value.toFixed(2)}${r.note ? `  (${r.note})` : ''}`;
      out.push(`  ${r.name.padEnd(9)} ${v.padEnd(10)}  ${r.what}${r.target != null ? `; target >= ${r.target}` : ''}`);
    }
    out.push('');
    if (micro?.error) out.push(`micro-benchmark FAILED: ${micro.error}`);
    else if (micro) {
      out.push(`verify one LibreChat access token (HS256, ${micro.tokenLength} chars), single process, core ${HAS_TASKSET ? SERVER_CORE : '-'}:`);
      out.push(formatMicro(micro));
      if (micro.jwks) out.push(formatJwks(micro.jwks));
    }
    const flowText = formatFlows(report.flows);
    if (flowText) out.push('', flowText);
    const probeText = formatProbes(probes);
    if (probeText) out.push('', probeText);
    out.push('', formatPhases(phases));
    out.push('');
    out.push(`targets (on ${machineLine}):`);
    for (const t of targets) {
      const state = t.met == null ? 'n/a' : t.met ? 'met' : 'NOT MET';
      const v = t.value == null ? '' : ` (${t.value.toFixed(2)})`;
      out.push(`  ${t.name.padEnd(34)} ${`${state}${v}`.padEnd(16)}${t.note ? `  ${t.note}` : ''}`);
    }
    out.push('');
    out.push(`results: ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}  (${report.elapsedSec.toFixed(0)} s)`);
    process.stdout.write(`${out.join('\n')}\n`);
    if ((busyBefore ?? 0) > 15 || results.some((r) => (r.foreignCpuPct ?? 0) > 15)) {
      process.stdout.write('warning: other processes used the CPU around or during the run; repeat on an idle machine.\n');
    }
  } finally {
    await cleanup();
  }
}

module.exports = { STACKS, RATIOS, JWT_ALGS, VERIFY_TARGET_US, JWKS_RS256_TARGET_US };

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
