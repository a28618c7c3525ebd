'use strict';

/**
 * Micro-benchmark: verifying one LibreChat access token (HS256, JWT_SECRET), in one process.
 *
 *   node bench/micro.js                 standalone: mints its own token, prints a table
 *   (bench/run.js runs it as a child pinned to a core and reads the JSON it sends over IPC)
 *
 * Candidates: our sync export `service.verifyAccessToken(token)`, jsonwebtoken.verify with the string
 * secret (what LibreChat does) and with a KeyObject, fast-jwt createVerifier with cache off and on.
 * Each candidate is warmed up, then run in batches until BENCH_MICRO_MS (default 1500) have passed or
 * BENCH_MICRO_ITERS (default 200000) calls were made, whichever comes first; it reports ns per call.
 *
 * Environment: BENCH_TOKEN (else minted here), JWT_SECRET, BENCH_USER_ID, and whatever our service
 * needs (run.js passes the same variables as to the servers).
 */

const crypto = require('crypto');
const jsonwebtoken = require('jsonwebtoken');

const BUDGET_MS = Number(process.env.BENCH_MICRO_MS) || 1500;
const MAX_ITERS = Number(process.env.BENCH_MICRO_ITERS) || 200_000;
const WARMUP_MS = Math.min(300, BUDGET_MS / 4);

function setup() {
  const secret = process.env.JWT_SECRET || 'bench-jwt-secret-0123456789abcdef';
  const userId = process.env.BENCH_USER_ID || '65f0c0ffee0000000000abcd';
  const token =
    process.env.BENCH_TOKEN ||
    jsonwebtoken.sign(
      { id: userId, username: 'alice', provider: 'custom-backend', email: 'alice@example.com' },
      secret,
      { expiresIn: '15m' },
    );
  return { secret, userId, token };
}

/** Our service, or the reason it cannot be used. */
function ourVerify(secret) {
  let pkg;
  try {
    pkg = require('..');
  } catch (err) {
    return { unavailable: `cannot load the package: ${err.message}` };
  }
  // Placeholders only where the environment has nothing (standalone run): verify needs no network.
  const placeholders = {
    BACKEND_AUTH_URL: 'http://127.0.0.1:9/login',
    BACKEND_USER_INFO_URL: 'http://127.0.0.1:9/userinfo',
    BACKEND_REFRESH_URL: 'http://127.0.0.1:9/refresh',
    JWT_REFRESH_SECRET: `${secret}-refresh`,
    MONGO_URI: 'mongodb://127.0.0.1:9/lcbench',
    BACKEND_TOKEN_ENCRYPTION_KEY: crypto.createHash('sha256').update(secret).digest('hex'),
  };
  // The user cache must outlive the whole micro-benchmark (the default 5 s would expire it between
  // rows, and the hot-path rows would then measure a cache miss).
  const options = { JWT_SECRET: secret, USER_CACHE_TTL: '3600', logger: { info() {}, debug() {}, warn() {}, error() {} } };
  for (const [k, v] of Object.entries(placeholders)) if (process.env[k] === undefined) options[k] = v;
  let service;
  try {
    service = new pkg.CustomBackendAuthService(options);
  } catch (err) {
    return { unavailable: `cannot build the service: ${err.message}` };
  }
  if (typeof service.verifyAccessToken !== 'function') {
    return { unavailable: 'service.verifyAccessToken is not available yet', service };
  }
  const hotPath =
    typeof service.checkBearer === 'function'
      ? (t) => {
        // What customJwtStrategy does per request before passport's success(): classify and verify
        // (sync, native), then the cached user (a copy of a memoised object when the version matches).
        const c = service.checkBearer(t);
        if (c.kind === 'user' && typeof service.cachedUser === 'function') service.cachedUser(c.id, c.version);
        return c.id;
      }
      : null;
  return { fn: (t) => service.verifyAccessToken(t), hotPath, service };
}

/** Runs fn(token) until the budget is spent; returns { iterations, nsPerCall }. */
function measure(fn, token) {
  let sink = 0;
  const run = (ms, cap) => {
    let iters = 0;
    let batch = 1;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(ms * 1e6));
    let now = start;
    while (now < deadline && iters < cap) {
      const n = Math.min(batch, cap - iters);
      for (let i = 0; i < n; i++) {
        const r = fn(token);
        sink += typeof r === 'string' ? r.length : r ? 1 : 0;
      }
      iters += n;
      now = process.hrtime.bigint();
      if (batch < 4096) batch *= 2;
    }
    return { iterations: iters, ns: Number(now - start) };
  };
  run(WARMUP_MS, MAX_ITERS);
  const { iterations, ns } = run(BUDGET_MS, MAX_ITERS);
  if (sink < 0) console.log(sink); // keeps the results alive
  return { iterations, nsPerCall: ns / iterations };
}

