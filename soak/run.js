#!/usr/bin/env node
'use strict';

/**
 * `npm run soak`: LibreChat-shaped servers sharing one database and one identity backend, many users
 * with several tabs, backend events, a thief, and faults injected on a schedule, for a bounded time,
 * all on loopback; the invariants are counted as it runs and at the end.
 *
 *   node soak/run.js [--duration 180] [--users 20] [--tabs 3] [--instances 3] [--seed N]
 *                    [--api-clients 3] [--clock-offset 3] [--pause 6] [--no-theft] [--quiet]
 *
 * --pause: seconds the database is paused (SIGSTOP) in its rounds; by default MONGO_TIMEOUT_MS + 3 s
 * (6 s), under the refresh lease: a login or refresh waits for a stalled database until the driver
 * gives up on it, and a stall longer than the lease can end a session at a backend that detects
 * refresh-token reuse (docs/testing.md, "What it found"), so --pause 20 breaks invariants.
 *
 * Exit: 0 every invariant at 0; 1 an invariant broken; 2 the setup failed; 130 interrupted.
 * Results: soak/results/soak-<time>.json (gitignored) and the tables on stdout.
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const { startMockBackend } = require('../__test__/support/mockBackend');
const { reapRecordsOfGoneOwners } = require('../scripts/test-db');
const { startSoakDb } = require('./db');
const { startInstance, rssOf, faketimeLib } = require('./instance');
const { startEdgeProxy } = require('./proxy');
const { Books, INVARIANTS } = require('./invariants');
const { World, claimsOf, sha256, rng, sleep } = require('./workload');
const { runSchedule, stopAll } = require('./faults');
const { Secrets, redact } = require('./secrets');
const { tables, writeResults } = require('./report');

const ROOT = path.resolve(__dirname, '..');
const RUN_DIR = path.join(__dirname, '.run');
const RESULTS_DIR = path.join(__dirname, 'results');

function parseArgs(argv) {
  const a = {
    duration: 180, users: 20, tabs: 3, instances: 3, seed: Date.now() % 100000, apiClients: 3,
    clockOffset: 3, theft: true, quiet: false, pause: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`${k} needs a number`);
      return v;
    };
    if (k === '--duration') a.duration = num();
    else if (k === '--users') a.users = num();
    else if (k === '--tabs') a.tabs = num();
    else if (k === '--instances') a.instances = num();
    else if (k === '--seed') a.seed = num();
    else if (k === '--api-clients') a.apiClients = num();
    else if (k === '--clock-offset') a.clockOffset = num();
    else if (k === '--pause') a.pause = num();
    else if (k === '--no-theft') a.theft = false;
    else if (k === '--quiet') a.quiet = true;
    else if (k === '--help' || k === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n'use strict';\n\n\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  if (a.duration < 30) throw new Error('--duration: at least 30 seconds');
  if (a.instances < 1 || a.instances > 4) throw new Error('--instances: 1 to 4');
  if (a.tabs < 1 || a.users < 1) throw new Error('--users and --tabs: at least 1');
  return a;
}

/* ------------------------------------------------------------------ stray processes */

function ownerFile() {
  return path.join(RUN_DIR, `owner-${process.pid}.json`);
}

