'use strict';

/** The end of a run: the tables (Markdown, as in the README) and the JSON under soak/results/. */

const fs = require('fs');
const path = require('path');
const { INVARIANTS } = require('./invariants');

const ms = (v) => (v === null || v === undefined ? '–' : `${v}`);
const mib = (b) => (b === null || b === undefined ? '–' : (b / 1048576).toFixed(1));

function tables({ cfg, books, rounds, memory, setup }) {
  const out = [];
  const secs = (cfg.durationMs / 1000).toFixed(0);
  out.push(`Soak run: ${secs} s, ${cfg.instances} servers (clock of ${setup.offsetInstance || 'none'} ${cfg.clockOffsetSec ? `+${cfg.clockOffsetSec} s` : 'not offset'}; addon's iat seen ${setup.observedOffsetSec ?? '–'} s ahead), ` +
    `${cfg.users} users × ${cfg.tabs} tabs (${setup.browsers} browsers, ${setup.tabs} tabs), ${cfg.apiClients} API clients, seed ${cfg.seed}`);
  out.push('');
  out.push(`Requests served: ${books.served.total} (${books.served.ok} below 500), per server: ${Object.entries(books.served.byInstance).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push('');
  out.push('| phase | n (calm) | p50 | p95 | p99 | n (fault) | p50 | p95 | p99 | max (fault) |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of books.latencyTable()) {
    out.push(`| ${r.kind} | ${r.calm.n} | ${ms(r.calm.p50)} | ${ms(r.calm.p95)} | ${ms(r.calm.p99)} | ${r.fault.n} | ${ms(r.fault.p50)} | ${ms(r.fault.p95)} | ${ms(r.fault.p99)} | ${ms(r.fault.max)} |`);
  }
  out.push('');
  out.push('Latencies in ms; "fault": the request met a fault window or its recovery allowance.');
  out.push('');
  out.push('| round | faults | from | length | recovery (first full round of requests on every server) |');
  out.push('|---:|---|---:|---:|---:|');
  for (const r of rounds) {
    out.push(`| ${r.round} | ${r.faults.join(' + ')} | ${((r.start - books.startedAt) / 1000).toFixed(1)} s | ${r.end ? ((r.end - r.start) / 1000).toFixed(1) : '–'} s | ${r.recoveryMs === null ? 'not recovered' : `${r.recoveryMs} ms`} |`);
  }
  out.push('');
  out.push('| invariant | count |');
  out.push('|---|---:|');
  for (const [k, label] of INVARIANTS) out.push(`| ${label} | ${books.counts[k]} |`);
  out.push('');
  out.push('| server | RSS after warm-up (MiB) | RSS at the end (MiB) | growth | bound |');
  out.push('|---|---:|---:|---:|---:|');
  for (const m of memory) out.push(`| ${m.name} | ${mib(m.base)} | ${mib(m.end)} | ${mib(m.growth)} | ${mib(m.bound)} |`);
  out.push('');
  const statuses = Object.entries(books.statuses).map(([k, v]) => `${k}: ${Object.entries(v).map(([s, n]) => `${s}×${n}`).join(' ')}`);
  out.push(`Statuses: ${statuses.join('; ')}`);
  const info = Object.entries(books.info).map(([k, v]) => `${k} ${v}`);
  out.push(`Observed: ${info.join(', ') || 'nothing else'}`);
  return out.join('\n');
}

function writeResults(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}

module.exports = { tables, writeResults };
