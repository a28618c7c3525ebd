'use strict';

/**
 * The fault schedule: rounds of one to three faults at once, each round `faultMs` long and followed
 * by a calm gap in which the recovery is measured. Every fault has a start, an end and a recovery
 * allowance: a 5xx (or no answer) is allowed only for a request that meets [start, end + allowance].
 */

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The rounds, in order; a run takes as many as fit (a minute: the first two, which hold all but backend-slow). */
const ROUNDS = [
  ['backend-5xx', 'db-pause', 'jwks-rotate'],
  ['db-kill', 'backend-hang', 'edge-drop'],
  ['backend-slow', 'edge-drop'],
  ['db-kill'],
  ['backend-5xx'],
  ['db-pause', 'jwks-rotate'],
  ['backend-hang'],
  ['edge-drop', 'backend-5xx'],
];

function allowances(cfg) {
  const B = cfg.env.BACKEND_TIMEOUT_MS;
  const M = cfg.env.MONGO_TIMEOUT_MS;
  const cool = cfg.env.BACKEND_BREAKER_COOLDOWN_MS;
  const backend = 2 * B + cool + 3000; // a call started in the fault ends by its timeout; an open lane waits its cool-down
  return {
    'backend-5xx': backend,
    'backend-hang': backend,
    'backend-slow': backend,
    'jwks-rotate': cfg.env.BACKEND_JWKS_REFETCH_COOLDOWN_MS + B + 3000,
    // The driver finds the restarted server (its monitor retries), then the calls in flight end.
    'db-kill': 2 * M + 10_000,
    'db-pause': 2 * M + 10_000,
    'edge-drop': 2000,
  };
}

/** What each fault does to the world (ctx: mock, db, edges, keyEpoch...). */
function actions(ctx) {
  if (ctx.faultActions) return ctx.faultActions;
  const { mock, db, edges } = ctx;
  let flap = null;
  ctx.faultActions = {
    'backend-5xx': {
      // A flapping backend: 503 for a second, answering for a second, and again.
      start() {
        let on = true;
        mock.set({ status: 503 });
        flap = setInterval(() => {
          on = !on;
          mock.set({ status: on ? 503 : null });
        }, 1000);
      },
      stop() {
        clearInterval(flap);
        mock.set({ status: null });
      },
    },
    'backend-hang': {
      start() {
        mock.set({ hang: true });
      },
      stop() {
        mock.set({ hang: false });
        mock.answerHanging(503);
      },
    },
    'backend-slow': {
      start() {
        mock.set({ latencyMs: Math.round(ctx.cfg.env.BACKEND_TIMEOUT_MS * 0.6) });
      },
      stop() {
        mock.set({ latencyMs: 0 });
      },
    },
    'jwks-rotate': {
      // A new key signs from now on (the old one still published); at the end the old keys are
      // dropped and yet another key signs. API clients take new tokens at once each time.
      start() {
        mock.rotateKeys({ alg: 'RS256' });
        ctx.keyEpoch += 1;
      },
      stop() {
        mock.rotateKeys({ alg: 'RS256', dropOld: true });
        ctx.keyEpoch += 1;
      },
    },
    'db-kill': {
      async start() {
        await db.kill();
      },
      async stop() {
        await db.start();
      },
    },
    'db-pause': {
      start() {
        db.pause();
      },
      stop() {
        db.resume();
      },
    },
    'edge-drop': {
      start() {
        for (const e of edges) e.proxy.setDropRate(0.3);
      },
      stop() {
        for (const e of edges) e.proxy.setDropRate(0);
      },
    },
  };
  return ctx.faultActions;
}

/**
 * Runs the schedule; resolves with the rounds: { round, faults, start, end, recoveredAt }.
 * `probe()` resolves true when a full round of requests succeeded on every server.
 */
async function runSchedule(ctx, { probe }) {
  const { cfg, books } = ctx;
  const allow = allowances(cfg);
  const act = actions(ctx);
  const rounds = [];
  const t0 = ctx.startedAt;
  const endOfFaults = t0 + cfg.durationMs - cfg.quietMs;
  await sleepUntil(ctx, t0 + cfg.warmupMs);
  for (let i = 0; ctx.running(); i++) {
    const faults = ROUNDS[i % ROUNDS.length];
    const gap = Math.max(...faults.map((f) => allow[f])) + 3000;
    if (Date.now() + Math.max(...faults.map((f) => lengthOf(cfg, f))) > endOfFaults) break;
    const round = { round: i + 1, faults, start: Date.now(), end: null, recoveredAt: null, recoveryMs: null };
    rounds.push(round);
    const wins = [];
    for (const f of faults) {
      const w = books.openWindow({ round: i + 1, name: f, start: Date.now(), end: null, allowanceMs: allow[f] });
      wins.push(w);
      await act[f].start();
      process.stderr.write(`[soak] ${books.rel(w.start)} fault ${f} starts (round ${i + 1})\n`);
    }
    // Each fault ends after its own length (faultMs; db-pause: --pause).
    const order = faults.map((f, k) => [k, lengthOf(cfg, f)]).sort((a, b) => a[1] - b[1]);
    for (const [k, len] of order) {
      await sleepUntil(ctx, round.start + len);
      await act[faults[k]].stop();
      wins[k].end = Date.now();
      process.stderr.write(`[soak] ${books.rel(wins[k].end)} fault ${faults[k]} ends\n`);
    }
    round.end = Date.now();
    // Recovery: the first fully successful round of requests on every server after the end.
    const nextAt = Math.min(round.end + gap, endOfFaults + cfg.quietMs - 2000);
    while (ctx.running() && Date.now() < t0 + cfg.durationMs - 1000) {
      if (await probe()) {
        round.recoveredAt = Date.now();
        round.recoveryMs = round.recoveredAt - round.end;
        process.stderr.write(`[soak] ${books.rel(round.recoveredAt)} round ${i + 1} recovered in ${round.recoveryMs} ms\n`);
        break;
      }
      await sleep(250);
    }
    await sleepUntil(ctx, nextAt);
  }
  return rounds;
}

/** How long a fault lasts in its round. */
function lengthOf(cfg, f) {
  return f === 'db-pause' ? cfg.pauseMs : cfg.faultMs;
}

async function sleepUntil(ctx, t) {
  while (ctx.running() && Date.now() < t) await sleep(Math.min(200, t - Date.now()));
}

/** Stops whatever fault is still on (Ctrl-C in the middle of a round). */
async function stopAll(ctx) {
  const act = actions(ctx);
  // Not db-kill (the database is stopped for good next) nor jwks-rotate (nothing to undo).
  for (const f of ['backend-5xx', 'backend-hang', 'backend-slow', 'db-pause', 'edge-drop']) {
    try {
      await act[f].stop();
    } catch {
      /* best effort */
    }
  }
}

module.exports = { ROUNDS, allowances, runSchedule, stopAll };