async function runMicro() {
  const { secret, userId, token } = setup();
  const keyObject = crypto.createSecretKey(Buffer.from(secret));
  const { createVerifier } = require('fast-jwt');
  const fastNoCache = createVerifier({ key: secret, algorithms: ['HS256'], cache: false });
  const fastCache = createVerifier({ key: secret, algorithms: ['HS256'], cache: true });
  const ours = ourVerify(secret);
  const garbage = 'x'.repeat(token.length);
  let warmUser = 'no';
  if (ours.hotPath && process.env.BENCH_TOKEN && typeof ours.service.loadUser === 'function') {
    // With a real user in a reachable database (run.js), fill the user cache as a first request would.
    try {
      warmUser = (await ours.service.loadUser(userId)) ? 'yes' : 'user not found';
    } catch (err) {
      warmUser = `failed: ${err.code ?? ''} ${err.message}`;
    }
  }

  const candidates = [
    { name: 'ours: service.verifyAccessToken (sync, native)', key: 'ours', fn: ours.fn, unavailable: ours.unavailable },
    {
      // The floor of one call: napi in and out, a string argument of the same length, no crypto.
      name: 'ours: verifyAccessToken(garbage, same length) (floor)',
      key: 'oursFloor',
      fn: ours.fn && ((t) => (ours.fn(garbage) === null ? userId : 'accepted garbage')),
      unavailable: ours.unavailable,
    },
    {
      name: 'ours: checkBearer alone (native verify + cache lookup + result object)',
      key: 'oursCheckBearer',
      fn: ours.service?.checkBearer ? (t) => ours.service.checkBearer(t).id : undefined,
      unavailable: ours.unavailable ?? (ours.service?.checkBearer ? undefined : 'service.checkBearer is not available'),
    },
    {
      name: 'ours: checkBearer + cachedUser (strategy hot path)',
      key: 'oursHotPath',
      fn: ours.hotPath,
      unavailable: ours.unavailable ?? (ours.hotPath ? undefined : 'service.checkBearer is not available'),
    },
    ...passportRows(ours, token),
    { name: 'jsonwebtoken.verify, string secret (LibreChat)', key: 'jsonwebtokenString', fn: (t) => jsonwebtoken.verify(t, secret).id },
    { name: 'jsonwebtoken.verify, KeyObject', key: 'jsonwebtokenKeyObject', fn: (t) => jsonwebtoken.verify(t, keyObject).id },
    { name: 'fast-jwt createVerifier, cache off', key: 'fastJwtNoCache', fn: (t) => fastNoCache(t).id },
    { name: 'fast-jwt createVerifier, cache on (hit)', key: 'fastJwtCache', fn: (t) => fastCache(t).id },
  ];

  const results = [];
  for (const c of candidates) {
    if (!c.fn) {
      results.push({ key: c.key, name: c.name, unavailable: c.unavailable });
      continue;
    }
    let check;
    try {
      check = c.fn(token);
    } catch (err) {
      results.push({ key: c.key, name: c.name, error: `verify threw: ${err.message}` });
      continue;
    }
    if (check !== userId) {
      results.push({ key: c.key, name: c.name, error: `returned ${JSON.stringify(check)}, expected ${userId}` });
      continue;
    }
    results.push({ key: c.key, name: c.name, ...measure(c.fn, token) });
  }
  ours.service?.close?.().catch(() => {});
  let jwks = null;
  if (process.env.BENCH_JWKS_FILE) {
    try {
      jwks = await runJwks(JSON.parse(require('fs').readFileSync(process.env.BENCH_JWKS_FILE, 'utf8')), userId);
    } catch (err) {
      jwks = { error: err.message };
    }
  }
  return { tokenLength: token.length, budgetMs: BUDGET_MS, maxIterations: MAX_ITERS, userCacheWarmed: warmUser, results, jwks };
}

/**
 * The per-request JS path alone, without HTTP: passport's `authenticate('jwt', {session:false})`
 * middleware (after `initialize()`) on a bare request object, (1) with our strategy, (2) with a
 * strategy that succeeds at once with a constant user: passport's own cost. Both finish
 * synchronously for a cached user, so they are timed like the verify rows.
 */