// The last resort on any exit: no child outlives the run (SIGCONT first: a paused database).
const CHILD_PIDS = new Set();
process.on('exit', () => {
  for (const pid of CHILD_PIDS) {
    try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

function recordPid(pid, what, files = []) {
  CHILD_PIDS.add(pid);
  fs.mkdirSync(RUN_DIR, { recursive: true });
  let rec = { owner: process.pid, pids: [] };
  try {
    rec = JSON.parse(fs.readFileSync(ownerFile(), 'utf8'));
  } catch { /* first */ }
  rec.pids.push({ pid, what, files });
  fs.writeFileSync(ownerFile(), JSON.stringify(rec));
}

/** Processes of an earlier run whose soak process died without stopping them (SIGKILL). */
function reapOrphans() {
  reapRecordsOfGoneOwners(RUN_DIR, /^owner-\d+\.json$/, (rec) => {
    for (const { pid } of rec.pids) {
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch { continue; }
      if (cmd.includes('secantusd') || cmd.includes(path.join('soak', 'instance.js'))) {
        process.stderr.write(`[soak] stopping pid ${pid} left by an earlier run\n`);
        try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    // Its database's storage and log (once the server is gone).
    for (const { files = [] } of rec.pids) {
      for (const f of files) if (f.startsWith(RUN_DIR)) fs.rmSync(f, { recursive: true, force: true });
    }
  });
}

/* ------------------------------------------------------------------ main */

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`soak: ${e.message}\n`);
    return 2;
  }
  const durationMs = args.duration * 1000;
  const env = {
    BACKEND_TIMEOUT_MS: 2000,
    MONGO_TIMEOUT_MS: 3000,
    BACKEND_BREAKER_COOLDOWN_MS: 5000,
    BACKEND_JWKS_REFETCH_COOLDOWN_MS: 3000,
    REFRESH_GRACE_MS: 4000,
    REVOCATION_POLL_MS: 1000,
    SESSION_EXPIRY_MS: 45_000,
  };
  const cfg = {
    ...args,
    env,
    durationMs,
    warmupMs: Math.round(Math.min(20_000, Math.max(8000, durationMs * 0.1))),
    quietMs: Math.round(Math.min(30_000, Math.max(12_000, durationMs * 0.1))),
    faultMs: durationMs >= 300_000 ? 10_000 : 8000,
    pauseMs: args.pause !== null ? args.pause * 1000 : env.MONGO_TIMEOUT_MS + 3000,
    thinkMinMs: 300,
    thinkMaxMs: 2500,
    pLogout: 0.012,
    pLogoutAll: 0.003,
    pRefresh: 0.04,
    eventEveryMs: 5000,
    graceMs: env.REFRESH_GRACE_MS,
    clockOffsetSec: args.instances > 1 ? args.clockOffset : 0,
    revocationBoundMs: env.REVOCATION_POLL_MS + env.MONGO_TIMEOUT_MS + 2000,
  };
  const B = env.BACKEND_TIMEOUT_MS;
  const M = env.MONGO_TIMEOUT_MS;
  const S = 5000; // the machine's noise
  const bounds = {
    api: M + B + S,
    login: 2 * B + 2 * M + 1000 + S,
    refresh: (B + 5000) + 2 * B + 2 * M + S,
    logout: B + 2 * M + S,
    logoutAll: 2 * B + 2 * M + S,
    event: 2 * M + S,
    probe: (B + 5000) + 2 * B + 2 * M + S,
  };
  cfg.bounds = bounds;

  const secrets = new Secrets();
  let stopping = false;
  let runUntil = 0;
  const ctx = {
    cfg, secrets, rand: rng(cfg.seed), keyEpoch: 0, timers: new Set(),
    running: () => !stopping && Date.now() < runUntil,
    familyBySidHash: new Map(),
  };
  const started = { instances: [], edges: [], mock: null, db: null, dbClient: null };
  const logLines = []; // [instance, line]
  let scanned = 0;

  let tornDown = null;
  const teardown = () => {
    if (tornDown) return tornDown;
    tornDown = (async () => {
      stopping = true;
      for (const t of ctx.timers) clearTimeout(t);
      if (ctx.mock) await stopAll(ctx).catch(() => {});
      await Promise.all(started.instances.map((i) => i.close().catch(() => {})));
      await Promise.all(started.edges.map((e) => e.proxy.close().catch(() => {})));
      if (started.dbClient) await started.dbClient.close(true).catch(() => {});
      if (started.mock) await started.mock.close().catch(() => {});
      if (started.db) await started.db.stop().catch(() => {});
      fs.rmSync(ownerFile(), { force: true });
    })();
    return tornDown;
  };
  const onSignal = (sig) => {
    process.stderr.write(`\n[soak] ${sig}: stopping everything\n`);
    teardown().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  /* ---------------- setup */
  const setup = {};
  let books;
  try {
    reapOrphans();
    if (cfg.clockOffsetSec && !faketimeLib()) {
      throw new Error('libfaketime is missing (Debian: apt-get install faketime); or run with --clock-offset 0');
    }
    const db = await startSoakDb({ runDir: RUN_DIR, onPid: (pid, files) => recordPid(pid, 'db', files) });
    started.db = db;
    const mock = await startMockBackend({ jwtTokens: 'RS256' });
    started.mock = mock;
    ctx.mock = mock;
    ctx.db = db;
    // The backend's sessions (families) by the hash the addon stores with a session, and each
    // family's refresh tokens: what "backend session left alive" looks up.
    ctx.refreshTokensOf = new Map(); // family -> [refresh tokens]
    const familyOfToken = new Map();
    const keepToken = (family, rt) => {
      if (typeof rt !== 'string' || !family) return;
      familyOfToken.set(rt, family);
      const list = ctx.refreshTokensOf.get(family) || [];
      list.push(rt);
      ctx.refreshTokensOf.set(family, list);
    };
    mock.set({
      login: {
        beforeSend: async ({ answer }) => {
          if (answer && typeof answer.session_id === 'string') {
            ctx.familyBySidHash.set(sha256(answer.session_id), answer.session_id);
            keepToken(answer.session_id, answer.refreshToken);
          }
        },
      },
      refresh: {
        beforeSend: async ({ body, answer }) => {
          if (answer && body && typeof body.refreshToken === 'string') keepToken(familyOfToken.get(body.refreshToken), answer.refreshToken);
        },
      },
    });
    const eventsSecret = crypto.randomBytes(24).toString('hex');
    ctx.eventsSecret = eventsSecret;
    const vars = {
      USE_CUSTOM_BACKEND_AUTH: 'true',
      JWT_SECRET: crypto.randomBytes(24).toString('hex'),
      JWT_REFRESH_SECRET: crypto.randomBytes(24).toString('hex'),
      BACKEND_TOKEN_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
      SESSION_EXPIRY: String(env.SESSION_EXPIRY_MS),
      REFRESH_TOKEN_EXPIRY: '(1000 * 60 * 60 * 24) * 7',
      BACKEND_TIMEOUT_MS: String(B),
      MONGO_TIMEOUT_MS: String(M),
      LOGIN_MAX: '1000000',
      BACKEND_AUTH_URL: mock.urls.login,
      BACKEND_USER_INFO_URL: mock.urls.userinfo,
      BACKEND_REFRESH_URL: mock.urls.refresh,
      BACKEND_LOGOUT_URL: mock.urls.logout,
      BACKEND_EVENTS_SECRET: eventsSecret,
      BACKEND_BEARER_TOKENS: 'jwks',
      BACKEND_JWKS_URL: mock.urls.jwks,
      BACKEND_JWT_ISSUER: mock.issuer,
      BACKEND_JWT_AUDIENCE: mock.audience,
      BACKEND_JWKS_REFETCH_COOLDOWN_MS: String(env.BACKEND_JWKS_REFETCH_COOLDOWN_MS),
      BACKEND_PROVISION_ON_BEARER: 'true',
      BACKEND_BREAKER_COOLDOWN_MS: String(env.BACKEND_BREAKER_COOLDOWN_MS),
      REFRESH_GRACE_MS: String(env.REFRESH_GRACE_MS),
      REVOCATION_POLL_MS: String(env.REVOCATION_POLL_MS),
      MONGO_URI: `${db.uri}/soak`,
    };
    cfg.vars = Object.fromEntries(Object.entries(vars).filter(([k]) => !/SECRET|KEY/.test(k)));
    for (const [k, v] of Object.entries(vars)) if (/SECRET|KEY/.test(k)) secrets.add(v);
    const names = ['A', 'B', 'C', 'D'].slice(0, cfg.instances);
    setup.offsetInstance = cfg.clockOffsetSec ? names[names.length - 1] : null;
    const onLog = (name, line, at) => logLines.push([name, line, at]);
    started.instances = await Promise.all(names.map((name) => startInstance(vars, {
      name, clockOffsetSec: name === setup.offsetInstance ? cfg.clockOffsetSec : 0, onLog,
    })));
    for (const i of started.instances) recordPid(i.pid, `instance ${i.name}`);
    for (const i of started.instances) {
      const proxy = await startEdgeProxy(i.port);
      started.edges.push({ name: i.name, url: proxy.url, proxy, instance: i });
    }
    ctx.edges = started.edges;
    const { MongoClient } = require('mongodb');
    started.dbClient = new MongoClient(`${db.uri}/soak`, { serverSelectionTimeoutMS: 1500, connectTimeoutMS: 1500 });
    await started.dbClient.connect();
    ctx.dbClient = started.dbClient;
  } catch (e) {
    process.stderr.write(`soak: setup failed: ${e.stack || e.message}\n`);
    await teardown();
    return 2;
  }

  /* ---------------- the run */
  const startedAt = Date.now();
  ctx.startedAt = startedAt;
  runUntil = startedAt + durationMs;
  books = new Books({ bounds, startedAt });
  ctx.books = books;
  const world = new World(ctx);
  world.makeUsers();
  setup.browsers = world.users.reduce((n, u) => n + u.browsers.length, 0);
  setup.tabs = setup.browsers * cfg.tabs;

  // Probe users, one per server: a login, an API request, a rotating refresh and a logout on each.
  const probes = started.edges.map((edge, k) => {
    const password = `pw-${crypto.randomBytes(9).toString('hex')}`;
    secrets.add(password);
    ctx.mock.addUser({ id: `probe-${k}`, username: `probe${k}`, password, email: `probe${k}@example.com`, name: `Probe ${k}`, roles: ['staff'] });
    return { edge, login: `probe${k}`, password };
  });
  const probeOnce = async (p) => {
    const l = await world.http('probe', { method: 'POST', path: '/api/auth/login', body: { email: p.login, password: p.password }, edge: p.edge });
    if (l.status !== 200 || !l.json?.token || !l.cookies.refreshToken) return null;
    const cookie = `refreshToken=${encodeURIComponent(l.cookies.refreshToken)}; token_provider=custom-backend`;
    const a = await world.http('probe', { path: '/api/user', token: l.json.token, edge: p.edge });
    const r = await world.http('probe', { method: 'POST', path: '/api/auth/refresh', cookie, edge: p.edge });
    const rotated = r.status === 200 && r.json?.token && r.cookies.refreshToken;
    const cookie2 = rotated ? `refreshToken=${encodeURIComponent(r.cookies.refreshToken)}; token_provider=custom-backend` : cookie;
    const o = await world.http('probe', { method: 'POST', path: '/api/auth/logout', token: rotated ? r.json.token : l.json.token, cookie: cookie2, edge: p.edge });
    return a.status === 200 && rotated && o.status === 200 ? l : null;
  };
  const probe = async () => (await Promise.all(probes.map(probeOnce))).every(Boolean);

  // Before the clock starts: every server answers, and the offset server's tokens carry its clock.
  const first = await Promise.all(probes.map(probeOnce));
  if (!first.every(Boolean)) {
    process.stderr.write('soak: setup failed: a first login, API request, refresh and logout did not succeed on every server\n');
    await teardown();
    return 2;
  }
  if (setup.offsetInstance) {
    const k = started.edges.findIndex((e) => e.name === setup.offsetInstance);
    const iat = claimsOf(first[k].json.token)?.iat;
    setup.observedOffsetSec = Math.round(iat - first[k].t1 / 1000);
    if (setup.observedOffsetSec < cfg.clockOffsetSec - 1) {
      process.stderr.write(`soak: setup failed: server ${setup.offsetInstance} runs under libfaketime +${cfg.clockOffsetSec} s but its tokens' iat is ${setup.observedOffsetSec} s ahead\n`);
      await teardown();
      return 2;
    }
  }

  process.stderr.write(`[soak] ${started.instances.length} servers (${started.instances.map((i) => `${i.name} pid ${i.pid}`).join(', ')}), db pid ${ctx.db.pid}, ` +
    `${cfg.users} users / ${setup.browsers} browsers / ${setup.tabs} tabs, ${cfg.apiClients} API clients, ${args.duration} s, seed ${cfg.seed}\n`);

  // Memory: every server's RSS every 2 s.
  const rss = Object.fromEntries(started.instances.map((i) => [i.name, []]));
  const memTimer = setInterval(() => {
    for (const i of started.instances) {
      const v = rssOf(i.pid);
      if (v) rss[i.name].push([Date.now() - startedAt, v]);
    }
  }, 2000);
  // Secrets in logs: the new lines every 5 s (and all lines again at the end, with every secret).
  const scan = (from) => {
    for (let k = from; k < logLines.length; k++) {
      const [name, line] = logLines[k];
      const s = secrets.find(line);
      if (s) books.violation('secretInLog', `${name}: ${redact(line, s)}`);
    }
  };
  const scanTimer = setInterval(() => {
    for (const t of ctx.mock.issuedTokens()) secrets.add(t);
    const upTo = logLines.length;
    scan(scanned);
    scanned = upTo;
  }, 5000);
  const progress = setInterval(() => {
    if (cfg.quiet) return;
    const broken = INVARIANTS.filter(([k]) => books.counts[k]).map(([k]) => `${k}=${books.counts[k]}`);
    process.stderr.write(`[soak] ${books.rel(Date.now())} served ${books.served.total}; invariants ${broken.length ? broken.join(' ') : 'all 0'}\n`);
  }, 10_000);

  world.start();
  let rounds = [];
  try {
    rounds = await runSchedule(ctx, { probe });
    while (ctx.running()) await sleep(200);
  } catch (e) {
    process.stderr.write(`soak: the fault schedule failed: ${e.stack || e.message}\n`);
    books.note('scheduleFailed', e.message);
  }
  // Requests still in flight finish (each is bounded), at most the longest bound.
  await Promise.race([world.done(), sleep(Math.max(...Object.values(bounds)) + 2000)]);
  clearInterval(memTimer);
  clearInterval(scanTimer);
  clearInterval(progress);

  /* ---------------- the end's checks */
  for (const t of ctx.mock.issuedTokens()) secrets.add(t);
  const before = books.counts.secretInLog;
  books.counts.secretInLog = 0;
  books.examples.secretInLog = [];
  scan(0);
  if (books.counts.secretInLog < before) books.counts.secretInLog = before;

  const median = (arr) => {
    const s = [...arr].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : null;
  };
  const memory = started.instances.map((i) => {
    const samples = rss[i.name];
    const base = median(samples.filter(([t]) => t >= cfg.warmupMs && t < cfg.warmupMs + 10_000).map(([, v]) => v));
    const end = median(samples.slice(-5).map(([, v]) => v));
    // The bound: 64 MiB plus a quarter of the RSS after warm-up, whatever the run's length.
    const bound = base === null ? null : 64 * 1048576 + Math.round(base * 0.25);
    const growth = base === null || end === null ? null : end - base;
    if (growth !== null && growth > bound) books.violation('memoryGrowth', `${i.name}: RSS ${Math.round(base / 1048576)} -> ${Math.round(end / 1048576)} MiB`);
    return { name: i.name, base, end, growth, bound, samples: samples.length };
  });

  books.info.backendReuseDetected = ctx.mock.reuseDetected;
  const text = tables({ cfg, books, rounds, memory, setup });
  const failed = INVARIANTS.filter(([k]) => books.counts[k] > 0);
  const result = {
    startedAt: new Date(startedAt).toISOString(),
    cfg: { ...cfg, vars: cfg.vars },
    setup,
    served: books.served,
    statuses: books.statuses,
    latency: books.latencyTable(),
    rounds: rounds.map((r) => ({ ...r, start: r.start - startedAt, end: r.end && r.end - startedAt, recoveredAt: r.recoveredAt && r.recoveredAt - startedAt })),
    windows: books.windows.map((w) => ({ ...w, start: w.start - startedAt, end: w.end && w.end - startedAt })),
    invariants: Object.fromEntries(INVARIANTS.map(([k, label]) => [k, { label, count: books.counts[k], examples: books.examples[k] }])),
    observed: books.info,
    observedExamples: books.infoExamples,
    memory,
    logLines: logLines.length,
    secretsChecked: secrets.all.size,
    edgeDropped: started.edges.map((e) => ({ name: e.name, dropped: e.proxy.state.dropped })),
  };
  const file = path.join(RESULTS_DIR, `soak-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}.json`);
  writeResults(file, result);
  // The servers' log lines beside it, each with its time in the run (a secret, if any, redacted).
  fs.writeFileSync(file.replace(/\.json$/, '.log'), logLines.map(([name, line, at]) => {
    const s = secrets.find(line);
    return `${books.rel(at)} ${name} ${s ? redact(line, s) : line}`;
  }).join('\n') + '\n');
  await teardown();
  process.stdout.write(`\n${text}\n\nLog lines checked for ${secrets.all.size} secrets: ${logLines.length}. Results: ${path.relative(ROOT, file)}\n`);
  if (failed.length) {
    process.stdout.write(`\nFAILED: ${failed.map(([k]) => `${k} ${books.counts[k]}`).join(', ')}\n`);
    for (const [k] of failed) for (const ex of books.examples[k]) process.stdout.write(`  ${k}: ${ex}\n`);
    return 1;
  }
  process.stdout.write('\nPASSED: every invariant at 0\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`soak: ${e.stack || e.message}\n`);
    process.exit(2);
  },
);
