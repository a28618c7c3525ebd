#!/usr/bin/env node
'use strict';

/**
 * Summarises a V8 CPU profile of a bench server (`BENCH_PROFILE=d npm run bench` writes one per
 * round to bench/results/profiles/): where the server's time went, as proportions, which survive a
 * busy machine better than absolute figures.
 *
 *   node bench/profile.js bench/results/profiles/d-*.cpuprofile [--json] [--functions <origin>]
 *
 * Prints (1) self time by origin (a package of node_modules, this package's lib/ files, node's own
 * modules, the garbage collector, idle), and (2) inclusive time of the functions on the per-request
 * path of our strategy (the calls into the addon count their native work as their own time).
 * `--functions passport` adds (3): self time of each function of that origin (as named in (1)).
 */

const fs = require('fs');
const path = require('path');

const REPO = path.resolve(__dirname, '..');

/** Functions of the per-request path whose inclusive time is reported (name, file part). */
const WATCH = [
  ['authenticate', 'lib/strategies.js', 'CustomJwtStrategy.authenticate (whole strategy)'],
  ['checkBearer', 'lib/service.js', 'service.checkBearer (native verify + caches)'],
  ['cachedUser', 'lib/service.js', 'service.cachedUser (memo + copy)'],
  ['copyUser', 'lib/service.js', 'copyUser (the per-request user object)'],
  ['withLibreChatDefaults', 'lib/strategies.js', 'withLibreChatDefaults'],
  ['bearerToken', 'lib/http.js', 'bearerToken (header parse)'],
  ['authenticate', 'passport/lib/middleware/authenticate.js', 'passport.authenticate middleware (incl. strategy)'],
  ['success', 'passport/lib/middleware/authenticate.js', 'passport success() (req.login etc.)'],
  ['jsonParser', 'body-parser', 'express.json'],
  ['urlencodedParser', 'body-parser', 'express.urlencoded'],
  ['cookieParser', 'cookie-parser', 'cookieParser'],
  ['initialize', 'passport/lib/middleware/initialize.js', 'passport.initialize()'],
  ['json', 'express/lib/response.js', 'res.json'],
];

function origin(cf) {
  const { url, functionName } = cf;
  if (!url) {
    if (/^\((garbage collector|idle|program|root)\)$/.test(functionName)) return functionName;
    return '(native / builtin)';
  }
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (file.startsWith('node:')) return 'node core';
  if (file.startsWith(REPO)) return `ours: ${path.relative(REPO, file)}`;
  return file;
}

function summarise(profile, functionsOf) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const fnSelf = new Map();
  const incl = new Map(WATCH.map((w) => [w[2], 0]));
  let total = 0;
  let idle = 0;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i] ?? 0;
    const node = byId.get(samples[i]);
    const o = origin(node.callFrame);
    total += dt;
    if (o === '(idle)') idle += dt;
    self.set(o, (self.get(o) ?? 0) + dt);
    if (functionsOf && o === functionsOf) {
      const cf = node.callFrame;
      const key = `${cf.functionName || '(anonymous)'} ${cf.url.slice(cf.url.lastIndexOf(`${o}/`))}:${cf.lineNumber + 1}`;
      fnSelf.set(key, (fnSelf.get(key) ?? 0) + dt);
    }
    // inclusive: each watched function counted once per sample if on the stack
    const seen = new Set();
    for (let id = samples[i]; id != null; id = parent.get(id)) {
      const cf = byId.get(id).callFrame;
      for (const [fn, file, label] of WATCH) {
        if (!seen.has(label) && cf.functionName === fn && cf.url.includes(file)) {
          seen.add(label);
          incl.set(label, incl.get(label) + dt);
        }
      }
    }
  }
  const busy = total - idle;
  const pct = (v) => (busy > 0 ? (100 * v) / busy : 0);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    selfByOrigin: [...self.entries()].filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ origin: k, ms: v / 1000, pctOfBusy: pct(v) })),
    inclusive: [...incl.entries()].map(([k, v]) => ({ fn: k, ms: v / 1000, pctOfBusy: pct(v) })),
    functions: [...fnSelf.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ fn: k, ms: v / 1000, pctOfBusy: pct(v) })),
  };
}

function format(s, name) {
  const lines = [`${name}: ${s.busyMs.toFixed(0)} ms busy of ${s.totalMs.toFixed(0)} ms sampled`];
  lines.push('  self time by origin (% of busy):');
  for (const r of s.selfByOrigin.filter((x) => x.pctOfBusy >= 0.5)) {
    lines.push(`    ${r.pctOfBusy.toFixed(1).padStart(5)} %  ${r.origin}`);
  }
  lines.push('  inclusive time of per-request functions (% of busy):');
  for (const r of s.inclusive) lines.push(`    ${r.pctOfBusy.toFixed(1).padStart(5)} %  ${r.fn}`);
  if (s.functions.length) {
    lines.push('  self time by function of that origin (% of busy):');
    for (const r of s.functions.filter((x) => x.pctOfBusy >= 0.05)) lines.push(`    ${r.pctOfBusy.toFixed(2).padStart(6)} %  ${r.fn}`);
  }
  return lines.join('\n');
}

module.exports = { summarise, format };

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--functions');
  const functionsOf = at >= 0 ? args.splice(at, 2)[1] : undefined;
  const files = args.filter((a) => !a.startsWith('--'));
  const json = args.includes('--json');
  if (!files.length) {
    console.error('usage: node bench/profile.js <file.cpuprofile>... [--json] [--functions <origin>]');
    process.exit(2);
  }
  for (const f of files) {
    const s = summarise(JSON.parse(fs.readFileSync(f, 'utf8')), functionsOf);
    console.log(json ? JSON.stringify({ file: f, ...s }, null, 2) : format(s, path.basename(f)));
  }
}