function passportRows(ours, token) {
  if (!ours.service || typeof ours.hotPath !== 'function') return [];
  const { Passport } = require('passport');
  const pkg = require('..');
  const build = (strategy) => {
    const p = new Passport();
    p.use('jwt', strategy);
    const init = p.initialize();
    const auth = p.authenticate('jwt', { session: false });
    return (t) => {
      const req = { headers: { authorization: `Bearer ${t}` } };
      let id = null;
      init(req, {}, () => auth(req, {}, (err) => {
        id = err ? `error ${err.message}` : req.user?.id;
      }));
      return id;
    };
  };
  const userId = process.env.BENCH_USER_ID || '65f0c0ffee0000000000abcd';
  class Constant {
    constructor() {
      this.name = 'jwt';
    }

    authenticate() {
      this.success({ id: userId });
    }
  }
  return [
    {
      name: 'passport.authenticate + customJwtStrategy (JS path, no HTTP)',
      key: 'passportOurs',
      fn: build(pkg.customJwtStrategy({ service: ours.service })),
    },
    {
      name: 'passport.authenticate + constant success() (passport alone)',
      key: 'passportFloor',
      fn: build(new Constant()),
    },
  ];
}

/** Runs the async fn over `tokens` in turn (each once); ns per call. */
async function measureAsync(fn, tokens) {
  const start = process.hrtime.bigint();
  for (const t of tokens) await fn(t);
  return Number(process.hrtime.bigint() - start) / tokens.length;
}

/**
 * First sight and repeat interleaved (a fresh token, then the repeated one, in turn), each call
 * timed: medians in ns. Measured one after the other, the two figures differed by whatever the
 * machine did in between (the async call alone varies by tens of us) and the first algorithm's
 * row paid the process's warm-up.
 */
async function measurePairs(check, fresh, repeatToken) {
  const first = [];
  const repeat = [];
  for (const t of fresh) {
    const a = process.hrtime.bigint();
    await check(t);
    const b = process.hrtime.bigint();
    await check(repeatToken);
    first.push(Number(b - a));
    repeat.push(Number(process.hrtime.bigint() - b));
  }
  const median = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
  return [median(first), median(repeat)];
}

/**
 * First-sight verification of backend JWTs (JWKS) per algorithm: `tokens[alg]` are distinct tokens
 * of the same user, never seen before. Ours: what the jwt strategy calls for a bearer token,
 * `checkBearer` (the verdict from the cache, or verified there when the key set holds the key) and
 * `cachedUser`, `authenticateBackendToken` only when the check cannot answer; minus the same with
 * one repeated token (answered from the verdict cache) = the verify's own cost (medians, the two
 * interleaved: `measurePairs`). jose `jwtVerify`
 * (async, a local JWK set) and fast-jwt `createVerifier` (sync, cache off) on the same tokens.
 */
