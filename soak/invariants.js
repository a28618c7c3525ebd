'use strict';

/**
 * The soak's books: every request's outcome and latency, the fault windows, and the invariants,
 * each a counter that must stay 0 (with the first few cases kept as examples).
 */

const INVARIANTS = [
  ['revokedAccepted', 'request accepted for a revoked or disabled user after the documented bound'],
  ['sessionLost', 'session lost that no one ended (a user logged out without reason)'],
  ['reuseUndetected', 'two live sessions from one refresh token (reuse not detected)'],
  ['backendSessionAlive', 'backend session left alive after a LibreChat logout that completed'],
  ['serverErrorOutsideFault', '5xx (or no answer) outside a fault window and its allowance'],
  ['hungPastBound', 'request that hung past its bound'],
  ['secretInLog', 'secret in a log line'],
  ['memoryGrowth', 'instance whose memory grew beyond the bound'],
  ['wrongUser', '(extra) answer naming another user than the session\'s'],
];

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

class Books {
  constructor({ bounds, startedAt }) {
    this.bounds = bounds; // kind -> ms
    this.startedAt = startedAt;
    this.windows = []; // { id, round, name, start, end, allowanceMs }
    this.counts = Object.fromEntries(INVARIANTS.map(([k]) => [k, 0]));
    this.examples = Object.fromEntries(INVARIANTS.map(([k]) => [k, []]));
    this.info = {}; // informational counters (not invariants)
    this.infoExamples = {};
    this.lat = {}; // kind -> { calm: [], fault: [] }
    this.statuses = {}; // kind -> { status: n }
    this.served = { total: 0, ok: 0, byInstance: {} };
  }

  rel(t) {
    return `${((t - this.startedAt) / 1000).toFixed(1)}s`;
  }

  violation(key, detail) {
    this.counts[key] += 1;
    if (this.examples[key].length < 12) this.examples[key].push(detail);
    process.stderr.write(`[soak] INVARIANT ${key}: ${detail}\n`);
  }

  note(key, detail) {
    this.info[key] = (this.info[key] || 0) + 1;
    if (detail !== undefined) {
      this.infoExamples[key] = this.infoExamples[key] || [];
      if (this.infoExamples[key].length < 6) this.infoExamples[key].push(detail);
    }
  }

  openWindow(w) {
    this.windows.push(w);
    return w;
  }

  /** Windows whose [start, end + allowance] meets [t0, t1] (an open window reaches to now). */
  windowsMeeting(t0, t1, filter = () => true) {
    return this.windows.filter((w) => filter(w) && w.start <= t1 && (w.end === null || w.end + w.allowanceMs >= t0));
  }

  inFault(t0, t1) {
    return this.windowsMeeting(t0, t1).length > 0;
  }

  /** Every request's outcome: latency books, served counts, invariants 5 and 6. */
  request(kind, t0, t1, status, err, instance, path) {
    const fault = this.inFault(t0, t1);
    const l = (this.lat[kind] = this.lat[kind] || { calm: [], fault: [] });
    (fault ? l.fault : l.calm).push(t1 - t0);
    const s = (this.statuses[kind] = this.statuses[kind] || {});
    const key = err ? 'no answer' : String(status);
    s[key] = (s[key] || 0) + 1;
    if (!err) {
      this.served.total += 1;
      if (status < 500) this.served.ok += 1;
      this.served.byInstance[instance] = (this.served.byInstance[instance] || 0) + 1;
    }
    if ((err || status >= 500) && !fault) {
      this.violation('serverErrorOutsideFault', `${kind} ${path} on ${instance} at ${this.rel(t0)}-${this.rel(t1)}: ${err ? `no answer (${err.cause?.code || err.name}: ${err.message})` : status}`);
    }
    const bound = this.bounds[kind];
    if (bound && t1 - t0 > bound) {
      this.violation('hungPastBound', `${kind} ${path} on ${instance} took ${t1 - t0} ms (bound ${bound} ms) from ${this.rel(t0)}${err ? ` (${err.name})` : ` -> ${status}`}`);
    }
  }

  latencyTable() {
    const rows = [];
    for (const [kind, { calm, fault }] of Object.entries(this.lat)) {
      const f = (arr) => {
        const s = [...arr].sort((a, b) => a - b);
        return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : null };
      };
      rows.push({ kind, calm: f(calm), fault: f(fault) });
    }
    return rows;
  }
}

module.exports = { Books, INVARIANTS, percentile };