async function runJwks(spec, userId) {
  const pkg = require('..');
  const jose = require('jose');
  const { createVerifier } = require('fast-jwt');
  const jwkSet = await (await fetch(process.env.BACKEND_JWKS_URL)).json();
  const quiet = { info() {}, debug() {}, warn() {}, error() {} };
  const results = [];
  for (const [alg, tokens] of Object.entries(spec.tokens)) {
    const service = new pkg.CustomBackendAuthService({
      BACKEND_BEARER_TOKENS: 'jwks',
      AUTH_CACHE_MAX_ENTRIES: String(tokens.length * 2 + 100),
      logger: quiet,
    });
    try {
      // What the jwt strategy does with the token (lib/strategies.js): the synchronous check, and
      // the async call only when that cannot answer.
      const check = async (t) => {
        const c = service.checkBearer(t);
        const u = c.kind === 'user' ? service.cachedUser(c.id, c.version) : await service.authenticateBackendToken(t);
        if (u?.id !== userId) throw new Error(`ours answered ${JSON.stringify(u?.id)}, expected ${userId}`);
      };
      // The first call fetches the key set and loads the user: not measured.
      await check(tokens[0]);
      const [warm, fresh] = [tokens.slice(1, 51), tokens.slice(51)];
      for (const t of warm) await check(t);
      const [firstNs, repeatNs] = await measurePairs(check, fresh, tokens[0]);
      results.push({
        key: 'ours', alg, calls: fresh.length, firstSightNs: firstNs, repeatNs,
        firstSightUs: (firstNs - repeatNs) / 1000,
      });
    } catch (err) {
      results.push({ key: 'ours', alg, error: err.message });
    } finally {
      await service.close().catch(() => {});
    }
    const claims = { issuer: spec.issuer, audience: spec.audience, algorithms: [alg] };
    try {
      const keySet = jose.createLocalJWKSet(jwkSet);
      const check = async (t) => {
        const { payload } = await jose.jwtVerify(t, keySet, claims);
        if (payload.sub !== spec.sub) throw new Error('jose: wrong sub');
      };
      for (const t of tokens.slice(0, 50)) await check(t);
      const ns = await measureAsync(check, tokens.slice(51));
      results.push({ key: 'jose', alg, calls: tokens.length - 51, firstSightNs: ns, firstSightUs: ns / 1000 });
    } catch (err) {
      results.push({ key: 'jose', alg, error: err.message });
    }
    try {
      const header = JSON.parse(Buffer.from(tokens[0].split('.')[0], 'base64url'));
      const jwk = jwkSet.keys.find((k) => k.kid === header.kid);
      const pem = require('crypto').createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const verify = createVerifier({
        key: pem, algorithms: [alg], allowedIss: spec.issuer, allowedAud: spec.audience, cache: false,
      });
      const check = (t) => {
        if (verify(t).sub !== spec.sub) throw new Error('fast-jwt: wrong sub');
      };
      for (const t of tokens.slice(0, 50)) check(t);
      const start = process.hrtime.bigint();
      for (const t of tokens.slice(51)) check(t);
      const ns = Number(process.hrtime.bigint() - start) / (tokens.length - 51);
      results.push({ key: 'fastJwt', alg, calls: tokens.length - 51, firstSightNs: ns, firstSightUs: ns / 1000 });
    } catch (err) {
      results.push({ key: 'fastJwt', alg, error: err.message });
    }
  }
  return { tokensPerAlg: Object.values(spec.tokens)[0]?.length ?? 0, results };
}

function formatJwks(jwks) {
  if (!jwks) return '';
  if (jwks.error) return `  JWKS first sight: FAILED: ${jwks.error}`;
  const lines = [`backend JWT first sight (JWKS), ${jwks.tokensPerAlg} distinct tokens per algorithm, us per token:`];
  const by = (key, alg) => jwks.results.find((r) => r.key === key && r.alg === alg);
  const f = (r, field = 'firstSightUs') => (!r ? '-' : r.error ? `ERROR: ${r.error}` : r[field].toFixed(1));
  lines.push('  alg      ours (verify)  ours per request: first / repeat   jose jwtVerify   fast-jwt (cache off)');
  for (const alg of [...new Set(jwks.results.map((r) => r.alg))]) {
    const o = by('ours', alg);
    const call = o && !o.error ? `${(o.firstSightNs / 1000).toFixed(1)} / ${(o.repeatNs / 1000).toFixed(1)}` : '-';
    lines.push(`  ${alg.padEnd(7)}  ${f(o).padStart(13)}  ${call.padStart(32)}  ${f(by('jose', alg)).padStart(15)}  ${f(by('fastJwt', alg)).padStart(20)}`);
  }
  return lines.join('\n');
}

function formatMicro(micro) {
  const lines = [];
  const w = Math.max(...micro.results.map((r) => r.name.length));
  for (const r of micro.results) {
    let v;
    if (r.unavailable) v = `not available yet (${r.unavailable})`;
    else if (r.error) v = `ERROR: ${r.error}`;
    else {
      const us = r.nsPerCall / 1000;
      v = `${us < 10 ? us.toFixed(2) : us.toFixed(1)} us/call`.padStart(14) + `   (${r.iterations} calls)`;
      if (r.key === 'oursHotPath' && micro.userCacheWarmed !== 'yes') v += '  user cache cold: no cached user';
    }
    lines.push(`  ${r.name.padEnd(w)}  ${v}`);
  }
  return lines.join('\n');
}

module.exports = { runMicro, formatMicro, formatJwks };

if (require.main === module) {
  runMicro().then(
    (micro) => {
      if (process.send) {
        process.send({ type: 'micro', micro }, () => process.exit(0));
      } else {
        console.log(`verify one HS256 LibreChat token (${micro.tokenLength} chars):`);
        console.log(formatMicro(micro));
        if (micro.jwks) console.log(formatJwks(micro.jwks));
        process.exit(0);
      }
    },
    (err) => {
      if (process.send) process.send({ type: 'micro', error: err.message }, () => process.exit(1));
      else console.error(err);
      process.exitCode = 1;
    },
  );
}
